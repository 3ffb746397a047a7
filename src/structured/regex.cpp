// The pattern parser (recursive descent over code points, ECMA-262 `u`-mode syntax) and the analyses the
// grammar compiler needs. Identity escapes of ASCII punctuation are accepted everywhere (`\-` outside a
// class is a SyntaxError with the `u` flag only, and means `-` without it), so patterns written for other
// engines' escaping habits still work; a pattern JavaScript accepts means here what it means there.
#include "structured/regex.h"

#include <algorithm>
#include <cctype>

namespace adallm::structured {

void CodepointSet::add(uint32_t lo, uint32_t hi) {
  if (lo > hi) return;
  std::vector<std::pair<uint32_t, uint32_t>> merged;
  merged.reserve(ranges.size() + 1);
  bool placed = false;
  for (const auto& r : ranges) {
    if (r.second + 1 < lo) {
      merged.push_back(r);
    } else if (hi + 1 < r.first) {
      if (!placed) merged.emplace_back(lo, hi);
      placed = true;
      merged.push_back(r);
    } else {  // overlaps or touches: absorb
      lo = std::min(lo, r.first);
      hi = std::max(hi, r.second);
    }
  }
  if (!placed) merged.emplace_back(lo, hi);
  ranges = std::move(merged);
}

void CodepointSet::add(const CodepointSet& other) {
  for (const auto& [lo, hi] : other.ranges) add(lo, hi);
}

CodepointSet CodepointSet::complement() const {
  CodepointSet out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : ranges) {
    if (lo > next) out.ranges.emplace_back(next, lo - 1);
    next = hi + 1;
  }
  if (next <= kMaxCodepoint) out.ranges.emplace_back(next, kMaxCodepoint);
  return out;
}

bool CodepointSet::contains(uint32_t c) const {
  for (const auto& [lo, hi] : ranges) {
    if (c >= lo && c <= hi) return true;
  }
  return false;
}

namespace {

CodepointSet single(uint32_t c) {
  CodepointSet s;
  s.add(c, c);
  return s;
}

CodepointSet digit_set() {
  CodepointSet s;
  s.add('0', '9');
  return s;
}

CodepointSet word_set() {
  CodepointSet s;
  s.add('0', '9');
  s.add('A', 'Z');
  s.add('_', '_');
  s.add('a', 'z');
  return s;
}

// ECMA-262 WhiteSpace and LineTerminator.
CodepointSet space_set() {
  CodepointSet s;
  s.add(0x09, 0x0D);
  for (uint32_t c : {0x20u, 0xA0u, 0x1680u, 0x2028u, 0x2029u, 0x202Fu, 0x205Fu, 0x3000u, 0xFEFFu}) s.add(c, c);
  s.add(0x2000, 0x200A);
  return s;
}

// `.` without the `s` flag: anything but a line terminator.
CodepointSet dot_set() {
  CodepointSet s;
  for (uint32_t c : {0x0Au, 0x0Du, 0x2028u, 0x2029u}) s.add(c, c);
  return s.complement();
}

bool is_hex(uint32_t c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
uint32_t hex_value(uint32_t c) { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; }
bool is_syntax(uint32_t c) { return c < 0x80 && std::string_view("^$\\.*+?()[]{}|/").find(static_cast<char>(c)) != std::string_view::npos; }
bool is_ascii_punct(uint32_t c) { return c >= 0x21 && c <= 0x7E && !std::isalnum(static_cast<int>(c)); }

std::string show(uint32_t c) {
  if (c >= 0x20 && c < 0x7F) return std::string("'") + static_cast<char>(c) + "'";
  static const char* kHex = "0123456789ABCDEF";
  std::string s = "U+";
  for (int shift = c > 0xFFFF ? 20 : 12; shift >= 0; shift -= 4) s += kHex[(c >> shift) & 0xF];
  return s;
}

std::vector<uint32_t> decode_utf8(std::string_view text) {
  std::vector<uint32_t> out;
  for (size_t i = 0; i < text.size();) {
    const auto b = static_cast<uint8_t>(text[i]);
    const int n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + static_cast<size_t>(n) > text.size()) throw RegexError("the pattern is not valid UTF-8");
    uint32_t c = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; ++k) {
      const auto cont = static_cast<uint8_t>(text[i + static_cast<size_t>(k)]);
      if ((cont >> 6) != 2) throw RegexError("the pattern is not valid UTF-8");
      c = (c << 6) | (cont & 0x3F);
    }
    out.push_back(c);
    i += static_cast<size_t>(n);
  }
  return out;
}

