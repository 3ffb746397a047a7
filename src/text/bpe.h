// The BPE `model` of tokenizer.json: vocab, merges ("a b" strings or ["a","b"] pairs), ignore_merges,
// byte_fallback (<0xNN> tokens), unk_token with fuse_unk, continuing_subword_prefix/end_of_word_suffix.
// Encodes one pre-tokenized word; splitting text into words is pre_tokenizer's job. dropout is rejected.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace adallm::text {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using TokenMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

class BpeModel {
 public:
  using Vocab = std::vector<std::pair<std::string, int32_t>>;
  using Merges = std::vector<std::pair<std::string, std::string>>;
  // `options` is the "model" object without its vocab and merges, which come pre-parsed (json_scan.h);
  // errors name `json_path` (the caller adds the file).
  BpeModel(const nlohmann::json& options, Vocab vocab, const Merges& merges, const std::string& json_path);

  // Appends the ids of one word (thread-safe; repeated words come from a sharded cache).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::string* id_to_token(int32_t id) const;                           // nullptr when out of range or unassigned
  int32_t size() const { return static_cast<int32_t>(id_to_token_.size()); }  // largest id + 1
  int32_t entry_count() const { return static_cast<int32_t>(vocab_.size()); }  // Rust's get_vocab_size()
  // True for <0xNN> tokens when byte_fallback is on.
  bool byte_fallback() const { return byte_fallback_; }

 private:
  struct Merge {
    int32_t rank, new_id;
  };
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids) const;
  void merge_all(std::vector<int32_t>& ids) const;
  const Merge* find_merge(int32_t left, int32_t right) const;

  TokenMap vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<uint64_t, Merge> merges_;
  std::optional<int32_t> unk_id_;
  std::string continuing_subword_prefix_, end_of_word_suffix_;
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::array<int32_t, 256> byte_ids_{};  // <0xNN> ids, -1 when absent

  static constexpr size_t kCacheShards = 64, kCacheShardCapacity = 8192, kCacheMaxWordBytes = 256;
  struct CacheShard {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int32_t>, StringHash, std::equal_to<>> words;
  };
  mutable std::array<CacheShard, kCacheShards> cache_;
};

}  // namespace adallm::text
