// GrammarBuilder: terminal sets shared by value, alternatives laid out flat, and the left-recursion check
// (nullable rules first, then a cycle search over "can start with" edges).
#include "structured/grammar.h"

#include <algorithm>
#include <functional>
#include <string>

#include "core/error.h"

namespace adallm::structured {

int32_t GrammarBuilder::declare() {
  pending_.emplace_back();
  return static_cast<int32_t>(pending_.size() - 1);
}

void GrammarBuilder::alternative(int32_t rule, const std::vector<Element>& sequence) {
  pending_.at(static_cast<size_t>(rule)).push_back(sequence);
}

int32_t GrammarBuilder::rule(const std::vector<std::vector<Element>>& alternatives) {
  const int32_t r = declare();
  for (const auto& a : alternatives) alternative(r, a);
  return r;
}

Element GrammarBuilder::byte_set(const std::bitset<256>& set) {
  const auto [it, added] = set_index_.emplace(set.to_string(), static_cast<int32_t>(g_.sets.size()));
  if (added) g_.sets.push_back(set);
  return {Element::bytes, it->second};
}

Element GrammarBuilder::byte_range(uint8_t lo, uint8_t hi) {
  std::bitset<256> set;
  for (int b = lo; b <= hi; ++b) set.set(static_cast<size_t>(b));
  return byte_set(set);
}

void GrammarBuilder::literal(std::string_view text, std::vector<Element>& out) {
  for (char c : text) out.push_back(byte_range(static_cast<uint8_t>(c), static_cast<uint8_t>(c)));
}

std::vector<Element> GrammarBuilder::literal(std::string_view text) {
  std::vector<Element> out;
  literal(text, out);
  return out;
}

void digit_range_alternatives(const std::vector<int>& lo, const std::vector<int>& hi, int min, int max,
                              const std::function<Element(int, int)>& terminal, std::vector<Element> prefix,
                              std::vector<std::vector<Element>>& out) {
  const size_t n = lo.size();
  if (n == 0) {
    out.push_back(std::move(prefix));
    return;
  }
  const std::vector<int> lo_rest(lo.begin() + 1, lo.end()), hi_rest(hi.begin() + 1, hi.end());
  if (lo[0] == hi[0]) {
    prefix.push_back(terminal(lo[0], lo[0]));
    digit_range_alternatives(lo_rest, hi_rest, min, max, terminal, std::move(prefix), out);
    return;
  }
  const bool lo_full = std::all_of(lo_rest.begin(), lo_rest.end(), [&](int d) { return d == min; });
  const bool hi_full = std::all_of(hi_rest.begin(), hi_rest.end(), [&](int d) { return d == max; });
  // The first digits whose every tail is in range, then the partial ends.
  const int mid_lo = lo_full ? lo[0] : lo[0] + 1, mid_hi = hi_full ? hi[0] : hi[0] - 1;
  if (!lo_full) {
    std::vector<Element> low = prefix;
    low.push_back(terminal(lo[0], lo[0]));
    digit_range_alternatives(lo_rest, std::vector<int>(n - 1, max), min, max, terminal, std::move(low), out);
  }
  if (mid_lo <= mid_hi) {
    std::vector<Element> mid = prefix;
    mid.push_back(terminal(mid_lo, mid_hi));
    for (size_t k = 1; k < n; ++k) mid.push_back(terminal(min, max));
    out.push_back(std::move(mid));
  }
  if (!hi_full) {
    std::vector<Element> high = std::move(prefix);
    high.push_back(terminal(hi[0], hi[0]));
    digit_range_alternatives(std::vector<int>(n - 1, min), hi_rest, min, max, terminal, std::move(high), out);
  }
}

namespace {

std::vector<int> utf8_bytes(uint32_t c) {
  if (c < 0x80) return {static_cast<int>(c)};
  if (c < 0x800) return {static_cast<int>(0xC0 | (c >> 6)), static_cast<int>(0x80 | (c & 0x3F))};
  if (c < 0x10000) {
    return {static_cast<int>(0xE0 | (c >> 12)), static_cast<int>(0x80 | ((c >> 6) & 0x3F)),
            static_cast<int>(0x80 | (c & 0x3F))};
  }
  return {static_cast<int>(0xF0 | (c >> 18)), static_cast<int>(0x80 | ((c >> 12) & 0x3F)),
          static_cast<int>(0x80 | ((c >> 6) & 0x3F)), static_cast<int>(0x80 | (c & 0x3F))};
}

}  // namespace

void utf8_alternatives(GrammarBuilder& b, uint32_t lo, uint32_t hi, std::vector<std::vector<Element>>& out) {
  const auto terminal = [&](int a, int z) { return b.byte_range(static_cast<uint8_t>(a), static_cast<uint8_t>(z)); };
  hi = std::min<uint32_t>(hi, 0x10FFFF);
  // Split at the surrogates and where the encoded length changes: within each piece the encodings of
  // lo..hi are exactly the byte strings from utf8(lo) to utf8(hi), continuation bytes over 80..BF.
  const uint32_t cuts[][2] = {{0, 0x7F}, {0x80, 0x7FF}, {0x800, 0xD7FF}, {0xE000, 0xFFFF}, {0x10000, 0x10FFFF}};
  for (const auto& [from, to] : cuts) {
    const uint32_t a = std::max(lo, from), z = std::min(hi, to);
    if (a > z) continue;
    digit_range_alternatives(utf8_bytes(a), utf8_bytes(z), 0x80, 0xBF, terminal, {}, out);
  }
}

Grammar GrammarBuilder::finish(int32_t root) {
  const size_t n = pending_.size();
  // Nullable rules, to a fixed point.
  std::vector<bool> nullable(n, false);
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < n; ++r) {
      if (nullable[r]) continue;
      for (const auto& alt : pending_[r]) {
        bool all = true;
        for (const Element& e : alt) all = all && e.kind == Element::rule && nullable[static_cast<size_t>(e.arg)];
        if (all) {
          nullable[r] = changed = true;
          break;
        }
      }
    }
  }
  // r → s when some alternative of r can start by expanding s.
  std::vector<std::vector<int32_t>> starts(n);
  for (size_t r = 0; r < n; ++r) {
    for (const auto& alt : pending_[r]) {
      for (const Element& e : alt) {
        if (e.kind != Element::rule) break;
        starts[r].push_back(e.arg);
        if (!nullable[static_cast<size_t>(e.arg)]) break;
      }
    }
  }
  std::vector<uint8_t> mark(n, 0);  // 0 unvisited, 1 on the path, 2 done
  const std::function<void(size_t)> visit = [&](size_t r) {
    mark[r] = 1;
    for (int32_t s : starts[r]) {
      if (mark[static_cast<size_t>(s)] == 1) {
        throw Error("the schema refers to itself without consuming any output (left recursion through $ref)");
      }
      if (mark[static_cast<size_t>(s)] == 0) visit(static_cast<size_t>(s));
    }
    mark[r] = 2;
  };
  for (size_t r = 0; r < n; ++r)
    if (mark[r] == 0) visit(r);

  g_.rules.assign(n, {});
  for (size_t r = 0; r < n; ++r) {
    for (const auto& alt : pending_[r]) {
      g_.rules[r].push_back(static_cast<int32_t>(g_.code.size()));
      g_.code.insert(g_.code.end(), alt.begin(), alt.end());
      g_.code.push_back({Element::end, 0});
    }
  }
  g_.root = root;
  return std::move(g_);
}

}  // namespace adallm::structured