constexpr int kMaxDepth = 64;  // nested groups

class Parser {
 public:
  explicit Parser(std::string_view pattern) : p_(decode_utf8(pattern)) {}

  std::vector<RegexBranch> parse() {
    std::vector<RegexBranch> branches;
    do {
      RegexBranch b;
      if (peek('^')) {
        ++i_;
        b.from_start = true;
      }
      b.body = alternative(0, &b.to_end);
      branches.push_back(std::move(b));
    } while (eat('|'));
    if (i_ < p_.size()) fail("unmatched ')'");  // alternative() stops only at '|', ')' or the end
    return branches;
  }

 private:
  [[noreturn]] void fail(const std::string& problem) const { fail_at(i_, problem); }
  [[noreturn]] void fail_at(size_t at, const std::string& problem) const {
    throw RegexError(problem + " (at character " + std::to_string(at) + ")");
  }
  bool more() const { return i_ < p_.size(); }
  bool peek(uint32_t c, size_t ahead = 0) const { return i_ + ahead < p_.size() && p_[i_ + ahead] == c; }
  bool eat(uint32_t c) {
    if (!peek(c)) return false;
    ++i_;
    return true;
  }

  // Alternatives of a group: '|'-separated sequences up to the ')'.
  RegexNode disjunction(int depth) {
    RegexNode alt{RegexNode::alternation, {}, {}};
    do alt.children.push_back(alternative(depth, nullptr));
    while (eat('|'));
    if (alt.children.size() == 1) return std::move(alt.children[0]);
    return alt;
  }

  // A sequence up to '|', ')' or the end. `to_end` (top level only): a final '$' is allowed and recorded.
  RegexNode alternative(int depth, bool* to_end) {
    RegexNode seq{RegexNode::sequence, {}, {}};
    while (more() && !peek('|') && !peek(')')) {
      const size_t at = i_;
      if (peek('^')) {
        fail("'^' is supported only at the start of the pattern or of a top-level alternative "
             "(the multiline flag is not available)");
      }
      if (peek('$')) {
        ++i_;
        if (to_end != nullptr && (!more() || peek('|'))) {
          *to_end = true;
          break;
        }
        fail_at(at, "'$' is supported only at the end of the pattern or of a top-level alternative");
      }
      RegexNode a = atom(depth);
      quantify(a);
      seq.children.push_back(std::move(a));
    }
    return seq;
  }

  void quantify(RegexNode& a) {
    int32_t lo = 0, hi = -1;
    if (eat('*')) {
    } else if (eat('+')) {
      lo = 1;
    } else if (eat('?')) {
      hi = 1;
    } else if (peek('{')) {
      const size_t at = i_++;
      lo = number(at);
      hi = lo;
      if (eat(',')) hi = peek('}') ? -1 : number(at);
      if (!eat('}')) fail_at(at, "a quantifier {n}, {n,} or {n,m} is incomplete; a literal '{' is written \\{");
      if (hi >= 0 && hi < lo) fail_at(at, "the quantifier's bounds are out of order");
    } else {
      return;
    }
    eat('?');  // lazy: the same set of strings
    if (peek('*') || peek('+') || peek('?') || peek('{')) fail("nothing to repeat (a quantifier after a quantifier)");
    RegexNode r{RegexNode::repeat, {}, {}};
    r.min = lo;
    r.max = hi;
    r.children.push_back(std::move(a));
    a = std::move(r);
  }

