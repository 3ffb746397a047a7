// Statement execution, frames and globals. A for-loop iteration gets a fresh frame whose parent is the
// enclosing one, so {% set %} inside a loop is gone after it (Jinja2's rule, which is why templates use
// namespace()); macros run in a frame whose parent is where they were defined.
#include "text/jinja/interpreter.h"


#include "core/error.h"
#include "text/jinja/builtins.h"

namespace adallm::text::jinja {

const Value* Frame::lookup(const std::string& name) const {
  for (const Frame* f = this; f; f = f->parent.get()) {
    auto it = f->vars.find(name);
    if (it != f->vars.end()) return &it->second;
  }
  return nullptr;
}

std::vector<Value> iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List: return v.list->items;
    case Kind::Dict: {
      std::vector<Value> keys;
      for (const auto& kv : v.dict->items) keys.push_back(kv.first);
      return keys;
    }
    case Kind::String: {
      std::vector<Value> chars;
      for (char32_t c : utf8_decode(v.str)) chars.push_back(Value::from_string(utf8_encode(std::u32string(1, c))));
      return chars;
    }
    default: throw RenderError("'" + v.type_name() + "' object is not iterable");
  }
}

void undefined_error(const Value& v) {
  throw RenderError(v.str.empty() ? "value is undefined" : v.str);
}

std::string Interpreter::render(const Value& context) {
  auto globals = std::make_shared<Frame>();
  install_globals(*globals);
  frame_ = std::make_shared<Frame>();
  frame_->parent = globals;
  if (context.kind == Kind::Dict) {
    for (const auto& [k, v] : context.dict->items) {
      if (k.is_string()) frame_->vars[k.str] = v;
    }
  }
  std::string out;
  std::string error;
  try {
    exec_body(tmpl_.body, out);
  } catch (const std::exception& e) {  // RenderError, the library's runtime_errors, stoll overflow...
    error = e.what();
  }
  for (auto& weak : namespaces_) {
    if (auto ns = weak.lock()) ns->items.clear();
  }
  closures_.clear();
  frame_.reset();
  if (!error.empty()) throw Error("template '" + tmpl_.name + "' line " + std::to_string(line_) + ": " + error);
  return out;
}

size_t Interpreter::keep_frame_alive(std::shared_ptr<Frame> frame) {
  closures_.push_back(std::move(frame));
  return closures_.size() - 1;
}

Interpreter::Flow Interpreter::exec_body(const Body& body, std::string& out) {
  for (const auto& s : body) {
    Flow f = exec(*s, out);
    if (f != Flow::Normal) return f;
  }
  return Flow::Normal;
}

Interpreter::Flow Interpreter::exec(const Stmt& s, std::string& out) {
  line_ = s.line;
  switch (s.kind) {
    case StmtKind::Output: out += s.text; break;
    case StmtKind::Print: out += eval(*s.expr).to_str(); break;
    case StmtKind::If:
      for (const auto& [cond, body] : s.branches) {
        if (eval(*cond).truthy()) return exec_body(body, out);
      }
      return exec_body(s.else_body, out);
    case StmtKind::For: exec_for(s, out); break;
    case StmtKind::Set:
    case StmtKind::SetBlock: exec_set(s, out); break;
    case StmtKind::Macro: define_macro(s); break;
    case StmtKind::CallBlock: exec_call_block(s, out); break;
    case StmtKind::FilterBlock: {
      std::string inner;
      exec_body(s.body, inner);
      line_ = s.line;
      out += apply_filter_chain(*s.expr, Value::from_string(std::move(inner))).to_str();
      break;
    }
    case StmtKind::Break: return Flow::Break;
    case StmtKind::Continue: return Flow::Continue;
    case StmtKind::With: {
      auto f = std::make_shared<Frame>();
      f->parent = frame_;
      for (const auto& [target, expr] : s.assignments) f->vars[target.names[0]] = eval(*expr);
      auto saved = frame_;
      frame_ = f;
      Flow flow = exec_body(s.body, out);
      frame_ = saved;
      return flow;
    }
    case StmtKind::Scope: return exec_body(s.body, out);
  }
  if (out.size() > output_limit_) throw RenderError("rendered output exceeds 64 MiB");
  return Flow::Normal;
}

void Interpreter::assign(const Target& t, Value v) {
  if (!t.attribute.empty()) {
    const Value* ns = frame_->lookup(t.names[0]);
    if (!ns || ns->kind != Kind::Namespace) {
      throw RenderError("cannot assign attribute on non-namespace object '" + t.names[0] + "'");
    }
    ns->dict->set(Value::from_string(t.attribute), std::move(v));
    return;
  }
  if (!t.is_tuple) {
    frame_->vars[t.names[0]] = std::move(v);
    return;
  }
  std::vector<Value> items = iterate(v);
  if (items.size() != t.names.size()) {
    throw RenderError(items.size() > t.names.size()
                          ? "too many values to unpack (expected " + std::to_string(t.names.size()) + ")"
                          : "not enough values to unpack (expected " + std::to_string(t.names.size()) + ", got " +
                                std::to_string(items.size()) + ")");
  }
  for (size_t k = 0; k < items.size(); ++k) frame_->vars[t.names[k]] = std::move(items[k]);
}

