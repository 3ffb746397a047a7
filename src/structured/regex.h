// The regular expressions of JSON Schema's `pattern`: the ECMA-262 subset that JSON Schema recommends
// (literals and escapes, `.`, classes, \d \w \s, groups, alternation, greedy or lazy quantifiers, `^`/`$`
// at the ends), parsed over Unicode code points into a tree. Compiling the tree into a grammar is
// SchemaCompiler's (json_pattern.cpp); this file knows neither JSON nor grammars.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adallm::structured {

constexpr uint32_t kMaxCodepoint = 0x10FFFF;
// Quantifier bounds past this are refused: a bounded repeat is spelled out copy by copy.
constexpr int32_t kMaxRepeat = 4096;

// A set of code points as sorted, disjoint, non-adjacent closed ranges.
struct CodepointSet {
  std::vector<std::pair<uint32_t, uint32_t>> ranges;

  void add(uint32_t lo, uint32_t hi);
  void add(const CodepointSet& other);
  CodepointSet complement() const;  // within [0, kMaxCodepoint]
  bool contains(uint32_t c) const;
  bool empty() const { return ranges.empty(); }
  bool operator==(const CodepointSet&) const = default;
};

struct RegexNode {
  enum Kind : uint8_t { chars, sequence, alternation, repeat };
  Kind kind = sequence;
  CodepointSet set;                // chars: one code point of the set
  std::vector<RegexNode> children;  // sequence and alternation: the parts; repeat: the one repeated
  int32_t min = 0, max = -1;        // repeat: the bounds, max -1 when unbounded
};

// One top-level alternative of a pattern; JSON Schema's patterns are not anchored, so a side without
// `^` / `$` may have any characters before / after the match.
struct RegexBranch {
  bool from_start = false, to_end = false;
  RegexNode body;  // a sequence
};

// A pattern outside the subset or not valid ECMA-262: `what()` says what and at which character.
class RegexError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Parses `pattern` (UTF-8) as ECMA-262 with the `u` flag would, refusing what the subset leaves out
// (backreferences, lookaround, named groups, flags, \b, \p, anchors inside the pattern). Throws RegexError.
std::vector<RegexBranch> parse_regex(std::string_view pattern);

// The same language with less to match: on a side without its anchor, any characters may stand there,
// so what the body may have there is absorbed (a nullable part is dropped, x{n,m} becomes x{n}). An
// unanchored \d{1,10} is then \d, and no chain of optional copies stays live at every offset.
void trim_unanchored(RegexBranch& branch);

// How many optional copies of bounded repeats may be live at once, at different offsets of the text (a
// conservative count, saturating at `cap`): `a.{0,64}b` unanchored is 64, since after each character a new
// copy of the chain may begin; `^\w+@\w{1,64}$` is 0, since '@' is where every parse agrees. Each live copy
// multiplies the matcher's work per byte, so the compiler caps it.
uint64_t ambiguous_width(const RegexBranch& branch, uint64_t cap);

// Whether the node matches the empty string / no string at all.
bool nullable(const RegexNode& node);
bool matches_nothing(const RegexNode& node);
// The node's language without the empty string (so that a loop over it always makes progress).
RegexNode without_empty(const RegexNode& node);
// The number of characters the node would have if each repeat were written out (unbounded ones once or
// `min` times), saturating at `cap`: a bound on the grammar and on the matcher's work per character.
uint64_t expanded_size(const RegexNode& node, uint64_t cap);

}  // namespace adallm::structured
