// Jinja2 3.1's built-in filters that chat templates use, plus transformers' tojson (json.dumps with
// ensure_ascii=False, indent, separators, sort_keys, not Jinja2's HTML-safe tojson). Each follows the
// Python source's edge cases: default only replaces Undefined unless boolean=true, int() falls back to
// int(float()), indent keeps blank lines unindented, title splits on "-", whitespace and brackets.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"

namespace adallm::text::jinja {
namespace {

const char* const kFilters[] = {
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape", "first", "float",
    "forceescape", "format", "indent", "int", "items", "join", "last", "length", "list", "lower", "map", "max",
    "min", "pprint", "reject", "rejectattr", "replace", "reverse", "round", "safe", "select", "selectattr",
    "sort", "string", "sum", "title", "tojson", "trim", "unique", "upper", "wordcount"};

// Jinja2's make_attrgetter: "a.b.0" walks getitem (keys first, then attributes) one part at a time.
Value get_attribute_path(Interpreter& in, Value item, const Value& attribute) {
  if (!attribute.is_string()) return in.eval_getitem(item, attribute);
  const std::string& path = attribute.str;
  size_t start = 0;
  while (true) {
    size_t dot = path.find('.', start);
    std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    item = in.eval_getitem(item, digits ? Value::from_int(std::stoll(part)) : Value::from_string(part));
    if (dot == std::string::npos) return item;
    start = dot + 1;
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

size_t py_len(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return 0;
    case Kind::String: return utf8_length(v.str);
    case Kind::List: return v.list->items.size();
    case Kind::Dict:
    case Kind::Namespace: return v.dict->items.size();
    default: throw RenderError("object of type '" + v.type_name() + "' has no len()");
  }
}

Value sort_key(const Value& v, bool case_sensitive) {
  return !case_sensitive && v.is_string() ? Value::from_string(py_lower(v.str)) : v;
}

void stable_sort_values(std::vector<Value>& items, const std::vector<Value>& keys, bool reverse) {
  std::vector<size_t> order(items.size());
  for (size_t k = 0; k < order.size(); ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    bool ok;
    int c = compare_values(keys[a], keys[b], ok);
    if (!ok) throw RenderError("'<' not supported between instances of '" + keys[a].type_name() + "' and '" + keys[b].type_name() + "'");
    return reverse ? c > 0 : c < 0;
  });
  std::vector<Value> sorted;
  for (size_t k : order) sorted.push_back(items[k]);
  items = std::move(sorted);
}

JsonDumpOptions json_options(CallArgs& args) {
  JsonDumpOptions o;
  o.ensure_ascii = arg_or(args, 0, "ensure_ascii", Value::from_bool(false)).truthy();
  Value indent = arg_or(args, 1, "indent", Value::none());
  if (indent.is_string()) {
    o.indent_is_string = true;
    o.indent_str = indent.str;
  } else if (indent.is_integral()) {
    o.indent = static_cast<int>(std::max<int64_t>(0, indent.as_int()));
  } else if (!indent.is_none()) {
    throw RenderError("tojson indent must be an int, a string or None, not " + indent.type_name());
  }
  Value sep = arg_or(args, 2, "separators", Value::none());
  if (!sep.is_none()) {
    if (!sep.is_list() || sep.list->items.size() != 2 || !sep.list->items[0].is_string() || !sep.list->items[1].is_string()) {
      throw RenderError("tojson separators must be a pair of strings");
    }
    o.separators_given = true;
    o.item_separator = sep.list->items[0].str;
    o.key_separator = sep.list->items[1].str;
  }
  o.sort_keys = arg_or(args, 3, "sort_keys", Value::from_bool(false)).truthy();
  return o;
}

Value filter_int(const Value& v, CallArgs& args) {
  Value dflt = arg_or(args, 0, "default", Value::from_int(0));
  int base = static_cast<int>(arg_or(args, 1, "base", Value::from_int(10)).as_int());
  if (v.is_integral()) return Value::from_int(v.as_int());
  if (v.kind == Kind::Float) return std::isfinite(v.floating) ? Value::from_int(static_cast<int64_t>(v.floating)) : dflt;
  if (!v.is_string()) return dflt;
  std::string s = py_strip(v.str, Value::none(), true, true);
  try {
    size_t used = 0;
    int64_t r = std::stoll(s, &used, base);
    if (used == s.size()) return Value::from_int(r);
  } catch (const std::exception&) {
  }
  try {
    size_t used = 0;
    double d = std::stod(s, &used);
    if (used == s.size() && std::isfinite(d)) return Value::from_int(static_cast<int64_t>(d));
  } catch (const std::exception&) {
  }
  return dflt;
}

Value filter_float(const Value& v, CallArgs& args) {
  Value dflt = arg_or(args, 0, "default", Value::from_float(0.0));
  if (v.is_number()) return Value::from_float(v.as_double());
  if (!v.is_string()) return dflt;
  std::string s = py_strip(v.str, Value::none(), true, true);
  try {
    size_t used = 0;
    double d = std::stod(s, &used);
    if (used == s.size()) return Value::from_float(d);
  } catch (const std::exception&) {
  }
  return dflt;
}

std::string filter_indent(const std::string& input, CallArgs& args) {
  Value width = arg_or(args, 0, "width", Value::from_int(4));
  bool first = arg_or(args, 1, "first", Value::from_bool(false)).truthy();
  bool blank = arg_or(args, 2, "blank", Value::from_bool(false)).truthy();
  std::string indention = width.is_string() ? width.str : std::string(static_cast<size_t>(std::max<int64_t>(0, width.as_int())), ' ');
  Value lines_v;
  CallArgs none;
  call_method(Value::from_string(input + "\n"), "splitlines", none, lines_v);
  const auto& lines = lines_v.list->items;
  std::string rv;
  for (size_t k = 0; k < lines.size(); ++k) {
    if (k == 0) {
      rv = lines[0].str;
      continue;
    }
    rv += "\n";
    if (blank || !lines[k].str.empty()) rv += indention;
    rv += lines[k].str;
  }
  return first ? indention + rv : rv;
}

std::vector<Value> select_items(Interpreter& in, const std::string& name, const Value& seq, CallArgs& args) {
  bool by_attr = name == "selectattr" || name == "rejectattr";
  bool keep_when = name == "select" || name == "selectattr";
  size_t first_test_arg = by_attr ? 1 : 0;
  Value attr = by_attr ? arg_or(args, 0, "", Value::undefined()) : Value();
  if (by_attr && attr.is_undefined()) throw RenderError(name + " needs an attribute name");
  const Value* test = first_test_arg < args.positional.size() ? &args.positional[first_test_arg] : nullptr;
  CallArgs test_args;
  for (size_t k = first_test_arg + 1; k < args.positional.size(); ++k) test_args.positional.push_back(args.positional[k]);
  std::vector<Value> out;
  for (const Value& item : iterate(seq)) {
    Value subject = by_attr ? get_attribute_path(in, item, attr) : item;
    bool r;
    if (!test) {
      r = subject.truthy();
    } else {
      if (!test->is_string() || !is_known_test(test->str)) throw RenderError("no test named " + test->repr());
      CallArgs a = test_args;
      r = apply_test(in, test->str, subject, a);
    }
    if (r == keep_when) out.push_back(item);
  }
  return out;
}

Value filter_map(Interpreter& in, const Value& seq, CallArgs& args) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  for (auto& [k, v] : args.keyword) {
    if (k == "attribute") attribute = &v;
  }
  if (attribute) {
    Value dflt = arg_or(args, 99, "default", Value::undefined());
    for (const Value& item : iterate(seq)) {
      Value v = get_attribute_path(in, item, *attribute);
      out.push_back(v.is_undefined() && !dflt.is_undefined() ? dflt : v);
    }
    return Value::new_list(std::move(out));
  }
  if (args.positional.empty() || !args.positional[0].is_string()) throw RenderError("map needs a filter name or attribute=");
  std::string filter = args.positional[0].str;
  if (!is_known_filter(filter)) throw RenderError("no filter named '" + filter + "'");
  CallArgs rest;
  rest.positional.assign(args.positional.begin() + 1, args.positional.end());
  rest.keyword = args.keyword;
  for (const Value& item : iterate(seq)) {
    CallArgs a = rest;
    out.push_back(apply_filter(in, filter, item, a));
  }
  return Value::new_list(std::move(out));
}

Value min_max(Interpreter& in, const Value& seq, CallArgs& args, bool want_max) {
  bool cs = arg_or(args, 0, "case_sensitive", Value::from_bool(false)).truthy();
  Value attr = arg_or(args, 1, "attribute", Value::none());
  Value best = Value::undefined("No aggregated item, sequence was empty.");
  Value best_key;
  for (const Value& item : iterate(seq)) {
    Value key = sort_key(attr.is_none() ? item : get_attribute_path(in, item, attr), cs);
    bool ok = true;
    if (!best.is_undefined()) {
      int c = compare_values(key, best_key, ok);
      if (!ok) throw RenderError("cannot compare " + key.type_name() + " with " + best_key.type_name());
      if (want_max ? c <= 0 : c >= 0) continue;
    }
    best = item;
    best_key = key;
  }
  return best;
}

// Filters that take and return strings (Jinja2's soft_str turns Undefined into "").
Value string_filter(const std::string& name, const std::string& s, CallArgs& args) {
  // The remaining filters take and return strings (Jinja2's soft_str turns Undefined into "").
  if (name == "trim") return Value::from_string(py_strip(s, arg_or(args, 0, "chars", Value::none()), true, true));
  if (name == "lower") return Value::from_string(py_lower(s));
  if (name == "upper") return Value::from_string(py_upper(s));
  if (name == "escape" || name == "e" || name == "forceescape") return Value::from_string(html_escape(s));
  if (name == "indent") return Value::from_string(filter_indent(s, args));
  if (name == "capitalize" || name == "title") {
    Value r;
    CallArgs none;
    if (name == "capitalize") {
      call_method(Value::from_string(s), "capitalize", none, r);
      return r;
    }
    // Jinja2's title: capitalise each chunk after "-", whitespace, "(", "{", "[" or "<".
    std::u32string cps = utf8_decode(s);
    bool boundary = true;
    for (auto& c : cps) {
      bool sep = c == '-' || py_isspace(c) || c == '(' || c == '{' || c == '[' || c == '<';
      if (!sep) {
        std::string one = utf8_encode(std::u32string(1, c));
        std::string mapped = boundary ? py_upper(one) : py_lower(one);
        c = utf8_decode(mapped)[0];
      }
      boundary = sep;
    }
    return Value::from_string(utf8_encode(cps));
  }
  if (name == "replace") {
    Value r;
    CallArgs a;
    a.positional = {arg_or(args, 0, "old", Value::from_string("")), arg_or(args, 1, "new", Value::from_string(""))};
    Value count = arg_or(args, 2, "count", Value::none());
    if (!count.is_none()) a.positional.push_back(count);
    call_method(Value::from_string(s), "replace", a, r);
    return r;
  }
  if (name == "wordcount") {
    int64_t n = 0;
    bool in_word = false;
    for (char32_t c : utf8_decode(s)) {
      bool word = (c < 0x80 && (std::isalnum(static_cast<int>(c)) || c == '_')) || (c >= 0x80 && !py_isspace(c));
      if (word && !in_word) ++n;
      in_word = word;
    }
    return Value::from_int(n);
  }
  throw RenderError("unknown filter '" + name + "'");
}

// Filters that reorder or aggregate a sequence or mapping.
Value collection_filter(Interpreter& in, const std::string& name, const Value& v, CallArgs& args) {
  if (name == "items") {
    if (v.is_undefined()) return Value::new_list();
    if (v.kind != Kind::Dict) throw RenderError("Can only get item pairs from a mapping.");
    std::vector<Value> out;
    for (const auto& [k, val] : v.dict->items) out.push_back(Value::new_list({k, val}, true));
    return Value::new_list(std::move(out));
  }
  if (name == "dictsort") {
    if (v.kind != Kind::Dict) throw RenderError("You can only sort by either a dict, got " + v.type_name());
    bool cs = arg_or(args, 0, "case_sensitive", Value::from_bool(false)).truthy();
    std::string by = arg_or(args, 1, "by", Value::from_string("key")).to_str();
    bool reverse = arg_or(args, 2, "reverse", Value::from_bool(false)).truthy();
    std::vector<Value> items, keys;
    for (const auto& [k, val] : v.dict->items) {
      items.push_back(Value::new_list({k, val}, true));
      keys.push_back(sort_key(by == "value" ? val : k, cs));
    }
    stable_sort_values(items, keys, reverse);
    return Value::new_list(std::move(items));
  }
  if (name == "sort" || name == "unique") {
    bool unique = name == "unique";
    bool reverse = !unique && arg_or(args, 0, "reverse", Value::from_bool(false)).truthy();
    bool cs = arg_or(args, unique ? 0 : 1, "case_sensitive", Value::from_bool(false)).truthy();
    Value attr = arg_or(args, unique ? 1 : 2, "attribute", Value::none());
    std::vector<Value> items = iterate(v), keys;
    for (const Value& item : items) keys.push_back(sort_key(attr.is_none() ? item : get_attribute_path(in, item, attr), cs));
    if (!unique) {
      stable_sort_values(items, keys, reverse);
      return Value::new_list(std::move(items));
    }
    std::vector<Value> out, seen;
    for (size_t k = 0; k < items.size(); ++k) {
      if (std::any_of(seen.begin(), seen.end(), [&](const Value& s) { return values_equal(s, keys[k]); })) continue;
      seen.push_back(keys[k]);
      out.push_back(items[k]);
    }
    return Value::new_list(std::move(out));
  }
  if (name == "reverse") {
    if (v.is_string()) {
      std::u32string cps = utf8_decode(v.str);
      std::reverse(cps.begin(), cps.end());
      return Value::from_string(utf8_encode(cps));
    }
    std::vector<Value> items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::new_list(std::move(items));
  }
  if (name == "sum") {
    Value attr = arg_or(args, 0, "attribute", Value::none());
    Value total = arg_or(args, 1, "start", Value::from_int(0));
    for (const Value& item : iterate(v)) {
      Value x = attr.is_none() ? item : get_attribute_path(in, item, attr);
      if (!x.is_number() || !total.is_number()) throw RenderError("unsupported operand type(s) for +: '" + total.type_name() + "' and '" + x.type_name() + "'");
      total = total.is_integral() && x.is_integral() ? Value::from_int(total.as_int() + x.as_int()) : Value::from_float(total.as_double() + x.as_double());
    }
    return total;
  }
  throw RenderError("unknown filter '" + name + "'");
}

}  // namespace

