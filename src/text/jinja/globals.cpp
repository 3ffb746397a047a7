// The global functions a chat template can call: Jinja2's range (capped at the sandbox's MAX_RANGE),
// namespace, dict, and transformers' raise_exception and strftime_now. No file, network or environment
// access is reachable from a template.
#include <ctime>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"

namespace adallm::text::jinja {
namespace {

constexpr int64_t kMaxRange = 100000;  // jinja2.sandbox.MAX_RANGE

int64_t int_arg(const Value& v, const char* what) {
  if (!v.is_integral()) throw RenderError(std::string("'") + v.type_name() + "' object cannot be interpreted as an integer (" + what + ")");
  return v.as_int();
}

Value range_fn(Interpreter&, CallArgs& args) {
  auto& p = args.positional;
  if (p.empty() || p.size() > 3) throw RenderError("range expected 1 to 3 arguments, got " + std::to_string(p.size()));
  int64_t start = 0, stop = 0, step = 1;
  if (p.size() == 1) {
    stop = int_arg(p[0], "range");
  } else {
    start = int_arg(p[0], "range");
    stop = int_arg(p[1], "range");
    if (p.size() == 3) step = int_arg(p[2], "range");
  }
  if (step == 0) throw RenderError("range() arg 3 must not be zero");
  int64_t count = step > 0 ? (stop > start ? (stop - start + step - 1) / step : 0)
                           : (start > stop ? (start - stop - step - 1) / -step : 0);
  if (count > kMaxRange) {
    throw RenderError("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> items;
  for (int64_t k = 0; k < count; ++k) items.push_back(Value::from_int(start + k * step));
  return Value::new_list(std::move(items));
}

Value mapping_from_args(CallArgs& args, Value out) {
  for (const auto& p : args.positional) {
    if (p.kind != Kind::Dict) throw RenderError("expected a mapping argument, got " + p.type_name());
    for (const auto& [k, v] : p.dict->items) out.dict->set(k, v);
  }
  for (auto& [k, v] : args.keyword) out.dict->set(Value::from_string(k), v);
  return out;
}

Value strftime_now(Interpreter&, CallArgs& args) {
  if (args.positional.size() != 1 || !args.positional[0].is_string()) {
    throw RenderError("strftime_now expects one format string");
  }
  std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char buf[512];
  size_t n = std::strftime(buf, sizeof buf, args.positional[0].str.c_str(), &local);
  return Value::from_string(std::string(buf, n));
}

}  // namespace

void Interpreter::install_globals(Frame& f) {
  f.vars["range"] = Value::from_callable("range", range_fn);
  f.vars["namespace"] = Value::from_callable("namespace", [](Interpreter& in, CallArgs& a) {
    Value ns = mapping_from_args(a, Value::new_namespace());
    in.track_namespace(ns);
    return ns;
  });
  f.vars["dict"] = Value::from_callable("dict", [](Interpreter&, CallArgs& a) {
    return mapping_from_args(a, Value::new_dict());
  });
  f.vars["raise_exception"] = Value::from_callable("raise_exception", [](Interpreter&, CallArgs& a) -> Value {
    std::string msg = a.positional.empty() ? std::string() : a.positional[0].to_str();
    throw RenderError("raise_exception: " + msg);
  });
  f.vars["strftime_now"] = Value::from_callable("strftime_now", strftime_now);
}

}  // namespace adallm::text::jinja
