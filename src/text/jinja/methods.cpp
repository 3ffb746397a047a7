// Python methods reachable from templates: str (strip family, split/rsplit, startswith, replace, find,
// count, case changes, format, join...), dict (items, keys, values, get) and list (index, count), plus
// "%" formatting. Mutating methods are refused as ImmutableSandboxedEnvironment refuses them.
#include <algorithm>
#include <cstdio>
#include <stdexcept>

#include "text/jinja/builtins.h"
#include "text/jinja/interpreter.h"

namespace adallm::text::jinja {
namespace {

const char* const kStringMethods[] = {
    "strip", "lstrip", "rstrip", "startswith", "endswith", "split", "rsplit", "replace", "upper", "lower",
    "title", "capitalize", "find", "rfind", "count", "index", "join", "isdigit", "isalpha", "isalnum",
    "isspace", "islower", "isupper", "format", "removeprefix", "removesuffix", "splitlines", "swapcase"};
const char* const kDictMethods[] = {"items", "keys", "values", "get", "copy"};
const char* const kListMethods[] = {"index", "count", "copy"};
const char* const kMutators[] = {"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse",
                                 "update", "setdefault", "popitem"};

template <size_t N>
bool contains(const char* const (&names)[N], const std::string& name) {
  return std::find_if(std::begin(names), std::end(names), [&](const char* n) { return name == n; }) != std::end(names);
}

char32_t lower_cp(char32_t c) {
  if ((c >= 'A' && c <= 'Z') || (c >= 0xC0 && c <= 0xDE && c != 0xD7) || (c >= 0x391 && c <= 0x3AB && c != 0x3A2) ||
      (c >= 0x410 && c <= 0x42F))
    return c + 0x20;
  if (c >= 0x400 && c <= 0x40F) return c + 0x50;
  if (c >= 0x100 && c <= 0x17F && c != 0x130 && c != 0x138 && c != 0x149 && c != 0x17F) {
    bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_upper ? (c % 2 == 1) : (c % 2 == 0)) return c + 1;
  }
  return c;
}

char32_t upper_cp(char32_t c) {
  if ((c >= 'a' && c <= 'z') || (c >= 0xE0 && c <= 0xFE && c != 0xF7) || (c >= 0x3B1 && c <= 0x3CB && c != 0x3C2) ||
      (c >= 0x430 && c <= 0x44F))
    return c - 0x20;
  if (c == 0x3C2) return 0x3A3;
  if (c >= 0x450 && c <= 0x45F) return c - 0x50;
  if (c >= 0x100 && c <= 0x17F && c != 0x131 && c != 0x138 && c != 0x149 && c != 0x17F) {
    bool odd_upper = (c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E);
    if (odd_upper ? (c % 2 == 0) : (c % 2 == 1)) return c - 1;
  }
  return c;
}

bool is_cased(char32_t c) { return lower_cp(c) != c || upper_cp(c) != c; }

std::string map_cps(const std::string& s, char32_t (*f)(char32_t)) {
  std::u32string cps = utf8_decode(s);
  for (auto& c : cps) c = f(c);
  return utf8_encode(cps);
}

std::string py_title(const std::string& s) {
  std::u32string cps = utf8_decode(s);
  bool prev_cased = false;
  for (auto& c : cps) {
    bool cased = is_cased(c);
    if (cased) c = prev_cased ? lower_cp(c) : upper_cp(c);
    prev_cased = cased;
  }
  return utf8_encode(cps);
}

std::string py_capitalize(const std::string& s) {
  std::u32string cps = utf8_decode(s);
  for (size_t k = 0; k < cps.size(); ++k) cps[k] = k == 0 ? upper_cp(cps[k]) : lower_cp(cps[k]);
  return utf8_encode(cps);
}

const std::string& str_arg(CallArgs& args, size_t i, const char* method) {
  if (i >= args.positional.size() || !args.positional[i].is_string()) {
    throw RenderError(std::string("str.") + method + "() expects a string argument");
  }
  return args.positional[i].str;
}

std::vector<Value> py_split(const std::string& s, const Value& sep, int64_t maxsplit, bool from_right) {
  std::vector<std::string> parts;
  if (sep.is_none() || sep.is_undefined()) {
    std::u32string cps = utf8_decode(s);
    std::vector<std::u32string> words;
    if (!from_right) {
      size_t i = 0;
      while (true) {
        while (i < cps.size() && py_isspace(cps[i])) ++i;
        if (i >= cps.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          words.push_back(cps.substr(i));  // Python keeps the remainder's trailing whitespace
          break;
        }
        size_t j = i;
        while (j < cps.size() && !py_isspace(cps[j])) ++j;
        words.push_back(cps.substr(i, j - i));
        i = j;
      }
    } else {
      size_t i = cps.size();
      while (true) {
        while (i > 0 && py_isspace(cps[i - 1])) --i;
        if (i == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          words.push_back(cps.substr(0, i));
          break;
        }
        size_t j = i;
        while (j > 0 && !py_isspace(cps[j - 1])) --j;
        words.push_back(cps.substr(j, i - j));
        i = j;
      }
      std::reverse(words.begin(), words.end());
    }
    for (auto& w : words) parts.push_back(utf8_encode(w));
  } else {
    if (!sep.is_string()) throw RenderError("must be str or None, not " + sep.type_name());
    const std::string& d = sep.str;
    if (d.empty()) throw RenderError("empty separator");
    if (!from_right) {
      size_t i = 0;
      while (true) {
        size_t j = s.find(d, i);
        if (j == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(i));
          break;
        }
        parts.push_back(s.substr(i, j - i));
        i = j + d.size();
      }
    } else {
      size_t end = s.size();
      while (true) {
        size_t j = end >= d.size() ? s.rfind(d, end - d.size()) : std::string::npos;
        if (j == std::string::npos || (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit)) {
          parts.push_back(s.substr(0, end));
          break;
        }
        parts.push_back(s.substr(j + d.size(), end - j - d.size()));
        end = j;
      }
      std::reverse(parts.begin(), parts.end());
    }
  }
  std::vector<Value> out;
  for (auto& p : parts) out.push_back(Value::from_string(std::move(p)));
  return out;
}

