// Matcher: closure over hash-consed stacks, and the state numbering with its transition table. No left
// recursion (GrammarBuilder::finish refuses it), so a closure expands finitely many nodes; the stamp keeps
// one closure from visiting a node twice.
#include "structured/matcher.h"

#include <algorithm>

namespace adallm::structured {

Matcher::Matcher(std::shared_ptr<const Grammar> grammar) : g_(std::move(grammar)) {
  for (int32_t alt : g_->rules.at(static_cast<size_t>(g_->root))) work_.push_back(intern(alt, -1));
  MatchState start;
  close(start);
  current_ = intern_state(std::move(start));
}

size_t Matcher::StateHash::operator()(const MatchState& s) const {
  uint64_t h = s.complete ? 0x9E3779B97F4A7C15ull : 0;
  for (int32_t id : s.heads) h = (h ^ static_cast<uint32_t>(id)) * 0x100000001B3ull;
  return static_cast<size_t>(h);
}

int32_t Matcher::intern(int32_t pos, int32_t parent) {
  const uint64_t key = (static_cast<uint64_t>(static_cast<uint32_t>(pos)) << 32) | static_cast<uint32_t>(parent);
  const auto [it, added] = index_.emplace(key, static_cast<int32_t>(nodes_.size()));
  if (added) {
    nodes_.push_back({pos, parent});
    seen_.push_back(0);
  }
  return it->second;
}

int32_t Matcher::intern_state(MatchState&& state) {
  const auto it = state_index_.find(state);
  if (it != state_index_.end()) return it->second;
  const auto id = static_cast<int32_t>(states_.size());
  states_.push_back(state);
  state_index_.emplace(std::move(state), id);
  transitions_.emplace_back();
  transitions_.back().fill(kUnknown);
  return id;
}

void Matcher::close(MatchState& out) {
  out.heads.clear();
  out.complete = false;
  if (++stamp_ == 0) {  // wrapped: forget every mark
    std::fill(seen_.begin(), seen_.end(), 0);
    stamp_ = 1;
  }
  while (!work_.empty()) {
    const int32_t id = work_.back();
    work_.pop_back();
    if (seen_[static_cast<size_t>(id)] == stamp_) continue;
    seen_[static_cast<size_t>(id)] = stamp_;
    const Node n = nodes_[static_cast<size_t>(id)];
    const Element e = g_->code[static_cast<size_t>(n.pos)];
    switch (e.kind) {
      case Element::bytes:
        out.heads.push_back(id);
        break;
      case Element::end:
        if (n.parent < 0) {
          out.complete = true;
        } else {
          work_.push_back(n.parent);
        }
        break;
      case Element::rule: {
        // A rule in tail position returns straight to the caller's parent: right recursion (a string's
        // characters, an array's items) then keeps the stack flat, so states repeat and their masks are reused.
        const bool tail = g_->code[static_cast<size_t>(n.pos + 1)].kind == Element::end;
        const int32_t ret = tail ? n.parent : intern(n.pos + 1, n.parent);
        for (int32_t alt : g_->rules[static_cast<size_t>(e.arg)]) work_.push_back(intern(alt, ret));
        break;
      }
    }
  }
  std::sort(out.heads.begin(), out.heads.end());
}

int32_t Matcher::next(int32_t from, uint8_t byte) {
  int32_t& known = transitions_[static_cast<size_t>(from)][byte];
  if (known != kUnknown) return known;
  for (int32_t id : states_[static_cast<size_t>(from)].heads) {
    const Node n = nodes_[static_cast<size_t>(id)];
    if (g_->sets[static_cast<size_t>(g_->code[static_cast<size_t>(n.pos)].arg)].test(byte)) {
      work_.push_back(intern(n.pos + 1, n.parent));
    }
  }
  MatchState to;
  close(to);
  // `known` may dangle once intern_state grows transitions_: store through a fresh reference.
  const int32_t result = to.dead() ? kDead : intern_state(std::move(to));
  transitions_[static_cast<size_t>(from)][byte] = result;
  return result;
}

int32_t Matcher::walk(int32_t from, std::string_view bytes) {
  int32_t s = from;
  for (char c : bytes) {
    s = next(s, static_cast<uint8_t>(c));
    if (s == kDead) return kDead;
  }
  return s;
}

bool Matcher::advance(std::string_view bytes) {
  const int32_t s = walk(current_, bytes);
  if (s == kDead) return false;
  current_ = s;
  return true;
}

}  // namespace adallm::structured
