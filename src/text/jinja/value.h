// The value model of the Jinja2 interpreter: Python's None/bool/int/float/str/list/tuple/dict plus
// Jinja2's Undefined, namespace() objects and callables (macros, globals). Printing follows Python's
// str()/repr() (what Jinja2 emits), equality and ordering follow Python. Strings are UTF-8; code-point
// semantics (len, slicing) live in the helpers below. JSON conversion is in json_dump.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace adallm::text::jinja {

struct Value;
class Interpreter;

enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};

// Insertion-ordered like a Python dict; chat-template dicts are small, so lookups scan.
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  const Value* find(const Value& key) const;
  const Value* find(std::string_view key) const;
  void set(Value key, Value value);
};

struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};

struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

struct Value {
  Kind kind = Kind::Undefined;
  bool boolean = false;
  int64_t integer = 0;
  double floating = 0.0;
  std::string str;  // String payload; for Undefined, why it is undefined (the Jinja2 message)
  std::shared_ptr<ListData> list;
  std::shared_ptr<DictData> dict;  // Dict and Namespace
  std::shared_ptr<Callable> callable;

  static Value undefined(std::string why = {});
  static Value none();
  static Value from_bool(bool v);
  static Value from_int(int64_t v);
  static Value from_float(double v);
  static Value from_string(std::string v);
  static Value new_list(std::vector<Value> items = {}, bool is_tuple = false);
  static Value new_dict();
  static Value new_namespace();
  static Value from_callable(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);
  static Value from_json(const nlohmann::json& j);
  static Value from_json(const nlohmann::ordered_json& j);  // keeps key order, as Python's json.load does

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }
  bool is_integral() const { return kind == Kind::Int || kind == Kind::Bool; }
  int64_t as_int() const { return kind == Kind::Bool ? (boolean ? 1 : 0) : integer; }
  double as_double() const { return kind == Kind::Float ? floating : static_cast<double>(as_int()); }

  bool truthy() const;
  std::string to_str() const;   // Python str()
  std::string repr() const;     // Python repr()
  std::string type_name() const;  // Python's type name, for error messages ("dict object")
};

bool values_equal(const Value& a, const Value& b);
// Python ordering for sort/</>: numbers, strings (by code point), lists; anything else is a TypeError,
// reported as an adallm::Error by the caller through `ok` = false.
int compare_values(const Value& a, const Value& b, bool& ok);

std::string python_float_repr(double v);

// UTF-8 helpers: Python's str works on code points.
std::u32string utf8_decode(std::string_view s);
std::string utf8_encode(std::u32string_view s);
void utf8_append(std::string& out, char32_t cp);
size_t utf8_length(std::string_view s);
bool py_isspace(char32_t c);

// json.dumps(x, ensure_ascii, indent, separators, sort_keys) as transformers' tojson calls it.
struct JsonDumpOptions {
  bool ensure_ascii = false;
  int indent = -1;  // -1: None
  std::string indent_str;  // when indent is given as a string
  bool indent_is_string = false;
  std::string item_separator;  // empty: Python's default for the indent mode
  std::string key_separator;
  bool separators_given = false;
  bool sort_keys = false;
};
// Throws std::runtime_error naming the unserialisable type; the interpreter turns it into an Error.
std::string json_dumps(const Value& v, const JsonDumpOptions& options);

}  // namespace adallm::text::jinja