std::string py_replace(const std::string& s, const std::string& old, const std::string& repl, int64_t count) {
  std::string out;
  if (old.empty()) {  // Python inserts the replacement between code points
    std::u32string cps = utf8_decode(s);
    int64_t n = 0;
    for (size_t k = 0; k <= cps.size(); ++k) {
      if (count < 0 || n < count) {
        out += repl;
        ++n;
      }
      if (k < cps.size()) utf8_append(out, cps[k]);
    }
    return out;
  }
  size_t i = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t j = s.find(old, i);
    if (j == std::string::npos) break;
    out += s.substr(i, j - i) + repl;
    i = j + old.size();
    ++n;
  }
  return out + s.substr(i);
}

bool starts_or_ends(const std::string& s, const Value& arg, bool starts) {
  auto test = [&](const std::string& p) {
    if (p.size() > s.size()) return false;
    return starts ? s.compare(0, p.size(), p) == 0 : s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  if (arg.is_string()) return test(arg.str);
  if (arg.is_list() && arg.list->is_tuple) {
    for (const auto& v : arg.list->items) {
      if (v.is_string() && test(v.str)) return true;
    }
    return false;
  }
  throw RenderError(std::string(starts ? "startswith" : "endswith") + " first arg must be str or a tuple of str, not " + arg.type_name());
}

int64_t cp_index(const std::string& s, size_t byte_pos) {
  return static_cast<int64_t>(utf8_length(std::string_view(s).substr(0, byte_pos)));
}

std::string py_format(const std::string& fmt, CallArgs& args) {
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    char c = fmt[i];
    if (c == '{' && i + 1 < fmt.size() && fmt[i + 1] == '{') { out += '{'; ++i; continue; }
    if (c == '}' && i + 1 < fmt.size() && fmt[i + 1] == '}') { out += '}'; ++i; continue; }
    if (c == '}') throw RenderError("Single '}' encountered in format string");
    if (c != '{') { out += c; continue; }
    size_t close = fmt.find('}', i);
    if (close == std::string::npos) throw RenderError("Single '{' encountered in format string");
    std::string field = fmt.substr(i + 1, close - i - 1);
    if (field.find_first_of(":!") != std::string::npos) throw RenderError("str.format() conversions and format specs are not supported: {" + field + "}");
    const Value* v = nullptr;
    if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
      size_t idx = field.empty() ? auto_index++ : std::stoul(field);
      if (idx >= args.positional.size()) throw RenderError("Replacement index " + std::to_string(idx) + " out of range for positional args tuple");
      v = &args.positional[idx];
    } else {
      for (auto& [k, val] : args.keyword) if (k == field) v = &val;
      if (!v) throw RenderError("KeyError: '" + field + "'");
    }
    out += v->to_str();
    i = close;
  }
  return out;
}

bool all_cps(const std::string& s, bool (*pred)(char32_t)) {
  std::u32string cps = utf8_decode(s);
  return !cps.empty() && std::all_of(cps.begin(), cps.end(), pred);
}

