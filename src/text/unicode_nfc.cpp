// NFC: canonical decomposition (tables + algorithmic Hangul), canonical ordering by combining class, then
// canonical composition with blocking, as in UAX #15. ASCII-only input is returned untouched (fast path).
#include "text/unicode_nfc.h"

#include <algorithm>
#include <vector>

#include "text/unicode_nfc_data.h"
#include "text/utf8.h"

namespace adallm::text {
namespace {

namespace ud = unicode_data;
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

uint32_t ccc(char32_t cp) {
  if (cp < 0x300) return 0;
  const auto* end = ud::kCcc + ud::kCccSize;
  const auto* it = std::lower_bound(ud::kCcc, end, cp, [](const ud::CccEntry& e, char32_t c) { return e.cp < c; });
  return it != end && it->cp == cp ? it->ccc : 0;
}

void decompose(char32_t cp, std::vector<char32_t>& out) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = ud::kDecomp + ud::kDecompSize;
  const auto* it =
      std::lower_bound(ud::kDecomp, end, cp, [](const ud::DecompEntry& e, char32_t c) { return e.cp < c; });
  if (cp < 0xC0 || it == end || it->cp != cp) {
    out.push_back(cp);
    return;
  }
  decompose(it->first, out);
  if (it->second != 0) decompose(it->second, out);
}

// Returns 0 when the pair has no primary composite.
char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  const auto* end = ud::kComp + ud::kCompSize;
  const auto* it = std::lower_bound(ud::kComp, end, std::pair{a, b}, [](const ud::CompEntry& e, auto key) {
    return e.first < key.first || (e.first == key.first && e.second < key.second);
  });
  return it != end && it->first == a && it->second == b ? it->composite : 0;
}

void canonical_order(std::vector<char32_t>& cps) {
  for (size_t i = 0; i < cps.size();) {
    if (ccc(cps[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < cps.size() && ccc(cps[j]) != 0) ++j;
    std::stable_sort(cps.begin() + static_cast<long>(i), cps.begin() + static_cast<long>(j),
                     [](char32_t x, char32_t y) { return ccc(x) < ccc(y); });
    i = j;
  }
}

// The UAX #15 sample composition loop; lastClass 256 marks a string that starts with a non-starter.
void compose(std::vector<char32_t>& cps) {
  if (cps.empty()) return;
  size_t starter = 0, out = 1;
  uint32_t last_class = ccc(cps[0]) == 0 ? 0 : 256;
  for (size_t i = 1; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    const uint32_t cc = ccc(c);
    const char32_t composite = compose_pair(cps[starter], c);
    if (composite != 0 && (last_class < cc || last_class == 0)) {
      cps[starter] = composite;
      continue;
    }
    if (cc == 0) starter = out;
    last_class = cc;
    cps[out++] = c;
  }
  cps.resize(out);
}

}  // namespace

std::string nfc(std::string_view s) {
  if (std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0xC0; })) return std::string(s);
  std::vector<char32_t> cps;
  cps.reserve(s.size());
  for (size_t pos = 0; pos < s.size();) decompose(utf8::next(s, pos), cps);
  canonical_order(cps);
  compose(cps);
  std::string out;
  out.reserve(s.size());
  for (char32_t c : cps) utf8::append(out, c);
  return out;
}

}  // namespace adallm::text
