// BPE as the Rust crate runs it (models/bpe/{model,word}.rs): characters (or their <0xNN> bytes, or a fused
// unk) become symbols, then the lowest-ranked adjacent pair is merged first, leftmost among equal ranks,
// via a priority queue so long words stay O(n log n).
#include "text/bpe.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <queue>

#include "core/error.h"
#include "text/utf8.h"

namespace adallm::text {
namespace {

using nlohmann::json;

uint64_t pair_key(int32_t a, int32_t b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

std::optional<std::string> optional_string(const json& node, const char* key, const std::string& json_path) {
  if (!node.contains(key) || node[key].is_null()) return std::nullopt;
  if (!node[key].is_string())
    throw Error(json_path + "." + key + ": expected a string or null, got " + node[key].dump());
  return node[key].get<std::string>();
}

bool bool_field(const json& node, const char* key, const std::string& json_path) {
  if (!node.contains(key) || node[key].is_null()) return false;
  if (!node[key].is_boolean()) throw Error(json_path + "." + key + ": expected a boolean, got " + node[key].dump());
  return node[key].get<bool>();
}

}  // namespace

BpeModel::BpeModel(const json& node, Vocab vocab, const Merges& merges, const std::string& json_path) {
  if (node.value("type", "BPE") != "BPE")
    throw Error(json_path + ".type: model \"" + node.value("type", "") + "\" is not supported (supported: BPE)");
  if (node.contains("dropout") && !node["dropout"].is_null())
    throw Error(json_path + ".dropout: BPE dropout " + node["dropout"].dump() + " is not supported (expected null)");
  vocab_.reserve(vocab.size());
  for (auto& [token, id] : vocab) {
    if (static_cast<size_t>(id) >= id_to_token_.size()) id_to_token_.resize(static_cast<size_t>(id) + 1);
    id_to_token_[static_cast<size_t>(id)] = token;
    vocab_.insert_or_assign(std::move(token), id);
  }
  continuing_subword_prefix_ = optional_string(node, "continuing_subword_prefix", json_path).value_or("");
  end_of_word_suffix_ = optional_string(node, "end_of_word_suffix", json_path).value_or("");
  fuse_unk_ = bool_field(node, "fuse_unk", json_path);
  byte_fallback_ = bool_field(node, "byte_fallback", json_path);
  ignore_merges_ = bool_field(node, "ignore_merges", json_path);
  if (auto unk = optional_string(node, "unk_token", json_path)) {
    const auto it = vocab_.find(*unk);
    if (it == vocab_.end()) throw Error(json_path + ".unk_token: \"" + *unk + "\" is not in the vocab");
    unk_id_ = it->second;
  }
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof(name), "<0x%02X>", b);
    const auto it = vocab_.find(std::string_view(name));
    byte_ids_[static_cast<size_t>(b)] = it == vocab_.end() ? -1 : it->second;
  }
  merges_.reserve(merges.size());
  std::string merged;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const auto& [a, b] = merges[rank];
    const auto ia = vocab_.find(a), ib = vocab_.find(b);
    merged.assign(a).append(b, std::min(b.size(), continuing_subword_prefix_.size()));
    const auto im = vocab_.find(merged);
    if (ia == vocab_.end() || ib == vocab_.end() || im == vocab_.end())
      throw Error(json_path + ".merges[" + std::to_string(rank) + "]: merge [\"" + a + "\", \"" + b +
                  "\"] uses a token missing from the vocab");
    merges_.emplace(pair_key(ia->second, ib->second), Merge{static_cast<int32_t>(rank), im->second});
  }
}

std::optional<int32_t> BpeModel::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

const std::string* BpeModel::id_to_token(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= id_to_token_.size()) return nullptr;
  const std::string& s = id_to_token_[static_cast<size_t>(id)];
  return s.empty() && token_to_id("") != id ? nullptr : &s;
}

