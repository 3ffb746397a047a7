// json.dumps as transformers' tojson filter calls it: ensure_ascii=False by default, Python's default
// separators (", " and ": ", or "," with indent), float repr, NaN/Infinity, insertion-ordered keys unless
// sort_keys. Kept apart from value.cpp because its escaping rules are Python's json module's, not repr's.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

#include "text/jinja/value.h"

namespace adallm::text::jinja {
namespace {

void dump_string(std::string& out, const std::string& s, bool ensure_ascii) {
  out += '"';
  for (char32_t c : utf8_decode(s)) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default: {
        char buf[16];
        if (c < 0x20 || (ensure_ascii && c > 0x7e)) {
          if (c >= 0x10000) {  // ensure_ascii writes astral code points as surrogate pairs
            char32_t v = c - 0x10000;
            std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xd800 + (v >> 10)),
                          static_cast<unsigned>(0xdc00 + (v & 0x3ff)));
          } else {
            std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          }
          out += buf;
        } else {
          utf8_append(out, c);
        }
      }
    }
  }
  out += '"';
}

struct Dumper {
  const JsonDumpOptions& opt;
  std::string out;

  bool indenting() const { return opt.indent >= 0 || opt.indent_is_string; }
  std::string indent_unit() const {
    return opt.indent_is_string ? opt.indent_str : std::string(static_cast<size_t>(opt.indent), ' ');
  }
  void newline(int level) {
    out += '\n';
    std::string unit = indent_unit();
    for (int k = 0; k < level; ++k) out += unit;
  }
  std::string item_sep() const {
    if (opt.separators_given) return opt.item_separator;
    return indenting() ? "," : ", ";
  }
  std::string key_sep() const { return opt.separators_given ? opt.key_separator : ": "; }

  std::string key_string(const Value& k) {
    // Python's json turns str/int/float/bool/None keys into strings; anything else is a TypeError.
    switch (k.kind) {
      case Kind::String: return k.str;
      case Kind::Int: return std::to_string(k.integer);
      case Kind::Float: return python_float_repr(k.floating);
      case Kind::Bool: return k.boolean ? "true" : "false";
      case Kind::None: return "null";
      default: throw std::runtime_error("keys must be str, int, float, bool or None, not " + k.type_name());
    }
  }

  void dump(const Value& v, int level) {
    switch (v.kind) {
      case Kind::None: out += "null"; return;
      case Kind::Bool: out += v.boolean ? "true" : "false"; return;
      case Kind::Int: out += std::to_string(v.integer); return;
      case Kind::Float:
        if (std::isnan(v.floating)) out += "NaN";
        else if (std::isinf(v.floating)) out += v.floating > 0 ? "Infinity" : "-Infinity";
        else out += python_float_repr(v.floating);
        return;
      case Kind::String: dump_string(out, v.str, opt.ensure_ascii); return;
      case Kind::List: {
        if (v.list->items.empty()) {
          out += "[]";
          return;
        }
        out += '[';
        for (size_t k = 0; k < v.list->items.size(); ++k) {
          if (k) out += item_sep();
          if (indenting()) newline(level + 1);
          dump(v.list->items[k], level + 1);
        }
        if (indenting()) newline(level);
        out += ']';
        return;
      }
      case Kind::Dict: {
        if (v.dict->items.empty()) {
          out += "{}";
          return;
        }
        std::vector<std::pair<std::string, const Value*>> entries;
        for (const auto& [k, val] : v.dict->items) entries.emplace_back(key_string(k), &val);
        if (opt.sort_keys) {
          std::stable_sort(entries.begin(), entries.end(),
                           [](const auto& a, const auto& b) { return a.first < b.first; });
        }
        out += '{';
        for (size_t k = 0; k < entries.size(); ++k) {
          if (k) out += item_sep();
          if (indenting()) newline(level + 1);
          dump_string(out, entries[k].first, opt.ensure_ascii);
          out += key_sep();
          dump(*entries[k].second, level + 1);
        }
        if (indenting()) newline(level);
        out += '}';
        return;
      }
      default: throw std::runtime_error("Object of type " + v.type_name() + " is not JSON serializable");
    }
  }
};

}  // namespace

std::string json_dumps(const Value& v, const JsonDumpOptions& options) {
  Dumper d{options, {}};
  d.dump(v, 0);
  return std::move(d.out);
}

}  // namespace adallm::text::jinja