  int32_t number(size_t quantifier_at) {
    if (!more() || p_[i_] < '0' || p_[i_] > '9') {
      fail_at(quantifier_at, "a quantifier {n}, {n,} or {n,m} is incomplete; a literal '{' is written \\{");
    }
    int64_t v = 0;
    while (more() && p_[i_] >= '0' && p_[i_] <= '9') {
      v = std::min<int64_t>(v * 10 + (p_[i_] - '0'), int64_t{1} << 40);
      ++i_;
    }
    if (v > kMaxRepeat) {
      fail_at(quantifier_at, "quantifier bounds up to " + std::to_string(kMaxRepeat) + " are supported, got " +
                                 (v >= (int64_t{1} << 40) ? std::string("more") : std::to_string(v)));
    }
    return static_cast<int32_t>(v);
  }

  RegexNode chars(CodepointSet set) {
    RegexNode n{RegexNode::chars, std::move(set), {}};
    return n;
  }

  RegexNode atom(int depth) {
    const size_t at = i_;
    const uint32_t c = p_[i_++];
    switch (c) {
      case '(': {
        if (peek('?')) {
          if (peek(':', 1)) {
            i_ += 2;
          } else if (peek('=', 1) || peek('!', 1)) {
            fail_at(at, "lookahead (?= ) and (?! ) is not supported");
          } else if (peek('<', 1) && (peek('=', 2) || peek('!', 2))) {
            fail_at(at, "lookbehind (?<= ) and (?<! ) is not supported");
          } else if (peek('<', 1)) {
            fail_at(at, "named groups (?<name> ) are not supported; use ( ) or (?: )");
          } else {
            fail_at(at, "inline flags and modifiers (?flags: ) are not supported");
          }
        }
        if (depth + 1 > kMaxDepth) fail_at(at, "groups nested deeper than " + std::to_string(kMaxDepth));
        RegexNode inner = disjunction(depth + 1);
        if (!eat(')')) fail_at(at, "unterminated group: missing ')'");
        return inner;
      }
      case '[':
        return chars(char_class(at));
      case '.':
        return chars(dot_set());
      case '\\':
        return chars(escape(at, false));
      case '*':
      case '+':
      case '?':
        fail_at(at, "nothing to repeat before " + show(c));
      case '{':
        fail_at(at, "nothing to repeat before '{' (a literal '{' is written \\{)");
      case ']':
      case '}':
        fail_at(at, "a literal " + show(c) + " is written \\" + static_cast<char>(c));
      default:
        if (c >= 0xD800 && c <= 0xDFFF) fail_at(at, "lone surrogates are not supported");
        return chars(single(c));
    }
  }

  // After '\'. In a class, \b is U+0008 and \- is '-'; `class_escape` reports whether the escape was a
  // class of its own (\d ...), which may not be a range's end.
  CodepointSet escape(size_t at, bool in_class, bool* class_escape = nullptr) {
    if (!more()) fail_at(at, "the pattern ends in a lone '\\'");
    const uint32_t c = p_[i_++];
    const auto shorthand = [&](CodepointSet s, bool negated) {
      if (class_escape != nullptr) *class_escape = true;
      return negated ? s.complement() : s;
    };
    switch (c) {
      case 'd': return shorthand(digit_set(), false);
      case 'D': return shorthand(digit_set(), true);
      case 'w': return shorthand(word_set(), false);
      case 'W': return shorthand(word_set(), true);
      case 's': return shorthand(space_set(), false);
      case 'S': return shorthand(space_set(), true);
      case 'n': return single('\n');
      case 't': return single('\t');
      case 'r': return single('\r');
      case 'f': return single('\f');
      case 'v': return single('\v');
      case 'b':
        if (in_class) return single(0x08);
        fail_at(at, "word boundaries (\\b) are not supported");
      case 'B': fail_at(at, "word boundaries (\\B) are not supported");
      case '0':
        if (more() && p_[i_] >= '0' && p_[i_] <= '9') fail_at(at, "octal escapes are not supported");
        return single(0);
      case 'x': {
        if (i_ + 2 > p_.size() || !is_hex(p_[i_]) || !is_hex(p_[i_ + 1])) {
          fail_at(at, "\\x must be followed by two hex digits");
        }
        const uint32_t v = hex_value(p_[i_]) * 16 + hex_value(p_[i_ + 1]);
        i_ += 2;
        return single(v);
      }
      case 'u': return single(unicode_escape(at));
      case 'k': fail_at(at, "named backreferences (\\k<name>) are not supported");
      case 'p':
      case 'P': fail_at(at, "Unicode property escapes (\\p{...}) are not supported");
      case 'c': fail_at(at, "control escapes (\\cX) are not supported; write \\xHH");
      default:
        break;
    }
    if (c >= '1' && c <= '9') fail_at(at, "backreferences (\\" + std::string(1, static_cast<char>(c)) + ") are not supported");
    if (is_syntax(c) || is_ascii_punct(c)) return single(c);
    fail_at(at, "unknown escape \\" + (c < 0x80 ? std::string(1, static_cast<char>(c)) : show(c)));
  }

