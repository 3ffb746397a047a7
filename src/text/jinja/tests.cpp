// Jinja2's tests ({% if x is defined %}, "is not none", "is string"...) with Python's type rules: bool
// counts as a number but not as an integer, Undefined is iterable and a sequence (it has __iter__ and
// __len__ in Jinja2), dicts are sequences and mappings.
#include <cmath>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"

namespace adallm::text::jinja {
namespace {

const char* const kTests[] = {
    "defined", "undefined", "none", "boolean", "false", "true", "integer", "float", "number", "string",
    "mapping", "iterable", "sequence", "callable", "sameas", "even", "odd", "divisibleby", "eq", "equalto",
    "==", "ne", "!=", "lt", "lessthan", "<", "le", "<=", "gt", "greaterthan", ">", "ge", ">=", "in", "lower",
    "upper", "escaped"};

const Value& need_arg(CallArgs& args, const std::string& test) {
  if (args.positional.empty()) throw RenderError("test '" + test + "' needs an argument");
  return args.positional[0];
}

bool compare_test(const std::string& name, const Value& a, const Value& b) {
  bool ok;
  int c = compare_values(a, b, ok);
  if (!ok) {
    if (a.is_undefined()) undefined_error(a);
    throw RenderError("'" + name + "' not supported between instances of '" + a.type_name() + "' and '" + b.type_name() + "'");
  }
  if (name == "lt" || name == "lessthan" || name == "<") return c < 0;
  if (name == "le" || name == "<=") return c <= 0;
  if (name == "gt" || name == "greaterthan" || name == ">") return c > 0;
  return c >= 0;
}

}  // namespace

bool is_known_test(std::string_view name) {
  for (const char* t : kTests) {
    if (name == t) return true;
  }
  return false;
}

bool apply_test(Interpreter&, const std::string& name, const Value& v, CallArgs& args) {
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == Kind::Bool;
  if (name == "false") return v.kind == Kind::Bool && !v.boolean;
  if (name == "true") return v.kind == Kind::Bool && v.boolean;
  if (name == "integer") return v.kind == Kind::Int;
  if (name == "float") return v.kind == Kind::Float;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.kind == Kind::Dict;
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "callable") return v.kind == Kind::Callable;
  if (name == "escaped") return false;
  if (name == "lower" || name == "upper") {
    if (!v.is_string()) return false;
    Value r;
    CallArgs none;
    call_method(v, name == "lower" ? "islower" : "isupper", none, r);
    return r.boolean;
  }
  if (name == "even" || name == "odd" || name == "divisibleby") {
    if (v.is_undefined()) undefined_error(v);
    Value d = name == "divisibleby" ? need_arg(args, name) : Value::from_int(2);
    if (!v.is_number() || !d.is_number()) throw RenderError("test '" + name + "' needs numbers, got " + v.type_name());
    if (d.as_double() == 0) throw RenderError("integer division or modulo by zero");
    double m = v.is_integral() && d.is_integral() ? static_cast<double>(v.as_int() % d.as_int()) : std::fmod(v.as_double(), d.as_double());
    return name == "odd" ? m != 0 : m == 0;
  }
  if (name == "sameas") {
    const Value& o = need_arg(args, name);
    if (v.kind != o.kind) return false;
    if (v.kind == Kind::None || v.kind == Kind::Undefined) return true;
    if (v.kind == Kind::Bool) return v.boolean == o.boolean;
    if (v.kind == Kind::List) return v.list == o.list;
    if (v.kind == Kind::Dict || v.kind == Kind::Namespace) return v.dict == o.dict;
    return values_equal(v, o);
  }
  if (name == "eq" || name == "equalto" || name == "==") return values_equal(v, need_arg(args, name));
  if (name == "ne" || name == "!=") return !values_equal(v, need_arg(args, name));
  if (name == "in") {
    const Value& seq = need_arg(args, name);
    if (seq.is_string()) {
      if (!v.is_string()) throw RenderError("'in <string>' requires string as left operand, not " + v.type_name());
      return seq.str.find(v.str) != std::string::npos;
    }
    for (const Value& item : iterate(seq)) {
      if (values_equal(v, item)) return true;
    }
    return false;
  }
  return compare_test(name, v, need_arg(args, name));
}

}  // namespace adallm::text::jinja
