// UTF-8 decoding, validation and lossy repair (see utf8.h). The maximal-subpart rule follows the Unicode
// standard (Table 3-7): a lead byte followed by a valid continuation prefix counts as one invalid unit.
#include "text/utf8.h"

namespace adallm::text::utf8 {
namespace {

// Valid range of the second byte for a given lead byte (Unicode Table 3-7); {0,0} for invalid leads.
struct Range {
  uint8_t lo, hi;
  int length;
};
Range lead_info(uint8_t b) {
  if (b < 0x80) return {0, 0, 1};
  if (b >= 0xC2 && b <= 0xDF) return {0x80, 0xBF, 2};
  if (b == 0xE0) return {0xA0, 0xBF, 3};
  if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF) return {0x80, 0xBF, 3};
  if (b == 0xED) return {0x80, 0x9F, 3};
  if (b == 0xF0) return {0x90, 0xBF, 4};
  if (b >= 0xF1 && b <= 0xF3) return {0x80, 0xBF, 4};
  if (b == 0xF4) return {0x80, 0x8F, 4};
  return {0, 0, 0};
}

// Number of bytes forming the longest valid prefix of a sequence at pos (at least 1 when invalid).
size_t maximal_prefix(std::string_view s, size_t pos, bool& complete) {
  const auto b = static_cast<uint8_t>(s[pos]);
  const Range r = lead_info(b);
  complete = false;
  if (r.length == 0) return 1;
  if (r.length == 1) {
    complete = true;
    return 1;
  }
  size_t n = 1;
  for (int i = 1; i < r.length; ++i) {
    if (pos + n >= s.size()) return n;
    const auto c = static_cast<uint8_t>(s[pos + n]);
    const uint8_t lo = i == 1 ? r.lo : 0x80, hi = i == 1 ? r.hi : 0xBF;
    if (c < lo || c > hi) return n;
    ++n;
  }
  complete = true;
  return n;
}

}  // namespace

size_t valid_sequence_length(std::string_view s, size_t pos) {
  bool complete = false;
  const size_t n = maximal_prefix(s, pos, complete);
  return complete ? n : 0;
}

char32_t next(std::string_view s, size_t& pos) {
  const auto b0 = static_cast<uint8_t>(s[pos]);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  const size_t n = valid_sequence_length(s, pos);
  if (n == 0) {
    ++pos;
    return kReplacement;
  }
  char32_t cp = b0 & (n == 2 ? 0x1F : n == 3 ? 0x0F : 0x07);
  for (size_t i = 1; i < n; ++i) cp = (cp << 6) | (static_cast<uint8_t>(s[pos + i]) & 0x3F);
  pos += n;
  return cp;
}

void append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool is_valid(std::string_view s) {
  for (size_t pos = 0; pos < s.size();) {
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const size_t n = valid_sequence_length(s, pos);
    if (n == 0) return false;
    pos += n;
  }
  return true;
}

std::string to_valid_lossy(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) {
    bool complete = false;
    const size_t n = maximal_prefix(s, pos, complete);
    if (complete)
      out.append(s.substr(pos, n));
    else
      append(out, kReplacement);
    pos += n;
  }
  return out;
}

bool ends_with_replacement(std::string_view s) { return s.size() >= 3 && s.substr(s.size() - 3) == "\xEF\xBF\xBD"; }

bool is_whitespace(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

}  // namespace adallm::text::utf8
