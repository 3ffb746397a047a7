// Expression evaluation with Python semantics: int/float arithmetic (/ is true division, // and % floor),
// str/list concatenation and repetition, chained comparisons, short-circuit and/or returning operands,
// attribute lookup that prefers methods (as getattr does) then dict keys, and Undefined for missing keys.
#include <algorithm>
#include <cmath>
#include <optional>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"

namespace adallm::text::jinja {
namespace {

[[noreturn]] void type_error(const std::string& op, const Value& a, const Value& b) {
  if (a.is_undefined()) undefined_error(a);
  if (b.is_undefined()) undefined_error(b);
  throw RenderError("unsupported operand type(s) for " + op + ": '" + a.type_name() + "' and '" + b.type_name() + "'");
}

std::string repeat(const std::string& s, int64_t n) {
  if (n <= 0) return {};
  if (s.size() * static_cast<size_t>(n) > (64u << 20)) throw RenderError("string repetition result too large");
  std::string out;
  for (int64_t k = 0; k < n; ++k) out += s;
  return out;
}

int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Python's slice.indices(length) followed by the walk it describes.
std::vector<size_t> slice_positions(int64_t length, const Value& start, const Value& stop, const Value& step) {
  auto as_opt = [](const Value& v, const char* what) -> std::optional<int64_t> {
    if (v.is_none() || v.is_undefined()) return std::nullopt;
    if (!v.is_integral()) throw RenderError(std::string("slice ") + what + " must be an integer or None");
    return v.as_int();
  };
  int64_t st = as_opt(step, "step").value_or(1);
  if (st == 0) throw RenderError("slice step cannot be zero");
  auto clamp = [&](std::optional<int64_t> v, int64_t dflt) {
    if (!v) return dflt;
    int64_t x = *v;
    if (x < 0) x += length;
    if (st > 0) return std::clamp<int64_t>(x, 0, length);
    return std::clamp<int64_t>(x, -1, length - 1);
  };
  int64_t b = clamp(as_opt(start, "start"), st > 0 ? 0 : length - 1);
  int64_t e = clamp(as_opt(stop, "stop"), st > 0 ? length : -1);
  std::vector<size_t> out;
  for (int64_t k = b; st > 0 ? k < e : k > e; k += st) out.push_back(static_cast<size_t>(k));
  return out;
}

}  // namespace

Value Interpreter::eval(const Expr& e) {
  line_ = e.line;
  switch (e.kind) {
    case ExprKind::Const: return e.constant;
    case ExprKind::Name: {
      const Value* v = frame_->lookup(e.name);
      return v ? *v : Value::undefined("'" + e.name + "' is undefined");
    }
    case ExprKind::List:
    case ExprKind::Tuple: {
      std::vector<Value> items;
      for (const auto& c : e.children) items.push_back(eval(*c));
      return Value::new_list(std::move(items), e.kind == ExprKind::Tuple);
    }
    case ExprKind::Dict: {
      Value d = Value::new_dict();
      for (size_t k = 0; k + 1 < e.children.size(); k += 2) {
        Value key = eval(*e.children[k]);
        d.dict->set(std::move(key), eval(*e.children[k + 1]));
      }
      return d;
    }
    case ExprKind::Getattr: return eval_getattr(eval(*e.children[0]), e.name);
    case ExprKind::Getitem: {
      Value obj = eval(*e.children[0]);
      return eval_getitem(obj, eval(*e.children[1]));
    }
    case ExprKind::Slice: return eval_slice(e);
    case ExprKind::Call: return eval_call(e);
    case ExprKind::Filter: return apply_filter_chain(e, Value());
    case ExprKind::Test: {
      Value subject = eval(*e.children[0]);
      CallArgs args = eval_args(e, 1);
      line_ = e.line;
      bool r = apply_test(*this, e.name, subject, args);
      return Value::from_bool(e.negated ? !r : r);
    }
    case ExprKind::Not: return Value::from_bool(!eval(*e.children[0]).truthy());
    case ExprKind::Neg:
    case ExprKind::Pos: {
      Value v = eval(*e.children[0]);
      if (v.is_undefined()) undefined_error(v);
      if (!v.is_number()) throw RenderError("bad operand type for unary " + std::string(e.kind == ExprKind::Neg ? "-" : "+") + ": '" + v.type_name() + "'");
      if (e.kind == ExprKind::Pos) return v.kind == Kind::Bool ? Value::from_int(v.as_int()) : v;
      return v.kind == Kind::Float ? Value::from_float(-v.floating) : Value::from_int(-v.as_int());
    }
    case ExprKind::Binary: {
      Value a = eval(*e.children[0]);
      Value b = eval(*e.children[1]);
      line_ = e.line;
      return eval_binary(e.name, a, b);
    }
    case ExprKind::Concat: {
      std::string s = eval(*e.children[0]).to_str();
      return Value::from_string(s + eval(*e.children[1]).to_str());
    }
    case ExprKind::Compare: return eval_compare(e);
    case ExprKind::And: {
      Value a = eval(*e.children[0]);
      return a.truthy() ? eval(*e.children[1]) : a;
    }
    case ExprKind::Or: {
      Value a = eval(*e.children[0]);
      return a.truthy() ? a : eval(*e.children[1]);
    }
    case ExprKind::CondExpr: {
      if (eval(*e.children[1]).truthy()) return eval(*e.children[0]);
      if (e.children[2]) return eval(*e.children[2]);
      return Value::undefined("the inline if-expression evaluated to false and no else section was defined");
    }
  }
  return Value();
}

Value Interpreter::eval_getattr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.kind == Kind::String || obj.kind == Kind::List || obj.kind == Kind::Dict) {
    // getattr() finds methods before dict keys; a bound method is made only when the name is one.
    if (has_method(obj, name)) {
      Value self = obj;
      return Value::from_callable(name, [self, name](Interpreter&, CallArgs& args) {
        Value result;
        call_method(self, name, args, result);
        return result;
      });
    }
  }
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (const Value* v = obj.dict->find(std::string_view(name))) return *v;
  }
  std::string owner = obj.kind == Kind::Namespace ? "Namespace" : obj.type_name();
  return Value::undefined("'" + owner + " object' has no attribute '" + name + "'");
}

