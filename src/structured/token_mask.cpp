// Vocabulary: the byte trie and its depth-first walk; JsonConstraint: the engine's view of one request's
// matcher, with the mask cache.
#include "structured/token_mask.h"

#include <algorithm>
#include <numeric>

namespace adallm::structured {

Vocabulary::Vocabulary(const std::vector<std::optional<std::string>>& bytes, int32_t vocab_size)
    : bytes_(bytes), vocab_size_(vocab_size) {
  std::vector<int32_t> order;
  for (size_t t = 0; t < bytes_.size() && static_cast<int32_t>(t) < vocab_size; ++t) {
    // An empty token would advance nothing and could repeat forever: never allowed.
    if (bytes_[t] && !bytes_[t]->empty()) order.push_back(static_cast<int32_t>(t));
  }
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) {
    return *bytes_[static_cast<size_t>(a)] < *bytes_[static_cast<size_t>(b)] ||
           (*bytes_[static_cast<size_t>(a)] == *bytes_[static_cast<size_t>(b)] && a < b);
  });
  nodes_.push_back({});
  std::vector<int32_t> path = {0};  // node of each depth along the previous token
  const std::string* previous = nullptr;
  for (int32_t t : order) {
    const std::string& s = *bytes_[static_cast<size_t>(t)];
    size_t common = 0;
    if (previous != nullptr) {
      while (common < s.size() && common < previous->size() && s[common] == (*previous)[common]) ++common;
    }
    // Close the subtrees the new token leaves.
    while (path.size() > common + 1) {
      nodes_[static_cast<size_t>(path.back())].subtree_end = static_cast<int32_t>(nodes_.size());
      path.pop_back();
    }
    for (size_t d = common; d < s.size(); ++d) {
      Node n;
      n.byte = static_cast<uint8_t>(s[d]);
      n.depth = static_cast<int32_t>(d + 1);
      path.push_back(static_cast<int32_t>(nodes_.size()));
      nodes_.push_back(n);
    }
    Node& end = nodes_[static_cast<size_t>(path.back())];
    if (end.tokens_begin == end.tokens_end) end.tokens_begin = end.tokens_end = static_cast<int32_t>(tokens_.size());
    tokens_.push_back(t);
    end.tokens_end = static_cast<int32_t>(tokens_.size());
    max_depth_ = std::max(max_depth_, static_cast<int32_t>(s.size()));
    previous = &s;
  }
  while (!path.empty()) {
    nodes_[static_cast<size_t>(path.back())].subtree_end = static_cast<int32_t>(nodes_.size());
    path.pop_back();
  }
}

const std::string* Vocabulary::bytes(int32_t token) const {
  if (token < 0 || static_cast<size_t>(token) >= bytes_.size() || !bytes_[static_cast<size_t>(token)]) return nullptr;
  return &*bytes_[static_cast<size_t>(token)];
}

void Vocabulary::fill(Matcher& matcher, int32_t state, std::span<uint32_t> bitmask) const {
  std::vector<int32_t> states(static_cast<size_t>(max_depth_) + 1);
  states[0] = state;
  for (size_t i = 1; i < nodes_.size();) {
    const Node& n = nodes_[i];
    const int32_t here = matcher.next(states[static_cast<size_t>(n.depth - 1)], n.byte);
    states[static_cast<size_t>(n.depth)] = here;
    if (here == Matcher::kDead) {
      i = static_cast<size_t>(n.subtree_end);
      continue;
    }
    for (int32_t k = n.tokens_begin; k < n.tokens_end; ++k) {
      const auto t = static_cast<uint32_t>(tokens_[static_cast<size_t>(k)]);
      bitmask[t / 32] |= 1u << (t % 32);
    }
    ++i;
  }
}

JsonConstraint::JsonConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocabulary,
                               std::vector<int32_t> end_ids)
    : grammar_(grammar), vocabulary_(std::move(vocabulary)), end_ids_(std::move(end_ids)), matcher_(grammar) {}

void JsonConstraint::allowed(std::span<uint32_t> bitmask) {
  const int32_t state = matcher_.current();
  auto it = std::find_if(cache_.begin(), cache_.end(), [&](const auto& entry) { return entry.first == state; });
  if (it != cache_.end()) {
    ++hits_;
    cache_.splice(cache_.begin(), cache_, it);
  } else {
    ++misses_;
    std::vector<uint32_t> mask(vocabulary_->words(), 0);
    vocabulary_->fill(matcher_, state, mask);
    if (cache_.size() == kCacheEntries) cache_.pop_back();
    cache_.emplace_front(state, std::move(mask));
  }
  const std::vector<uint32_t>& mask = cache_.front().second;
  const size_t n = std::min(mask.size(), bitmask.size());
  for (size_t w = 0; w < n; ++w) bitmask[w] |= mask[w];
  if (matcher_.complete()) {
    for (int32_t t : end_ids_) {
      if (t >= 0 && static_cast<size_t>(t) / 32 < bitmask.size()) bitmask[static_cast<size_t>(t) / 32] |= 1u << (t % 32);
    }
  }
}

bool JsonConstraint::accept(int32_t token) {
  if (ended_) return false;
  if (std::find(end_ids_.begin(), end_ids_.end(), token) != end_ids_.end()) {
    ended_ = matcher_.complete();
    return ended_;
  }
  const std::string* bytes = vocabulary_->bytes(token);
  return bytes != nullptr && !bytes->empty() && matcher_.advance(*bytes);
}

}  // namespace adallm::structured