// Searching, joining, predicates, format and splitlines: the str methods that do not transform case or
// whitespace.
bool string_query_method(const std::string& s, const std::string& name, CallArgs& args, Value& r) {
  auto& p = args.positional;
  if (name == "find" || name == "rfind" || name == "index") {
    const std::string& sub = str_arg(args, 0, name.c_str());
    size_t pos = name == "rfind" ? s.rfind(sub) : s.find(sub);
    if (pos == std::string::npos && name == "index") throw RenderError("substring not found");
    r = Value::from_int(pos == std::string::npos ? -1 : cp_index(s, pos));
  } else if (name == "count") {
    const std::string& sub = str_arg(args, 0, "count");
    int64_t n = 0;
    if (sub.empty()) n = static_cast<int64_t>(utf8_length(s)) + 1;
    for (size_t i = sub.empty() ? std::string::npos : s.find(sub); i != std::string::npos; i = s.find(sub, i + sub.size())) ++n;
    r = Value::from_int(n);
  } else if (name == "join") {
    if (p.empty()) throw RenderError("join() takes exactly one argument (0 given)");
    std::string out;
    bool first = true;
    for (const Value& v : iterate(p[0])) {
      if (!v.is_string()) throw RenderError("sequence item: expected str instance, " + v.type_name() + " found");
      if (!first) out += s;
      out += v.str;
      first = false;
    }
    r = Value::from_string(std::move(out));
  } else if (name == "isdigit" || name == "isalpha" || name == "isalnum" || name == "isspace") {
    bool (*pred)(char32_t) = name == "isdigit" ? [](char32_t c) { return c >= '0' && c <= '9'; }
                           : name == "isalpha" ? [](char32_t c) { return is_cased(c) || (c >= 0x4E00 && c <= 0x9FFF); }
                           : name == "isalnum" ? [](char32_t c) { return (c >= '0' && c <= '9') || is_cased(c) || (c >= 0x4E00 && c <= 0x9FFF); }
                                               : py_isspace;
    r = Value::from_bool(all_cps(s, pred));
  } else if (name == "islower" || name == "isupper") {
    bool lower = name == "islower", any = false, ok = true;
    for (char32_t c : utf8_decode(s)) {
      if (!is_cased(c)) continue;
      any = true;
      ok = ok && (lower ? lower_cp(c) == c : upper_cp(c) == c);
    }
    r = Value::from_bool(any && ok);
  } else if (name == "format") {
    r = Value::from_string(py_format(s, args));
  } else if (name == "removeprefix" || name == "removesuffix") {
    const std::string& a = str_arg(args, 0, name.c_str());
    bool pre = name == "removeprefix";
    bool hit = starts_or_ends(s, Value::from_string(a), pre);
    r = Value::from_string(!hit ? s : pre ? s.substr(a.size()) : s.substr(0, s.size() - a.size()));
  } else if (name == "splitlines") {
    std::vector<Value> lines;
    std::u32string cps = utf8_decode(s), cur;
    for (size_t k = 0; k < cps.size(); ++k) {
      char32_t c = cps[k];
      bool brk = c == '\n' || c == '\r' || c == 0x0b || c == 0x0c || (c >= 0x1c && c <= 0x1e) || c == 0x85 || c == 0x2028 || c == 0x2029;
      if (!brk) { cur += c; continue; }
      if (c == '\r' && k + 1 < cps.size() && cps[k + 1] == '\n') ++k;
      lines.push_back(Value::from_string(utf8_encode(cur)));
      cur.clear();
    }
    if (!cur.empty()) lines.push_back(Value::from_string(utf8_encode(cur)));
    r = Value::new_list(std::move(lines));
  } else {
    return false;
  }
  return true;
}

bool string_method(const std::string& s, const std::string& name, CallArgs& args, Value& r) {
  auto& p = args.positional;
  Value none = Value::none();
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    r = Value::from_string(py_strip(s, p.empty() ? none : p[0], name != "rstrip", name != "lstrip"));
  } else if (name == "startswith" || name == "endswith") {
    if (p.empty()) throw RenderError(name + "() takes at least 1 argument (0 given)");
    r = Value::from_bool(starts_or_ends(s, p[0], name == "startswith"));
  } else if (name == "split" || name == "rsplit") {
    Value sep = arg_or(args, 0, "sep", none);
    Value maxsplit = arg_or(args, 1, "maxsplit", Value::from_int(-1));
    r = Value::new_list(py_split(s, sep, maxsplit.as_int(), name == "rsplit"));
  } else if (name == "replace") {
    Value count = arg_or(args, 2, "count", Value::from_int(-1));
    r = Value::from_string(py_replace(s, str_arg(args, 0, "replace"), str_arg(args, 1, "replace"), count.as_int()));
  } else if (name == "upper" || name == "lower" || name == "swapcase") {
    r = Value::from_string(name == "upper" ? py_upper(s) : name == "lower" ? py_lower(s)
                           : map_cps(s, [](char32_t c) { return lower_cp(c) != c ? lower_cp(c) : upper_cp(c); }));
  } else if (name == "title") {
    r = Value::from_string(py_title(s));
  } else if (name == "capitalize") {
    r = Value::from_string(py_capitalize(s));
  } else {
    return string_query_method(s, name, args, r);
  }
  return true;
}

}  // namespace