Value Interpreter::eval_getitem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.kind == Kind::Dict || obj.kind == Kind::Namespace) {
    if (const Value* v = obj.dict->find(key)) return *v;
    if (key.is_string()) return eval_getattr(obj, key.str);
    return Value::undefined("'dict object' has no attribute " + key.repr());
  }
  if ((obj.kind == Kind::List || obj.kind == Kind::String) && key.is_integral()) {
    int64_t i = key.as_int();
    if (obj.kind == Kind::List) {
      auto n = static_cast<int64_t>(obj.list->items.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.list->items[static_cast<size_t>(i)];
    } else {
      std::u32string cps = utf8_decode(obj.str);
      auto n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return Value::from_string(utf8_encode(cps.substr(static_cast<size_t>(i), 1)));
    }
    return Value::undefined("'" + obj.type_name() + " object' has no element " + std::to_string(key.as_int()));
  }
  if (key.is_string()) return eval_getattr(obj, key.str);
  return Value::undefined("'" + obj.type_name() + " object' has no element " + key.repr());
}

Value Interpreter::eval_slice(const Expr& e) {
  Value obj = eval(*e.children[0]);
  Value parts[3];
  for (int k = 0; k < 3; ++k) parts[k] = e.children[k + 1] ? eval(*e.children[k + 1]) : Value::none();
  line_ = e.line;
  if (obj.is_undefined()) undefined_error(obj);
  if (obj.kind == Kind::List) {
    std::vector<Value> items;
    for (size_t p : slice_positions(static_cast<int64_t>(obj.list->items.size()), parts[0], parts[1], parts[2])) {
      items.push_back(obj.list->items[p]);
    }
    return Value::new_list(std::move(items), obj.list->is_tuple);
  }
  if (obj.kind == Kind::String) {
    std::u32string cps = utf8_decode(obj.str), out;
    for (size_t p : slice_positions(static_cast<int64_t>(cps.size()), parts[0], parts[1], parts[2])) out += cps[p];
    return Value::from_string(utf8_encode(out));
  }
  throw RenderError("'" + obj.type_name() + "' object is not subscriptable");
}

