// Token masks from a Matcher: the vocabulary's token bytes in a trie (shared prefixes are stepped once),
// walked depth first from the matcher's state, pruning at the first refused byte. JsonConstraint wraps
// this as the engine's TokenConstraint, with a per-request cache of masks by matcher state (inside a
// string the state repeats, so most steps hit the cache).
#pragma once

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adallm/token_constraint.h"
#include "structured/matcher.h"

namespace adallm::structured {

class Vocabulary {
 public:
  // bytes[t]: token t's bytes, or nullopt for a token never allowed (special, unassigned). vocab_size: the
  // model's (may exceed bytes.size(): padding rows are never allowed). Empty tokens are never allowed.
  Vocabulary(const std::vector<std::optional<std::string>>& bytes, int32_t vocab_size);

  int32_t vocab_size() const { return vocab_size_; }
  size_t words() const { return static_cast<size_t>(vocab_size_ + 31) / 32; }
  const std::string* bytes(int32_t token) const;

  // Sets in `bitmask` the tokens whose bytes `matcher` accepts from its state `state` (end tokens aside).
  void fill(Matcher& matcher, int32_t state, std::span<uint32_t> bitmask) const;

 private:
  // Preorder: node i's subtree is [i, subtree_end); its byte leads from its parent, at depth `depth`.
  struct Node {
    uint8_t byte = 0;
    int32_t depth = 0;
    int32_t subtree_end = 0;
    int32_t tokens_begin = 0, tokens_end = 0;  // into tokens_: the tokens whose bytes end here
  };
  std::vector<Node> nodes_;  // nodes_[0] is the root (no byte)
  std::vector<int32_t> tokens_;
  std::vector<std::optional<std::string>> bytes_;
  int32_t vocab_size_ = 0;
  int32_t max_depth_ = 0;
};

class JsonConstraint final : public TokenConstraint {
 public:
  JsonConstraint(std::shared_ptr<const Grammar> grammar, std::shared_ptr<const Vocabulary> vocabulary,
                 std::vector<int32_t> end_ids);

  void allowed(std::span<uint32_t> bitmask) override;
  bool accept(int32_t token) override;
  bool finished() const override { return ended_ || (matcher_.complete() && !matcher_.can_continue()); }

  Matcher& matcher() { return matcher_; }
  int64_t cache_hits() const { return hits_; }
  int64_t cache_misses() const { return misses_; }

 private:
  static constexpr size_t kCacheEntries = 32;
  std::shared_ptr<const Grammar> grammar_;
  std::shared_ptr<const Vocabulary> vocabulary_;
  std::vector<int32_t> end_ids_;
  Matcher matcher_;
  bool ended_ = false;
  // Recently used masks by matcher state, most recent first.
  std::list<std::pair<int32_t, std::vector<uint32_t>>> cache_;
  int64_t hits_ = 0, misses_ = 0;
};

}  // namespace adallm::structured