std::string py_lower(const std::string& s) { return map_cps(s, lower_cp); }
std::string py_upper(const std::string& s) { return map_cps(s, upper_cp); }

std::string py_strip(const std::string& s, const Value& chars, bool left, bool right) {
  std::u32string cps = utf8_decode(s);
  std::u32string set;
  bool whitespace = chars.is_none() || chars.is_undefined();
  if (!whitespace) {
    if (!chars.is_string()) throw RenderError("strip arg must be None or str, not " + chars.type_name());
    set = utf8_decode(chars.str);
  }
  auto strip_it = [&](char32_t c) { return whitespace ? py_isspace(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = cps.size();
  if (left) while (b < e && strip_it(cps[b])) ++b;
  if (right) while (e > b && strip_it(cps[e - 1])) --e;
  return utf8_encode(std::u32string_view(cps).substr(b, e - b));
}

const Value* find_arg(CallArgs& args, size_t index, std::string_view keyword) {
  if (index < args.positional.size()) return &args.positional[index];
  for (auto& [k, v] : args.keyword) {
    if (k == keyword) return &v;
  }
  return nullptr;
}

Value arg_or(CallArgs& args, size_t index, std::string_view keyword, Value fallback) {
  const Value* v = find_arg(args, index, keyword);
  return v ? *v : std::move(fallback);
}

bool has_method(const Value& object, const std::string& name) {
  switch (object.kind) {
    case Kind::String: return contains(kStringMethods, name);
    case Kind::Dict: return contains(kDictMethods, name) || contains(kMutators, name);
    case Kind::List: return contains(kListMethods, name) || contains(kMutators, name);
    default: return false;
  }
}

bool call_method(const Value& object, const std::string& name, CallArgs& args, Value& r) {
  if (!has_method(object, name)) return false;
  if ((object.kind == Kind::Dict || object.kind == Kind::List) && contains(kMutators, name)) {
    throw RenderError("access to attribute '" + name + "' of '" + object.type_name() + "' object is unsafe.");
  }
  if (object.kind == Kind::String) return string_method(object.str, name, args, r);
  if (name == "copy") {
    r = object.kind == Kind::List ? Value::new_list(object.list->items, object.list->is_tuple) : Value::new_dict();
    if (object.kind == Kind::Dict) r.dict->items = object.dict->items;
    return true;
  }
  if (object.kind == Kind::Dict) {
    std::vector<Value> out;
    if (name == "get") {
      if (args.positional.empty()) throw RenderError("get expected at least 1 argument, got 0");
      const Value* v = object.dict->find(args.positional[0]);
      r = v ? *v : (args.positional.size() > 1 ? args.positional[1] : Value::none());
      return true;
    }
    for (const auto& [k, v] : object.dict->items) {
      out.push_back(name == "keys" ? k : name == "values" ? v : Value::new_list({k, v}, true));
    }
    r = Value::new_list(std::move(out));
    return true;
  }
  if (args.positional.empty()) throw RenderError(name + "() takes at least 1 argument (0 given)");
  int64_t n = 0, first = -1;
  for (size_t k = 0; k < object.list->items.size(); ++k) {
    if (!values_equal(object.list->items[k], args.positional[0])) continue;
    ++n;
    if (first < 0) first = static_cast<int64_t>(k);
  }
  if (name == "index" && first < 0) throw RenderError(args.positional[0].repr() + " is not in list");
  r = Value::from_int(name == "index" ? first : n);
  return true;
}

std::string percent_format(const std::string& fmt, const std::vector<Value>& args) {
  std::string out;
  size_t next = 0;
  for (size_t i = 0; i < fmt.size(); ++i) {
    if (fmt[i] != '%') { out += fmt[i]; continue; }
    if (++i >= fmt.size()) throw RenderError("incomplete format");
    char c = fmt[i];
    if (c == '%') { out += '%'; continue; }
    if (next >= args.size()) throw RenderError("not enough arguments for format string");
    const Value& v = args[next++];
    if (c == 's') out += v.to_str();
    else if (c == 'r') out += v.repr();
    else if (c == 'd' || c == 'i') {
      if (!v.is_number()) throw RenderError(std::string("%") + c + " format: a real number is required, not " + v.type_name());
      out += std::to_string(v.kind == Kind::Float ? static_cast<int64_t>(v.floating) : v.as_int());
    } else if (c == 'f') {
      if (!v.is_number()) throw RenderError("must be real number, not " + v.type_name());
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.6f", v.as_double());
      out += buf;
    } else {
      throw RenderError(std::string("unsupported format character '") + c + "'");
    }
  }
  if (next < args.size()) throw RenderError("not all arguments converted during string formatting");
  return out;
}

}  // namespace adallm::text::jinja