Value Interpreter::eval_binary(const std::string& op, const Value& a, const Value& b) {
  bool nums = a.is_number() && b.is_number();
  bool ints = a.is_integral() && b.is_integral();
  if (op == "+") {
    if (nums) return ints ? Value::from_int(a.as_int() + b.as_int()) : Value::from_float(a.as_double() + b.as_double());
    if (a.is_string() && b.is_string()) return Value::from_string(a.str + b.str);
    if (a.is_list() && b.is_list() && a.list->is_tuple == b.list->is_tuple) {
      std::vector<Value> items = a.list->items;
      items.insert(items.end(), b.list->items.begin(), b.list->items.end());
      return Value::new_list(std::move(items), a.list->is_tuple);
    }
    type_error(op, a, b);
  }
  if (op == "-") {
    if (!nums) type_error(op, a, b);
    return ints ? Value::from_int(a.as_int() - b.as_int()) : Value::from_float(a.as_double() - b.as_double());
  }
  if (op == "*") {
    if (nums) return ints ? Value::from_int(a.as_int() * b.as_int()) : Value::from_float(a.as_double() * b.as_double());
    if (a.is_string() && b.is_integral()) return Value::from_string(repeat(a.str, b.as_int()));
    if (b.is_string() && a.is_integral()) return Value::from_string(repeat(b.str, a.as_int()));
    const Value* l = a.is_list() ? &a : b.is_list() ? &b : nullptr;
    const Value* n = a.is_list() ? &b : &a;
    if (l && n->is_integral()) {
      std::vector<Value> items;
      for (int64_t k = 0; k < n->as_int() && items.size() < 10'000'000; ++k) {
        items.insert(items.end(), l->list->items.begin(), l->list->items.end());
      }
      return Value::new_list(std::move(items), l->list->is_tuple);
    }
    type_error(op, a, b);
  }
  if (op == "/" || op == "//" || op == "%") {
    if (op == "%" && a.is_string()) {
      std::vector<Value> args;
      if (b.is_list() && b.list->is_tuple) args = b.list->items;
      else args.push_back(b);
      return Value::from_string(percent_format(a.str, args));
    }
    if (!nums) type_error(op, a, b);
    if (b.as_double() == 0.0) throw RenderError(op == "%" ? "integer modulo by zero" : "division by zero");
    if (op == "/") return Value::from_float(a.as_double() / b.as_double());
    if (ints) {
      int64_t q = floor_div(a.as_int(), b.as_int());
      return op == "//" ? Value::from_int(q) : Value::from_int(a.as_int() - q * b.as_int());
    }
    double x = a.as_double(), y = b.as_double();
    double m = std::fmod(x, y);
    if (m != 0 && ((m < 0) != (y < 0))) m += y;
    return op == "//" ? Value::from_float(std::floor(x / y)) : Value::from_float(m);
  }
  if (op == "**") {
    if (!nums) type_error(op, a, b);
    if (ints && b.as_int() >= 0) {
      int64_t r = 1;
      for (int64_t k = 0; k < b.as_int(); ++k) r *= a.as_int();
      return Value::from_int(r);
    }
    return Value::from_float(std::pow(a.as_double(), b.as_double()));
  }
  throw RenderError("unknown operator " + op);
}

Value Interpreter::eval_compare(const Expr& e) {
  Value left = eval(*e.children[0]);
  for (size_t k = 0; k < e.ops.size(); ++k) {
    Value right = eval(*e.children[k + 1]);
    line_ = e.line;
    const std::string& op = e.ops[k];
    bool r;
    if (op == "==") {
      r = values_equal(left, right);
    } else if (op == "!=") {
      r = !values_equal(left, right);
    } else if (op == "in" || op == "notin") {
      if (right.is_string()) {
        if (!left.is_string()) throw RenderError("'in <string>' requires string as left operand, not " + left.type_name());
        r = right.str.find(left.str) != std::string::npos;
      } else if (right.kind == Kind::Dict || right.kind == Kind::List || right.is_undefined()) {
        r = false;
        for (const Value& item : iterate(right)) r = r || values_equal(left, item);
      } else {
        throw RenderError("argument of type '" + right.type_name() + "' is not iterable");
      }
      if (op == "notin") r = !r;
    } else {
      bool ok;
      int c = compare_values(left, right, ok);
      if (!ok) {
        if (left.is_undefined()) undefined_error(left);
        if (right.is_undefined()) undefined_error(right);
        throw RenderError("'" + op + "' not supported between instances of '" + left.type_name() + "' and '" + right.type_name() + "'");
      }
      r = op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0;
    }
    if (!r) return Value::from_bool(false);
    left = std::move(right);
  }
  return Value::from_bool(true);
}

CallArgs Interpreter::eval_args(const Expr& e, size_t first_positional) {
  CallArgs args;
  for (size_t k = first_positional; k < e.children.size(); ++k) args.positional.push_back(eval(*e.children[k]));
  for (const auto& [key, expr] : e.kwargs) args.keyword.emplace_back(key, eval(*expr));
  return args;
}

Value Interpreter::eval_call(const Expr& e) {
  Value callee = eval(*e.children[0]);
  CallArgs args = eval_args(e, 1);
  line_ = e.line;
  return call(callee, args);
}

Value Interpreter::call(const Value& callee, CallArgs& args) {
  if (callee.kind == Kind::Callable) return callee.callable->fn(*this, args);
  if (callee.is_undefined()) undefined_error(callee);
  throw RenderError("'" + callee.type_name() + "' object is not callable");
}

Value Interpreter::apply_filter_chain(const Expr& chain, Value hole) {
  if (chain.kind != ExprKind::Filter) return eval(chain);
  Value input = chain.children[0] ? apply_filter_chain(*chain.children[0], std::move(hole)) : std::move(hole);
  CallArgs args = eval_args(chain, 1);
  line_ = chain.line;
  return apply_filter(*this, chain.name, std::move(input), args);
}

}  // namespace adallm::text::jinja
