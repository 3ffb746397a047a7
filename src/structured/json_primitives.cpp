// SchemaCompiler's strings (UTF-8 checked, lengths in code points), integers (ranges spelled out digit by
// digit, as regex range generators do), numbers and the string formats it can spell (date-time, date,
// time, uuid).
#include <algorithm>
#include <cmath>
#include <limits>

#include "structured/json_schema.h"

namespace adallm::structured {
namespace {

using json = nlohmann::ordered_json;

constexpr int64_t kMaxLength = 4096;    // bounded strings are spelled out, one rule per optional character
constexpr double kMaxBound = 1e15;      // integer bounds past this are refused (exact in a double)

int64_t length_field(const json& schema, const char* key, const std::string& path) {
  const json& v = schema.at(key);
  if (!v.is_number_integer() || v.get<int64_t>() < 0) {
    throw SchemaError(path + "." + key, "expected a non-negative integer, got " + v.dump());
  }
  if (v.get<int64_t>() > kMaxLength) {
    throw SchemaError(path + "." + key, "at most " + std::to_string(kMaxLength) + " is supported, got " + v.dump());
  }
  return v.get<int64_t>();
}

double bound(const json& schema, const char* key, const std::string& path) {
  const json& v = schema.at(key);
  if (!v.is_number()) throw SchemaError(path + "." + key, "expected a number, got " + v.dump());
  const double d = v.get<double>();
  if (!(std::fabs(d) <= kMaxBound)) {
    throw SchemaError(path + "." + key, "bounds beyond ±1e15 are not supported, got " + v.dump());
  }
  return d;
}

}  // namespace

int32_t SchemaCompiler::digits() {
  auto [it, added] = shared_.emplace("digits", 0);
  if (!added) return it->second;
  const int32_t r = b_.declare();
  it->second = r;
  b_.alternative(r, {});
  b_.alternative(r, {b_.byte_range('0', '9'), GrammarBuilder::ref(r)});
  return r;
}

int32_t SchemaCompiler::natural() {
  auto [it, added] = shared_.emplace("natural", 0);
  if (added) it->second = b_.rule({b_.literal("0"), {b_.byte_range('1', '9'), GrammarBuilder::ref(digits())}});
  return it->second;
}

int32_t SchemaCompiler::plain_integer() {
  auto [it, added] = shared_.emplace("integer", 0);
  if (added) {
    const int32_t n = natural();
    it->second = b_.rule({{GrammarBuilder::ref(n)}, {b_.byte_range('-', '-'), GrammarBuilder::ref(n)}});
  }
  return it->second;
}

int32_t SchemaCompiler::plain_number() {
  auto [it, added] = shared_.emplace("number", 0);
  if (!added) return it->second;
  const int32_t d = digits();
  const int32_t fraction = b_.rule({{}, {b_.byte_range('.', '.'), b_.byte_range('0', '9'), GrammarBuilder::ref(d)}});
  const int32_t sign = b_.rule({{}, b_.literal("+"), b_.literal("-")});
  std::bitset<256> e;
  e.set('e');
  e.set('E');
  const int32_t exponent =
      b_.rule({{}, {b_.byte_set(e), GrammarBuilder::ref(sign), b_.byte_range('0', '9'), GrammarBuilder::ref(d)}});
  const int32_t r = b_.rule({{GrammarBuilder::ref(plain_integer()), GrammarBuilder::ref(fraction),
                              GrammarBuilder::ref(exponent)}});
  shared_["number"] = r;
  return r;
}

int32_t SchemaCompiler::char_rule() {
  auto [it, added] = shared_.emplace("char", 0);
  if (!added) return it->second;
  std::bitset<256> plain;
  for (int c = 0x20; c < 0x80; ++c) plain.set(static_cast<size_t>(c));
  plain.reset('"');
  plain.reset('\\');
  std::bitset<256> escaped;
  for (char c : std::string("\"\\/bfnrt")) escaped.set(static_cast<uint8_t>(c));
  std::bitset<256> hex;
  for (char c : std::string("0123456789abcdefABCDEF")) hex.set(static_cast<uint8_t>(c));
  const Element h = b_.byte_set(hex);
  // Any \uXXXX (a lone surrogate's too: JSON's grammar allows it), and well-formed UTF-8 only (RFC 3629:
  // no overlongs, no surrogates, nothing past U+10FFFF). content_char (json_pattern.cpp) spells a subset
  // of the code points the same way.
  std::vector<std::vector<Element>> alts = {
      {b_.byte_set(plain)},
      {b_.byte_range('\\', '\\'), b_.byte_set(escaped)},
      {b_.byte_range('\\', '\\'), b_.byte_range('u', 'u'), h, h, h, h},
  };
  utf8_alternatives(b_, 0x80, 0x10FFFF, alts);
  it->second = b_.rule(alts);
  return it->second;
}

int32_t SchemaCompiler::chars() {
  auto [it, added] = shared_.emplace("chars", 0);
  if (!added) return it->second;
  const int32_t r = b_.declare();
  it->second = r;
  b_.alternative(r, {});
  b_.alternative(r, {GrammarBuilder::ref(char_rule()), GrammarBuilder::ref(r)});
  return r;
}

int32_t SchemaCompiler::plain_string() {
  auto [it, added] = shared_.emplace("string", 0);
  if (added) it->second = b_.rule({{b_.byte_range('"', '"'), GrammarBuilder::ref(chars()), b_.byte_range('"', '"')}});
  return it->second;
}

int32_t SchemaCompiler::string(const json& schema, const std::string& path) {
  if (schema.contains("pattern")) {
    // The intersection of a regular language with a length range is not built: refused, never loosened.
    for (const char* key : {"minLength", "maxLength", "format"}) {
      if (schema.contains(key)) {
        throw SchemaError(path + "." + key, std::string(key) + " together with pattern is not supported; " +
                                                (std::string(key) == "format" ? "use one of them"
                                                                              : "bound the length in the pattern, e.g. ^.{1,64}$"));
      }
    }
    return pattern(schema.at("pattern"), path + ".pattern");
  }
  if (schema.contains("format")) {
    for (const char* key : {"minLength", "maxLength"}) {
      if (schema.contains(key)) throw SchemaError(path + "." + key, std::string(key) + " together with format is not supported");
    }
    const json& f = schema.at("format");
    if (!f.is_string()) throw SchemaError(path + ".format", "expected a string, got " + f.dump());
    return format(f.get<std::string>(), path + ".format");
  }
  const int64_t min_length = schema.contains("minLength") ? length_field(schema, "minLength", path) : 0;
  std::optional<int64_t> max_length;
  if (schema.contains("maxLength")) max_length = length_field(schema, "maxLength", path);
  if (min_length == 0 && !max_length) return plain_string();
  if (max_length && *max_length < min_length) {
    throw SchemaError(path + ".minLength", "minLength " + std::to_string(min_length) + " exceeds maxLength " +
                                               std::to_string(*max_length));
  }
  const int32_t c = char_rule();
  // After the min_length characters: up to max - min optional ones, or any run.
  int32_t rest = max_length ? b_.rule({{}}) : chars();
  if (max_length) {
    for (int64_t i = 0; i < *max_length - min_length; ++i) {
      rest = b_.rule({{}, {GrammarBuilder::ref(c), GrammarBuilder::ref(rest)}});
    }
  }
  std::vector<Element> body = {b_.byte_range('"', '"')};
  for (int64_t i = 0; i < min_length; ++i) body.push_back(GrammarBuilder::ref(c));
  body.push_back(GrammarBuilder::ref(rest));
  body.push_back(b_.byte_range('"', '"'));
  return b_.rule({body});
}

int32_t SchemaCompiler::format(const std::string& name, const std::string& path) {
  const auto d = [&](char lo, char hi) { return b_.byte_range(static_cast<uint8_t>(lo), static_cast<uint8_t>(hi)); };
  const auto lit = [&](char c) { return d(c, c); };
  const auto ref = [](int32_t r) { return GrammarBuilder::ref(r); };
  const int32_t date = b_.rule({{d('0', '9'), d('0', '9'), d('0', '9'), d('0', '9'), lit('-'),
                                 ref(b_.rule({{lit('0'), d('1', '9')}, {lit('1'), d('0', '2')}})), lit('-'),
                                 ref(b_.rule({{lit('0'), d('1', '9')}, {d('1', '2'), d('0', '9')}, {lit('3'), d('0', '1')}}))}});
  const int32_t hour = b_.rule({{d('0', '1'), d('0', '9')}, {lit('2'), d('0', '3')}});
  const int32_t fraction = b_.rule({{}, {lit('.'), d('0', '9'), ref(digits())}});
  std::bitset<256> sign;
  sign.set('+');
  sign.set('-');
  const int32_t offset = b_.rule({{lit('Z')}, {b_.byte_set(sign), ref(hour), lit(':'), d('0', '5'), d('0', '9')}});
  // RFC 3339 full-time: seconds up to 60 (leap second), the offset required.
  const int32_t time = b_.rule({{ref(hour), lit(':'), d('0', '5'), d('0', '9'), lit(':'),
                                 ref(b_.rule({{d('0', '5'), d('0', '9')}, {lit('6'), lit('0')}})), ref(fraction), ref(offset)}});
  std::vector<Element> body = {lit('"')};
  if (name == "date-time") {
    body.insert(body.end(), {ref(date), lit('T'), ref(time)});
  } else if (name == "date") {
    body.push_back(ref(date));
  } else if (name == "time") {
    body.push_back(ref(time));
  } else if (name == "uuid") {
    std::bitset<256> hex;
    for (char c : std::string("0123456789abcdefABCDEF")) hex.set(static_cast<uint8_t>(c));
    const Element h = b_.byte_set(hex);
    for (int group : {8, 4, 4, 4, 12}) {
      if (body.size() > 1) body.push_back(lit('-'));
      body.insert(body.end(), static_cast<size_t>(group), h);
    }
  } else {
    throw SchemaError(path, "format \"" + name + "\" is not supported (date-time, date, time and uuid are)");
  }
  body.push_back(lit('"'));
  return b_.rule({body});
}

// Integers in [lo, hi] (either end open), spelled digit by digit.
namespace {

void same_length(GrammarBuilder& b, const std::string& lo, const std::string& hi, std::vector<Element> prefix,
                 std::vector<std::vector<Element>>& out) {
  if (lo.empty()) {
    out.push_back(std::move(prefix));
    return;
  }
  const size_t rest = lo.size() - 1;
  const bool full = lo.find_first_not_of('0', 1) == std::string::npos && hi.find_first_not_of('9', 1) == std::string::npos;
  if (full) {
    prefix.push_back(b.byte_range(static_cast<uint8_t>(lo[0]), static_cast<uint8_t>(hi[0])));
    prefix.insert(prefix.end(), rest, b.byte_range('0', '9'));
    out.push_back(std::move(prefix));
    return;
  }
  if (lo[0] == hi[0]) {
    prefix.push_back(b.byte_range(static_cast<uint8_t>(lo[0]), static_cast<uint8_t>(lo[0])));
    same_length(b, lo.substr(1), hi.substr(1), std::move(prefix), out);
    return;
  }
  std::vector<Element> low = prefix;
  low.push_back(b.byte_range(static_cast<uint8_t>(lo[0]), static_cast<uint8_t>(lo[0])));
  same_length(b, lo.substr(1), std::string(rest, '9'), std::move(low), out);
  if (lo[0] + 1 <= hi[0] - 1) {
    std::vector<Element> mid = prefix;
    mid.push_back(b.byte_range(static_cast<uint8_t>(lo[0] + 1), static_cast<uint8_t>(hi[0] - 1)));
    mid.insert(mid.end(), rest, b.byte_range('0', '9'));
    out.push_back(std::move(mid));
  }
  std::vector<Element> high = std::move(prefix);
  high.push_back(b.byte_range(static_cast<uint8_t>(hi[0]), static_cast<uint8_t>(hi[0])));
  same_length(b, std::string(rest, '0'), hi.substr(1), std::move(high), out);
}

// Naturals in [lo, hi], or [lo, ∞) without hi, each alternative after `prefix`.
void naturals(GrammarBuilder& b, int64_t lo, std::optional<int64_t> hi, int32_t any_digits,
              const std::vector<Element>& prefix, std::vector<std::vector<Element>>& out) {
  const std::string l = std::to_string(lo);
  const std::string h = hi ? std::to_string(*hi) : std::string(l.size(), '9');
  for (size_t len = l.size(); len <= h.size(); ++len) {
    const std::string a = len == l.size() ? l : "1" + std::string(len - 1, '0');
    const std::string z = len == h.size() ? h : std::string(len, '9');
    same_length(b, a, z, prefix, out);
  }
  if (!hi) {  // every longer number
    std::vector<Element> longer = prefix;
    longer.push_back(b.byte_range('1', '9'));
    longer.insert(longer.end(), l.size(), b.byte_range('0', '9'));
    longer.push_back(GrammarBuilder::ref(any_digits));
    out.push_back(std::move(longer));
  }
}

}  // namespace

int32_t SchemaCompiler::integer(const json& schema, const std::string& path) {
  std::optional<int64_t> lo, hi;
  const auto tighten_lo = [&](int64_t v) { lo = lo ? std::max(*lo, v) : v; };
  const auto tighten_hi = [&](int64_t v) { hi = hi ? std::min(*hi, v) : v; };
  if (schema.contains("minimum")) tighten_lo(static_cast<int64_t>(std::ceil(bound(schema, "minimum", path))));
  if (schema.contains("exclusiveMinimum")) {
    tighten_lo(static_cast<int64_t>(std::floor(bound(schema, "exclusiveMinimum", path))) + 1);
  }
  if (schema.contains("maximum")) tighten_hi(static_cast<int64_t>(std::floor(bound(schema, "maximum", path))));
  if (schema.contains("exclusiveMaximum")) {
    tighten_hi(static_cast<int64_t>(std::ceil(bound(schema, "exclusiveMaximum", path))) - 1);
  }
  if (!lo && !hi) return plain_integer();
  if (lo && hi && *lo > *hi) throw SchemaError(path, "no integer lies within the minimum and maximum");
  std::vector<std::vector<Element>> alts;
  const int32_t d = digits();
  // Negatives (when lo allows any): "-" then their absolute values, [max(-hi, 1), -lo].
  if (!lo || *lo < 0) {
    std::optional<int64_t> abs_hi;
    if (lo) abs_hi = -*lo;
    naturals(b_, hi ? std::max<int64_t>(-*hi, 1) : 1, abs_hi, d, b_.literal("-"), alts);
  }
  if (!hi || *hi >= 0) naturals(b_, lo ? std::max<int64_t>(*lo, 0) : 0, hi, d, {}, alts);
  return b_.rule(alts);
}

int32_t SchemaCompiler::number(const json& schema, const std::string& path) {
  for (const char* key : {"maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
    if (schema.contains(key)) {
      throw SchemaError(path + "." + key, std::string(key) + " on a number is not supported (on an integer it is)");
    }
  }
  if (!schema.contains("minimum")) return plain_number();
  if (bound(schema, "minimum", path) != 0.0) {
    throw SchemaError(path + ".minimum", "on a number only minimum 0 is supported (on an integer any is)");
  }
  // Non-negative: a number without its sign.
  const int32_t d = digits();
  const int32_t fraction = b_.rule({{}, {b_.byte_range('.', '.'), b_.byte_range('0', '9'), GrammarBuilder::ref(d)}});
  std::bitset<256> e, sign;
  e.set('e');
  e.set('E');
  sign.set('+');
  sign.set('-');
  const int32_t exponent = b_.rule({{}, {b_.byte_set(e), GrammarBuilder::ref(b_.rule({{}, {b_.byte_set(sign)}})),
                                         b_.byte_range('0', '9'), GrammarBuilder::ref(d)}});
  return b_.rule({{GrammarBuilder::ref(natural()), GrammarBuilder::ref(fraction), GrammarBuilder::ref(exponent)}});
}

}  // namespace adallm::structured