  // After "\u": XXXX (a surrogate pair of two such escapes is one code point) or {X...}.
  uint32_t unicode_escape(size_t at) {
    if (eat('{')) {
      uint32_t v = 0;
      size_t digits = 0;
      while (more() && is_hex(p_[i_])) {
        v = std::min<uint32_t>(v * 16 + hex_value(p_[i_++]), kMaxCodepoint + 1);
        ++digits;
      }
      if (digits == 0 || !eat('}') || v > kMaxCodepoint) fail_at(at, "\\u{...} must hold a code point up to 10FFFF");
      if (v >= 0xD800 && v <= 0xDFFF) fail_at(at, "lone surrogates are not supported");
      return v;
    }
    const auto four = [&](size_t from) -> int64_t {
      if (from + 4 > p_.size()) return -1;
      uint32_t v = 0;
      for (size_t k = 0; k < 4; ++k) {
        if (!is_hex(p_[from + k])) return -1;
        v = v * 16 + hex_value(p_[from + k]);
      }
      return v;
    };
    const int64_t v = four(i_);
    if (v < 0) fail_at(at, "\\u must be followed by four hex digits or {code point}");
    i_ += 4;
    if (v >= 0xD800 && v <= 0xDBFF && peek('\\') && peek('u', 1)) {
      const int64_t low = four(i_ + 2);
      if (low >= 0xDC00 && low <= 0xDFFF) {
        i_ += 6;
        return 0x10000 + ((static_cast<uint32_t>(v) - 0xD800) << 10) + (static_cast<uint32_t>(low) - 0xDC00);
      }
    }
    if (v >= 0xD800 && v <= 0xDFFF) fail_at(at, "lone surrogates are not supported");
    return static_cast<uint32_t>(v);
  }

  // After '['.
  CodepointSet char_class(size_t at) {
    const bool negated = eat('^');
    CodepointSet set;
    for (;;) {
      if (!more()) fail_at(at, "unterminated character class: missing ']'");
      if (eat(']')) break;
      const size_t lo_at = i_;
      bool lo_class = false;
      const CodepointSet lo = class_atom(&lo_class);
      if (peek('-') && !peek(']', 1) && i_ + 1 < p_.size()) {
        ++i_;
        bool hi_class = false;
        const CodepointSet hi = class_atom(&hi_class);
        if (lo_class || hi_class) fail_at(lo_at, "a class escape (\\d, \\w, \\s ...) cannot bound a range");
        const uint32_t a = lo.ranges[0].first, b = hi.ranges[0].first;
        if (a > b) fail_at(lo_at, "range out of order in character class: " + show(a) + "-" + show(b));
        set.add(a, b);
      } else {
        set.add(lo);
      }
    }
    return negated ? set.complement() : set;
  }

  CodepointSet class_atom(bool* class_escape) {
    const size_t at = i_;
    const uint32_t c = p_[i_++];
    if (c == '\\') return escape(at, true, class_escape);
    if (c >= 0xD800 && c <= 0xDFFF) fail_at(at, "lone surrogates are not supported");
    return single(c);
  }

  std::vector<uint32_t> p_;
  size_t i_ = 0;
};

}  // namespace

std::vector<RegexBranch> parse_regex(std::string_view pattern) { return Parser(pattern).parse(); }

bool nullable(const RegexNode& n) {
  switch (n.kind) {
    case RegexNode::chars: return false;
    case RegexNode::sequence:
      return std::all_of(n.children.begin(), n.children.end(), [](const RegexNode& c) { return nullable(c); });
    case RegexNode::alternation:
      return std::any_of(n.children.begin(), n.children.end(), [](const RegexNode& c) { return nullable(c); });
    case RegexNode::repeat: return n.min == 0 || nullable(n.children[0]);
  }
  return false;
}

