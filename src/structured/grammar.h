// A context-free grammar over bytes, the form a JSON schema compiles to (structured/json_schema.h) and the
// matcher runs (structured/matcher.h). Terminals are sets of bytes; a rule is a list of alternatives, each a
// sequence of terminals and rules, stored flat in `code` so that a parse position is one integer.
#pragma once

#include <bitset>
#include <cstdint>
#include <functional>
#include <map>
#include <string_view>
#include <vector>

namespace adallm::structured {

struct Element {
  enum Kind : uint8_t { end, bytes, rule };
  Kind kind = end;
  int32_t arg = 0;  // bytes: index into Grammar::sets; rule: the rule's index
};

struct Grammar {
  std::vector<Element> code;                // alternatives, each a run of elements closed by an `end`
  std::vector<std::vector<int32_t>> rules;  // rule → the positions in `code` where its alternatives begin
  std::vector<std::bitset<256>> sets;
  int32_t root = 0;
};

// Builds a Grammar: rules may be declared before their alternatives are given (recursion through $ref).
class GrammarBuilder {
 public:
  int32_t declare();
  void alternative(int32_t rule, const std::vector<Element>& sequence);
  // A new rule with the given alternatives.
  int32_t rule(const std::vector<std::vector<Element>>& alternatives);

  Element byte_set(const std::bitset<256>& set);
  Element byte_range(uint8_t lo, uint8_t hi);
  static Element ref(int32_t rule) { return {Element::rule, rule}; }
  // The bytes of `text`, one terminal each, appended to `out`.
  void literal(std::string_view text, std::vector<Element>& out);
  std::vector<Element> literal(std::string_view text);

  // The grammar rooted at `root`. Throws adallm::Error when a rule can reach itself without consuming a
  // byte (left recursion, e.g. a schema that is only a $ref to itself): the matcher would never settle.
  Grammar finish(int32_t root);

 private:
  Grammar g_;
  std::vector<std::vector<std::vector<Element>>> pending_;  // rule → alternatives, laid out by finish()
  std::map<std::string, int32_t> set_index_;                // set (as its bitstring) → index
};

// The alternatives (each `prefix` then one terminal per digit) that spell every digit string from `lo` to
// `hi`, both of one length and compared as numbers of a fixed base are; digits after the first run over
// [min, max]. `terminal(a, b)` is the terminal of the digits a..b. A range splits into at most 2·length
// alternatives: the low end's tail, a middle whose digits run free, the high end's tail.
void digit_range_alternatives(const std::vector<int>& lo, const std::vector<int>& hi, int min, int max,
                              const std::function<Element(int, int)>& terminal, std::vector<Element> prefix,
                              std::vector<std::vector<Element>>& out);

// The alternatives spelling, in well-formed UTF-8, every code point in [lo, hi] (surrogates, which UTF-8
// cannot carry, left out): at most a handful of byte-range sequences per encoded length.
void utf8_alternatives(GrammarBuilder& b, uint32_t lo, uint32_t hi, std::vector<std::vector<Element>>& out);

}  // namespace adallm::structured