const BpeModel::Merge* BpeModel::find_merge(int32_t left, int32_t right) const {
  const auto it = merges_.find(pair_key(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

void BpeModel::initial_symbols(std::string_view word, std::vector<int32_t>& ids) const {
  constexpr int32_t kNone = -1;  // a sentinel, not std::optional: GCC 12 warns falsely on the latter here
  int32_t pending_unk = kNone;
  std::string piece;
  for (size_t pos = 0; pos < word.size();) {
    const size_t start = pos;
    utf8::next(word, pos);
    piece.assign(word.substr(start, pos - start));
    if (start != 0 && !continuing_subword_prefix_.empty()) piece.insert(0, continuing_subword_prefix_);
    if (pos == word.size()) piece += end_of_word_suffix_;
    if (const auto it = vocab_.find(piece); it != vocab_.end()) {
      if (pending_unk != kNone) ids.push_back(pending_unk);
      pending_unk = kNone;
      ids.push_back(it->second);
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (char c : piece) all = all && byte_ids_[static_cast<uint8_t>(c)] >= 0;
      if (all) {  // like the Rust crate, a pending unk stays pending across byte tokens
        for (char c : piece) ids.push_back(byte_ids_[static_cast<uint8_t>(c)]);
        continue;
      }
    }
    if (unk_id_) {
      if (pending_unk != kNone && !fuse_unk_) ids.push_back(pending_unk);
      pending_unk = *unk_id_;
    }
  }
  if (pending_unk != kNone) ids.push_back(pending_unk);
}

void BpeModel::merge_all(std::vector<int32_t>& ids) const {
  const int n = static_cast<int>(ids.size());
  if (n < 2) return;
  struct Candidate {
    int32_t rank, pos, new_id;
  };
  auto later = [](const Candidate& x, const Candidate& y) {
    return x.rank != y.rank ? x.rank > y.rank : x.pos > y.pos;
  };
  std::priority_queue<Candidate, std::vector<Candidate>, decltype(later)> queue(later);
  std::vector<int> prev(static_cast<size_t>(n)), next(static_cast<size_t>(n));
  std::vector<bool> alive(static_cast<size_t>(n), true);
  for (int i = 0; i < n; ++i) {
    prev[static_cast<size_t>(i)] = i - 1;
    next[static_cast<size_t>(i)] = i + 1 < n ? i + 1 : -1;
    if (i + 1 < n)
      if (const Merge* m = find_merge(ids[static_cast<size_t>(i)], ids[static_cast<size_t>(i) + 1]))
        queue.push({m->rank, i, m->new_id});
  }
  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    const auto pos = static_cast<size_t>(top.pos);
    if (!alive[pos] || next[pos] < 0) continue;
    const auto right = static_cast<size_t>(next[pos]);
    const Merge* m = find_merge(ids[pos], ids[right]);
    if (!m || m->new_id != top.new_id) continue;
    ids[pos] = top.new_id;
    alive[right] = false;
    next[pos] = next[right];
    if (next[pos] >= 0) prev[static_cast<size_t>(next[pos])] = top.pos;
    if (prev[pos] >= 0)
      if (const Merge* l = find_merge(ids[static_cast<size_t>(prev[pos])], ids[pos]))
        queue.push({l->rank, prev[pos], l->new_id});
    if (next[pos] >= 0)
      if (const Merge* r = find_merge(ids[pos], ids[static_cast<size_t>(next[pos])]))
        queue.push({r->rank, top.pos, r->new_id});
  }
  size_t out = 0;
  for (size_t i = 0; i < ids.size(); ++i)
    if (alive[i]) ids[out++] = ids[i];
  ids.resize(out);
}

void BpeModel::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  if (ignore_merges_)
    if (const auto it = vocab_.find(word); it != vocab_.end()) {
      out.push_back(it->second);
      return;
    }
  const bool cacheable = word.size() <= kCacheMaxWordBytes;
  CacheShard& shard = cache_[std::hash<std::string_view>{}(word) % kCacheShards];
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    if (const auto it = shard.words.find(word); it != shard.words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int32_t> ids;
  initial_symbols(word, ids);
  merge_all(ids);
  out.insert(out.end(), ids.begin(), ids.end());
  if (cacheable) {
    std::lock_guard lock(shard.mutex);
    if (shard.words.size() >= kCacheShardCapacity) shard.words.clear();
    shard.words.emplace(std::string(word), std::move(ids));
  }
}

}  // namespace adallm::text
