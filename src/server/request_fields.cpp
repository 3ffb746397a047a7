// The typed checks of request fields (see request_fields.h).
#include "server/request_fields.h"

#include <cmath>
#include <limits>
#include <sstream>

namespace adallm::server::fields {
namespace {

std::string number_text(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

double get_number(const std::string& field, const json& v) {
  if (!v.is_number()) wrong_type(field, "a number", v);
  return v.get<double>();
}

}  // namespace

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number_float()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const json& v) {
  throw invalid_field(field, std::string("expected ") + expected + ", got " + type_name(v));
}

// Written as negated tests so that inf and nan fail too.
float ranged(const std::string& field, const json& v, double lo, double hi, bool lo_open) {
  const double x = get_number(field, v);
  const bool ok = (lo_open ? x > lo : x >= lo) && x <= hi && std::isfinite(x);
  if (!ok) {
    throw invalid_field(field, "expected a number in " + std::string(lo_open ? "(" : "[") + number_text(lo) + ", " +
                                   number_text(hi) + "], got " + number_text(x));
  }
  return static_cast<float>(x);
}

int64_t get_int(const std::string& field, const json& v) {
  if (!v.is_number_integer()) wrong_type(field, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
    throw invalid_field(field, "the integer " + v.dump() + " is too large");
  }
  return v.get<int64_t>();
}

int64_t int_at_least(const std::string& field, const json& v, int64_t lo, int64_t hi) {
  const int64_t x = get_int(field, v);
  if (x < lo || x > hi) {
    throw invalid_field(field, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                   std::to_string(x));
  }
  return x;
}

bool get_bool(const std::string& field, const json& v) {
  if (!v.is_boolean()) wrong_type(field, "true or false", v);
  return v.get<bool>();
}

std::string get_string(const std::string& field, const json& v) {
  if (!v.is_string()) wrong_type(field, "a string", v);
  return v.get<std::string>();
}

[[noreturn]] void not_supported(const std::string& field, const std::string& what) {
  throw invalid_field(field, (what.empty() ? std::string("this field") : what) +
                                 " is not supported by this server yet (see docs/http-api.md)");
}

void each_field(const std::string& field, const json& object, const FieldHandlers& handlers) {
  for (const auto& [key, value] : object.items()) {
    const std::string f = field + "." + key;
    const auto it = handlers.find(key);
    if (it == handlers.end()) throw invalid_field(f, "unknown field");
    if (!value.is_null()) it->second(f, value);
  }
}

}  // namespace adallm::server::fields