bool matches_nothing(const RegexNode& n) {
  switch (n.kind) {
    case RegexNode::chars: return n.set.empty();
    case RegexNode::sequence:
      return std::any_of(n.children.begin(), n.children.end(), [](const RegexNode& c) { return matches_nothing(c); });
    case RegexNode::alternation:
      return std::all_of(n.children.begin(), n.children.end(), [](const RegexNode& c) { return matches_nothing(c); });
    case RegexNode::repeat: return n.min > 0 && matches_nothing(n.children[0]);
  }
  return false;
}

RegexNode without_empty(const RegexNode& n) {
  if (!nullable(n)) return n;
  RegexNode alt{RegexNode::alternation, {}, {}};
  switch (n.kind) {
    case RegexNode::chars: return n;
    case RegexNode::sequence:
      // Every part may be empty: the first part that is not, then the rest as they are.
      for (size_t i = 0; i < n.children.size(); ++i) {
        RegexNode seq{RegexNode::sequence, {}, {}};
        seq.children.push_back(without_empty(n.children[i]));
        seq.children.insert(seq.children.end(), n.children.begin() + static_cast<std::ptrdiff_t>(i) + 1, n.children.end());
        alt.children.push_back(std::move(seq));
      }
      break;
    case RegexNode::alternation:
      for (const RegexNode& c : n.children) alt.children.push_back(without_empty(c));
      break;
    case RegexNode::repeat: {
      // x{min,max} with x or min empty is x{0,max}: its non-empty strings start with a non-empty x.
      if (n.max == 0) break;
      RegexNode rest{RegexNode::repeat, {}, {n.children[0]}};
      rest.min = 0;
      rest.max = n.max < 0 ? -1 : n.max - 1;
      RegexNode seq{RegexNode::sequence, {}, {}};
      seq.children.push_back(without_empty(n.children[0]));
      seq.children.push_back(std::move(rest));
      return seq;
    }
  }
  if (alt.children.empty()) return RegexNode{RegexNode::chars, {}, {}};  // no non-empty string
  if (alt.children.size() == 1) return std::move(alt.children[0]);
  return alt;
}

void trim_unanchored(RegexBranch& branch) {
  std::vector<RegexNode>& parts = branch.body.children;
  // Groups in sequence are one sequence: flattened, their parts can be trimmed too.
  for (size_t i = 0; i < parts.size();) {
    if (parts[i].kind == RegexNode::sequence) {
      std::vector<RegexNode> inner = std::move(parts[i].children);
      parts.erase(parts.begin() + static_cast<std::ptrdiff_t>(i));
      parts.insert(parts.begin() + static_cast<std::ptrdiff_t>(i), std::make_move_iterator(inner.begin()),
                   std::make_move_iterator(inner.end()));
    } else {
      ++i;
    }
  }
  if (!branch.from_start) {
    while (!parts.empty() && nullable(parts.front())) parts.erase(parts.begin());
    if (!parts.empty() && parts.front().kind == RegexNode::repeat) parts.front().max = parts.front().min;
  }
  if (!branch.to_end) {
    while (!parts.empty() && nullable(parts.back())) parts.pop_back();
    if (!parts.empty() && parts.back().kind == RegexNode::repeat) parts.back().max = parts.back().min;
  }
}