bool is_known_filter(std::string_view name) {
  for (const char* f : kFilters) {
    if (name == f) return true;
  }
  return false;
}

Value apply_filter(Interpreter& in, const std::string& name, Value v, CallArgs& args) {
  if (name == "default" || name == "d") {
    bool boolean = arg_or(args, 1, "boolean", Value::from_bool(false)).truthy();
    if (v.is_undefined() || (boolean && !v.truthy())) return arg_or(args, 0, "default_value", Value::from_string(""));
    return v;
  }
  if (name == "tojson") {
    try {
      return Value::from_string(json_dumps(v, json_options(args)));
    } catch (const std::runtime_error& e) {
      throw RenderError(std::string("tojson: ") + e.what());
    }
  }
  if (name == "length" || name == "count") return Value::from_int(static_cast<int64_t>(py_len(v)));
  if (name == "string") return Value::from_string(v.to_str());
  if (name == "safe") return v;
  if (name == "pprint") return Value::from_string(v.repr());
  if ((name == "int" || name == "float") && v.is_undefined()) undefined_error(v);  // Undefined.__int__ raises
  if (name == "int") return filter_int(v, args);
  if (name == "float") return filter_float(v, args);
  if (name == "list") return Value::new_list(iterate(v));
  if (name == "abs") {
    if (!v.is_number()) throw RenderError("bad operand type for abs(): '" + v.type_name() + "'");
    return v.kind == Kind::Float ? Value::from_float(std::fabs(v.floating)) : Value::from_int(std::llabs(v.as_int()));
  }
  if (name == "attr") {  // getattr only: dict keys are not attributes
    std::string attr = arg_or(args, 0, "name", Value::from_string("")).to_str();
    if (v.kind == Kind::Namespace || has_method(v, attr)) return in.eval_getattr(v, attr);
    return Value::undefined("'" + v.type_name() + " object' has no attribute '" + attr + "'");
  }
  if (name == "select" || name == "reject" || name == "selectattr" || name == "rejectattr") {
    return Value::new_list(select_items(in, name, v, args));
  }
  if (name == "map") return filter_map(in, v, args);
  if (name == "max" || name == "min") return min_max(in, v, args, name == "max");
  if (name == "first" || name == "last") {
    std::vector<Value> items = iterate(v);
    if (items.empty()) return Value::undefined(std::string("No ") + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "items" || name == "dictsort" || name == "sort" || name == "unique" || name == "reverse" ||
      name == "sum") {
    return collection_filter(in, name, v, args);
  }
  if (name == "round") {
    int64_t precision = arg_or(args, 0, "precision", Value::from_int(0)).as_int();
    std::string method = arg_or(args, 1, "method", Value::from_string("common")).to_str();
    if (!v.is_number()) throw RenderError("round needs a number, got " + v.type_name());
    double scale = std::pow(10.0, static_cast<double>(precision)), x = v.as_double() * scale;
    double r = method == "ceil" ? std::ceil(x) : method == "floor" ? std::floor(x) : std::nearbyint(x);
    if (method == "common" && v.is_integral()) return Value::from_int(v.as_int());
    return Value::from_float(r / scale);
  }
  if (name == "join") {
    std::string sep = arg_or(args, 0, "d", Value::from_string("")).to_str();
    Value attr = arg_or(args, 1, "attribute", Value::none());
    std::string out;
    bool first = true;
    for (const Value& item : iterate(v)) {
      if (!first) out += sep;
      out += (attr.is_none() ? item : get_attribute_path(in, item, attr)).to_str();
      first = false;
    }
    return Value::from_string(std::move(out));
  }
  if (name == "format") {
    return Value::from_string(percent_format(v.to_str(), args.positional));
  }
  return string_filter(name, v.to_str(), args);
}

}  // namespace adallm::text::jinja
