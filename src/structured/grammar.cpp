// GrammarBuilder: terminal sets shared by value, alternatives laid out flat, and the left-recursion check
// (nullable rules first, then a cycle search over "can start with" edges).
#include "structured/grammar.h"

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