namespace {

void chars_of(const RegexNode& n, CodepointSet& out) {
  if (n.kind == RegexNode::chars) out.add(n.set);
  for (const RegexNode& c : n.children) chars_of(c, out);
}

bool overlaps(const CodepointSet& a, const CodepointSet& b) {
  size_t i = 0, j = 0;
  while (i < a.ranges.size() && j < b.ranges.size()) {
    if (a.ranges[i].second < b.ranges[j].first) {
      ++i;
    } else if (b.ranges[j].second < a.ranges[i].first) {
      ++j;
    } else {
      return true;
    }
  }
  return false;
}

// Every string of the node has the same length (-1 when not): its parses all end at one offset.
int64_t fixed_length(const RegexNode& n) {
  int64_t len = 0;
  switch (n.kind) {
    case RegexNode::chars: return 1;
    case RegexNode::sequence:
      for (const RegexNode& c : n.children) {
        const int64_t l = fixed_length(c);
        if (l < 0) return -1;
        len += l;
      }
      return len;
    case RegexNode::alternation:
      len = fixed_length(n.children[0]);
      for (const RegexNode& c : n.children) {
        if (fixed_length(c) != len) return -1;
      }
      return len;
    case RegexNode::repeat:
      if (n.min != n.max) return -1;
      len = fixed_length(n.children[0]);
      return len < 0 ? -1 : len * n.min;
  }
  return -1;
}

// Copies of the node in a chain stay in step: all of one length, or each closed by a part of fixed length
// whose characters occur nowhere else in it (the ',' of "\d+,"), so every parse counts copies alike.
bool steps_in_chain(const RegexNode& n) {
  if (fixed_length(n) >= 0) return true;
  if (n.kind != RegexNode::sequence || n.children.empty()) return false;
  const RegexNode& last = n.children.back();
  if (fixed_length(last) <= 0) return false;
  CodepointSet closing, rest;
  chars_of(last, closing);
  for (size_t i = 0; i + 1 < n.children.size(); ++i) chars_of(n.children[i], rest);
  return !overlaps(closing, rest);
}

// The optional copies of bounded repeats in the node, each weighted by the characters it spans.
uint64_t optional_width(const RegexNode& n, uint64_t cap) {
  uint64_t total = 0;
  switch (n.kind) {
    case RegexNode::chars: return 0;
    case RegexNode::sequence:
    case RegexNode::alternation:
      for (const RegexNode& c : n.children) total = std::min(cap, total + optional_width(c, cap));
      return total;
    case RegexNode::repeat: {
      const RegexNode& item = n.children[0];
      const auto copies = static_cast<uint64_t>(std::max({n.min, n.max, 1}));
      if (n.max > n.min) total = static_cast<uint64_t>(n.max - n.min) * expanded_size(item, cap);
      return std::min(cap, total + copies * optional_width(item, cap));
    }
  }
  return total;
}

}  // namespace

uint64_t ambiguous_width(const RegexBranch& branch, uint64_t cap) {
  // `live`: the characters that parses begun earlier (the unanchored start, loops, optional copies) may
  // still be consuming. A part whose characters avoid them starts where every parse agrees.
  CodepointSet live;
  if (!branch.from_start) live.add(0, kMaxCodepoint);
  uint64_t width = 0;
  for (const RegexNode& part : branch.body.children) {
    CodepointSet mine;
    chars_of(part, mine);
    const bool shared = overlaps(mine, live);
    // A chain whose copies stay in step, begun where the parses agree, keeps one copy live; anything
    // else is counted whole.
    const bool simple_chain = part.kind == RegexNode::repeat && steps_in_chain(part.children[0]);
    if (shared || !simple_chain) {
      width = std::min(cap, width + optional_width(part, cap));
    } else {  // one copy live at a time, each starting where its parses agree: what is inside a copy
      RegexBranch copy;
      copy.from_start = true;
      copy.body = part.children[0].kind == RegexNode::sequence ? part.children[0]
                                                                : RegexNode{RegexNode::sequence, {}, {part.children[0]}};
      width = std::min(cap, width + ambiguous_width(copy, cap));
    }
    if (fixed_length(part) > 0) {
      if (!shared) live = CodepointSet{};
    } else if (!shared && !nullable(part)) {
      live = mine;
    } else {
      live.add(mine);
    }
  }
  return width;
}

uint64_t expanded_size(const RegexNode& n, uint64_t cap) {
  uint64_t total = 0;
  switch (n.kind) {
    case RegexNode::chars: return 1;
    case RegexNode::sequence:
    case RegexNode::alternation:
      for (const RegexNode& c : n.children) total = std::min(cap, total + expanded_size(c, cap));
      return std::max<uint64_t>(total, 1);
    case RegexNode::repeat: {
      const auto copies = static_cast<uint64_t>(std::max({n.min, n.max, 1}));
      return std::min(cap, expanded_size(n.children[0], cap) * copies);
    }
  }
  return total;
}

}  // namespace adallm::structured
