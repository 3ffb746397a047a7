// SchemaCompiler's `pattern`: a regex tree (structured/regex.h) becomes grammar rules over the JSON text of
// a string's content. A character class becomes one rule: its code points as raw UTF-8 byte ranges,
// JSON's short escapes, and \uXXXX escapes (surrogate pairs past the BMP) of the code points in it, so the
// content is matched decoded, whichever spelling the model picks. Parsing the regex is regex.cpp's.
#include <algorithm>

#include "structured/json_schema.h"
#include "structured/regex.h"

namespace adallm::structured {
namespace {

using json = nlohmann::ordered_json;

// The repeats of a pattern written out may not exceed this many characters (e.g. (a{100}){100} is 10,000):
// it bounds the grammar and the parse states the matcher keeps per character.
constexpr uint64_t kMaxPatternSize = 65536;
// Optional copies that may be live at once (regex.h, ambiguous_width): past 64 a constrained step can take
// a large fraction of a second on a 150k-token vocabulary (docs/http-api.md, Cost).
constexpr uint64_t kMaxAmbiguousWidth = 64;

// JSON's two-character escapes, by the code point they stand for.
constexpr std::pair<uint32_t, char> kShortEscapes[] = {{'"', '"'},  {'\\', '\\'}, {'/', '/'},  {0x08, 'b'},
                                                       {0x0C, 'f'}, {0x0A, 'n'},  {0x0D, 'r'}, {0x09, 't'}};

constexpr std::pair<uint32_t, uint32_t> kBmpWithoutSurrogates[] = {{0, 0xD7FF}, {0xE000, 0xFFFF}};

std::vector<int> hex4(uint32_t v) {
  return {static_cast<int>((v >> 12) & 0xF), static_cast<int>((v >> 8) & 0xF), static_cast<int>((v >> 4) & 0xF),
          static_cast<int>(v & 0xF)};
}

// The pattern as a message quotes it: JSON-escaped, and cut short when long (a body may hold megabytes).
std::string quoted(const std::string& source) {
  constexpr size_t kShown = 80;
  if (source.size() <= kShown) return json(source).dump();
  size_t cut = kShown;
  while (cut > 0 && (static_cast<uint8_t>(source[cut]) & 0xC0) == 0x80) --cut;  // not inside a character
  return json(source.substr(0, cut)).dump() + "... (" + std::to_string(source.size()) + " bytes)";
}

std::string set_key(const CodepointSet& set) {
  std::string key = "content-char";
  for (const auto& [lo, hi] : set.ranges) key += ":" + std::to_string(lo) + "-" + std::to_string(hi);
  return key;
}

}  // namespace

Element SchemaCompiler::hex_digits(int lo, int hi) {
  std::bitset<256> set;
  for (int v = lo; v <= hi; ++v) {
    set.set(static_cast<size_t>(v < 10 ? '0' + v : 'a' + v - 10));
    if (v >= 10) set.set(static_cast<size_t>('A' + v - 10));
  }
  return b_.byte_set(set);
}

int32_t SchemaCompiler::hex_range(uint32_t lo, uint32_t hi) {
  const std::string key = "hex:" + std::to_string(lo) + "-" + std::to_string(hi);
  if (const auto it = shared_.find(key); it != shared_.end()) return it->second;
  std::vector<std::vector<Element>> alts;
  digit_range_alternatives(hex4(lo), hex4(hi), 0, 15, [&](int a, int z) { return hex_digits(a, z); }, {}, alts);
  const int32_t r = b_.rule(alts);
  shared_[key] = r;
  return r;
}

int32_t SchemaCompiler::content_char(const CodepointSet& set) {
  const std::string key = set_key(set);
  if (const auto it = shared_.find(key); it != shared_.end()) return it->second;
  std::vector<std::vector<Element>> alts;
  // Raw: printable ASCII but '"' and '\' as one byte set, then UTF-8 byte ranges.
  std::bitset<256> ascii;
  for (const auto& [lo, hi] : set.ranges) {
    for (uint32_t c = std::max<uint32_t>(lo, 0x20); c <= std::min<uint32_t>(hi, 0x7F); ++c) {
      if (c != '"' && c != '\\') ascii.set(c);
    }
  }
  if (ascii.any()) alts.push_back({b_.byte_set(ascii)});
  for (const auto& [lo, hi] : set.ranges) {
    if (hi >= 0x80) utf8_alternatives(b_, std::max<uint32_t>(lo, 0x80), hi, alts);
  }
  // Escaped, after a '\': a letter of JSON's short escapes, or u and hex digits.
  std::vector<std::vector<Element>> escapes;
  std::bitset<256> letters;
  for (const auto& [c, letter] : kShortEscapes) {
    if (set.contains(c)) letters.set(static_cast<uint8_t>(letter));
  }
  if (letters.any()) escapes.push_back({b_.byte_set(letters)});
  const Element u = b_.byte_range('u', 'u'), backslash = b_.byte_range('\\', '\\');
  std::vector<std::vector<Element>> hex;
  for (const auto& [lo, hi] : set.ranges) {
    for (const auto& [from, to] : kBmpWithoutSurrogates) {
      const uint32_t a = std::max(lo, from), z = std::min(hi, to);
      if (a <= z) hex.push_back({GrammarBuilder::ref(hex_range(a, z))});
    }
    // Past the BMP: a surrogate pair, "\uD8xx\uDCxx", whose halves carry the high and low 10 bits of
    // c - 0x10000: the low end's tail, the high halves whose every low half is in the set, the high end's.
    if (hi < 0x10000) continue;
    const uint32_t a = std::max<uint32_t>(lo, 0x10000) - 0x10000, z = hi - 0x10000;
    const auto pair = [&](uint32_t h0, uint32_t h1, uint32_t l0, uint32_t l1) {
      hex.push_back({GrammarBuilder::ref(hex_range(0xD800 + h0, 0xD800 + h1)), backslash, u,
                     GrammarBuilder::ref(hex_range(0xDC00 + l0, 0xDC00 + l1))});
    };
    const uint32_t ha = a >> 10, la = a & 0x3FF, hz = z >> 10, lz = z & 0x3FF;
    if (ha == hz) {
      pair(ha, ha, la, lz);
      continue;
    }
    if (la != 0) pair(ha, ha, la, 0x3FF);
    if (lz != 0x3FF) pair(hz, hz, 0, lz);
    const uint32_t mid_lo = la != 0 ? ha + 1 : ha, mid_hi = lz != 0x3FF ? hz - 1 : hz;
    if (mid_lo <= mid_hi) pair(mid_lo, mid_hi, 0, 0x3FF);
  }
  if (!hex.empty()) {
    std::vector<Element> after_u = {u, GrammarBuilder::ref(b_.rule(hex))};
    escapes.push_back(after_u);
  }
  if (!escapes.empty()) alts.push_back({backslash, GrammarBuilder::ref(b_.rule(escapes))});
  const int32_t r = b_.rule(alts);
  shared_[key] = r;
  return r;
}

void SchemaCompiler::regex(const RegexNode& node, std::vector<Element>& out) {
  switch (node.kind) {
    case RegexNode::chars:
      out.push_back(GrammarBuilder::ref(content_char(node.set)));
      return;
    case RegexNode::sequence:
      for (const RegexNode& part : node.children) regex(part, out);
      return;
    case RegexNode::alternation: {
      const int32_t r = b_.declare();
      for (const RegexNode& part : node.children) {
        std::vector<Element> alt;
        regex(part, alt);
        b_.alternative(r, alt);
      }
      out.push_back(GrammarBuilder::ref(r));
      return;
    }
    case RegexNode::repeat:
      break;
  }
  const RegexNode& item = node.children[0];
  const auto one = [&](const RegexNode& n) {
    std::vector<Element> seq;
    regex(n, seq);
    return seq.size() == 1 ? seq[0] : GrammarBuilder::ref(b_.rule({seq}));
  };
  if (nullable(item)) {
    // x{n,m} with an x that may be empty is x'{0,m}, x' being x without the empty string: a loop over x'
    // always makes progress (GrammarBuilder::finish refuses one that may not), and a chain of optional x'
    // keeps one position of the chain live at a time, where n copies of a nullable x would keep all n.
    RegexNode solid{RegexNode::repeat, {}, {without_empty(item)}};
    solid.min = 0;
    solid.max = node.max;
    regex(solid, out);
    return;
  }
  const Element x = one(item);
  out.insert(out.end(), static_cast<size_t>(node.min), x);
  if (node.max < 0) {
    const int32_t loop = b_.declare();
    b_.alternative(loop, {});
    b_.alternative(loop, {x, GrammarBuilder::ref(loop)});
    out.push_back(GrammarBuilder::ref(loop));
  } else if (node.max > node.min) {
    // Up to max - min more, each optional once the one before is there (as maxLength does).
    int32_t rest = b_.rule({{}});
    for (int32_t i = node.min; i < node.max; ++i) rest = b_.rule({{}, {x, GrammarBuilder::ref(rest)}});
    out.push_back(GrammarBuilder::ref(rest));
  }
}

int32_t SchemaCompiler::pattern(const json& value, const std::string& path) {
  if (!value.is_string()) {
    throw SchemaError(path, "expected a string (an ECMA-262 regular expression), got " + value.dump());
  }
  const std::string source = value.get<std::string>();
  std::vector<RegexBranch> branches;
  try {
    branches = parse_regex(source);
  } catch (const RegexError& e) {
    throw SchemaError(path, "pattern " + quoted(source) + ": " + e.what());
  }
  uint64_t size = 0, width = 0;
  bool some_match = false;
  for (RegexBranch& b : branches) {
    trim_unanchored(b);
    size = std::min(kMaxPatternSize + 1, size + expanded_size(b.body, kMaxPatternSize + 1));
    width = std::min(kMaxAmbiguousWidth + 1, width + ambiguous_width(b, kMaxAmbiguousWidth + 1));
    some_match = some_match || !matches_nothing(b.body);
  }
  if (size > kMaxPatternSize) {
    throw SchemaError(path, "pattern " + quoted(source) + ": its repeats written out exceed " +
                                std::to_string(kMaxPatternSize) + " characters; use smaller bounds");
  }
  if (width > kMaxAmbiguousWidth) {
    throw SchemaError(path, "pattern " + quoted(source) + ": a bounded repeat may begin at many places of the "
                            "string at once (as .{0,100} does after .* or in an unanchored pattern), keeping more "
                            "than " + std::to_string(kMaxAmbiguousWidth) + " parse positions live; anchor the "
                            "pattern, put a character the repeat cannot match before it, or lower its bound");
  }
  if (!some_match) throw SchemaError(path, "pattern " + quoted(source) + " matches no string");
  // Not anchored, a side may hold any characters: JSON Schema's patterns match anywhere in the string.
  const int32_t branch = b_.declare();
  for (const RegexBranch& b : branches) {
    std::vector<Element> seq;
    if (!b.from_start) seq.push_back(GrammarBuilder::ref(chars()));
    regex(b.body, seq);
    if (!b.to_end) seq.push_back(GrammarBuilder::ref(chars()));
    b_.alternative(branch, seq);
  }
  return b_.rule({{b_.byte_range('"', '"'), GrammarBuilder::ref(branch), b_.byte_range('"', '"')}});
}

}  // namespace adallm::structured