void Interpreter::exec_set(const Stmt& s, std::string&) {
  if (s.kind == StmtKind::Set) {
    assign(s.target, eval(*s.expr));
    return;
  }
  std::string inner;
  exec_body(s.body, inner);
  line_ = s.line;
  Value v = Value::from_string(std::move(inner));
  if (s.expr) v = apply_filter_chain(*s.expr, std::move(v));
  assign(s.target, std::move(v));
}

static Value make_loop(int64_t index0, int64_t length, int depth, const std::vector<Value>& items) {
  Value loop = Value::new_dict();
  auto put = [&](const char* k, Value v) { loop.dict->items.emplace_back(Value::from_string(k), std::move(v)); };
  put("index0", Value::from_int(index0));
  put("index", Value::from_int(index0 + 1));
  put("revindex", Value::from_int(length - index0));
  put("revindex0", Value::from_int(length - index0 - 1));
  put("first", Value::from_bool(index0 == 0));
  put("last", Value::from_bool(index0 == length - 1));
  put("length", Value::from_int(length));
  put("depth", Value::from_int(depth));  // depth counts recursive loop() calls, which are not supported
  put("depth0", Value::from_int(depth - 1));
  put("previtem", index0 > 0 ? items[static_cast<size_t>(index0 - 1)] : Value::undefined("there is no previous item"));
  put("nextitem", index0 + 1 < length ? items[static_cast<size_t>(index0 + 1)] : Value::undefined("there is no next item"));
  put("cycle", Value::from_callable("cycle", [index0](Interpreter&, CallArgs& args) {
        if (args.positional.empty()) throw RenderError("no items for cycling given");
        return args.positional[static_cast<size_t>(index0) % args.positional.size()];
      }));
  return loop;
}

void Interpreter::exec_for(const Stmt& s, std::string& out) {
  std::vector<Value> all = iterate(eval(*s.expr));
  auto saved = frame_;
  std::vector<Value> items;
  if (s.condition) {
    for (auto& v : all) {
      frame_ = std::make_shared<Frame>();
      frame_->parent = saved;
      assign(s.target, v);
      if (eval(*s.condition).truthy()) items.push_back(std::move(v));
    }
    frame_ = saved;
  } else {
    items = std::move(all);
  }
  const auto length = static_cast<int64_t>(items.size());
  for (int64_t k = 0; k < length; ++k) {
    frame_ = std::make_shared<Frame>();
    frame_->parent = saved;
    frame_->vars["loop"] = make_loop(k, length, 1, items);
    assign(s.target, items[static_cast<size_t>(k)]);
    Flow f = exec_body(s.body, out);
    if (f == Flow::Break) break;
  }
  frame_ = saved;
  if (items.empty()) exec_body(s.else_body, out);
}

void Interpreter::define_macro(const Stmt& s) {
  size_t closure = keep_frame_alive(frame_);
  const Stmt* macro = &s;
  frame_->vars[s.text] = Value::from_callable(s.text, [macro, closure](Interpreter& in, CallArgs& args) {
    return in.call_macro(*macro, closure, args, Value::undefined("'caller' is undefined"));
  });
}

Value Interpreter::call_macro(const Stmt& macro, size_t closure, CallArgs& args, const Value& caller) {
  if (++call_depth_ > 100) throw RenderError("macro recursion deeper than 100 calls in '" + macro.text + "'");
  auto saved = frame_;
  int saved_line = line_;
  frame_ = std::make_shared<Frame>();
  frame_->parent = closures_.at(closure);
  std::vector<Value> varargs;
  for (size_t k = 0; k < args.positional.size(); ++k) {
    if (k < macro.params.size()) frame_->vars[macro.params[k].name] = args.positional[k];
    else varargs.push_back(args.positional[k]);
  }
  Value kwargs = Value::new_dict();
  Value bound_caller = caller;
  for (auto& [key, v] : args.keyword) {
    if (key == "caller") {
      bound_caller = v;
      continue;
    }
    bool is_param = false;
    for (const auto& p : macro.params) is_param = is_param || p.name == key;
    if (is_param) frame_->vars[key] = v;
    else kwargs.dict->set(Value::from_string(key), v);
  }
  for (const auto& p : macro.params) {
    if (frame_->vars.count(p.name)) continue;
    frame_->vars[p.name] = p.default_value ? eval(*p.default_value)
                                           : Value::undefined("parameter '" + p.name + "' was not provided");
  }
  frame_->vars["varargs"] = Value::new_list(std::move(varargs), /*is_tuple=*/true);
  frame_->vars["kwargs"] = kwargs;
  frame_->vars["caller"] = bound_caller;
  std::string out;
  exec_body(macro.body, out);
  frame_ = saved;
  line_ = saved_line;
  --call_depth_;
  return Value::from_string(std::move(out));
}

void Interpreter::exec_call_block(const Stmt& s, std::string& out) {
  // {% call m(args) %}body{% endcall %}: m runs with `caller` bound to a macro made of the body.
  const Expr& call_expr = *s.expr;
  Value callee = eval(*call_expr.children[0]);
  CallArgs args = eval_args(call_expr, 1);
  size_t closure = keep_frame_alive(frame_);
  const Stmt* body = &s;
  Value caller = Value::from_callable("caller", [body, closure](Interpreter& in, CallArgs& a) {
    return in.call_macro(*body, closure, a, Value::undefined("'caller' is undefined"));
  });
  if (callee.kind != Kind::Callable) throw RenderError("{% call %} needs a macro, got " + callee.type_name());
  args.keyword.emplace_back("caller", caller);
  out += call(callee, args).to_str();
}

}  // namespace adallm::text::jinja
