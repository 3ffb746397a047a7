// The `added_tokens` of tokenizer.json: tokens matched in the text before the model sees it. Tokens with
// normalized=false are found in the raw text, normalized=true ones in the normalized text (as the Rust
// crate's AddedVocabulary does), leftmost-longest, honouring lstrip/rstrip/single_word.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "text/bpe.h"

namespace adallm::text {

class Normalizer;
class Regex;

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false, lstrip = false, rstrip = false, single_word = false, normalized = false;
};

// One piece of split text: either an added token id, or text for the next stage (id < 0).
struct Segment {
  std::string text;
  int32_t id = -1;
};

class AddedVocabulary {
 public:
  AddedVocabulary(const nlohmann::json& list, const BpeModel& model, const Normalizer* normalizer,
                  const std::string& json_path);
  ~AddedVocabulary();

  // Splits `text` on tokens with the given `normalized` flag; segments with id >= 0 are tokens.
  std::vector<Segment> split(std::string_view text, bool normalized_tokens) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const AddedToken* find(int32_t id) const;
  size_t size() const { return tokens_.size(); }
  int32_t max_id() const;  // -1 when empty

 private:
  // Byte trie for leftmost-longest matching; node 0 is the root.
  struct Trie {
    std::unordered_map<uint64_t, int32_t> edges;  // (node << 8 | byte) → node
    std::vector<int32_t> terminal;                // node → token index or -1
    std::vector<bool> first_byte = std::vector<bool>(256, false);
    void insert(std::string_view key, int32_t token_index);
    // Length and token index of the longest key starting at s[pos]; {0, -1} if none.
    std::pair<size_t, int32_t> longest(std::string_view s, size_t pos) const;
  };

  std::vector<AddedToken> tokens_;
  std::unordered_map<int32_t, size_t> by_id_;
  TokenMap by_content_;
  Trie raw_trie_, normalized_trie_;
  std::unique_ptr<Regex> word_char_;
};

}  // namespace adallm::text
