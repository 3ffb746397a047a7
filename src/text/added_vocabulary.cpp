// Added-token matching (tokenizer/added_vocabulary.rs): a match rejected by single_word is skipped, not
// retried shorter; lstrip/rstrip swallow Unicode White_Space next to the token, never text a previous
// token already took. A token whose content is in the model vocab keeps the model's id, as in Rust.
#include "text/added_vocabulary.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/normalizer.h"
#include "text/regex.h"
#include "text/utf8.h"

namespace adallm::text {
namespace {

using nlohmann::json;

size_t previous_char_start(std::string_view s, size_t pos) {
  size_t p = pos - 1;
  while (p > 0 && (static_cast<uint8_t>(s[p]) & 0xC0) == 0x80) --p;
  return p;
}

}  // namespace

void AddedVocabulary::Trie::insert(std::string_view key, int32_t token_index) {
  if (terminal.empty()) terminal.push_back(-1);
  if (key.empty()) return;
  first_byte[static_cast<uint8_t>(key[0])] = true;
  int32_t node = 0;
  for (char c : key) {
    const uint64_t edge = (static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(c);
    const auto it = edges.find(edge);
    if (it != edges.end()) {
      node = it->second;
    } else {
      terminal.push_back(-1);
      node = static_cast<int32_t>(terminal.size() - 1);
      edges.emplace(edge, node);
    }
  }
  if (terminal[static_cast<size_t>(node)] < 0) terminal[static_cast<size_t>(node)] = token_index;
}

std::pair<size_t, int32_t> AddedVocabulary::Trie::longest(std::string_view s, size_t pos) const {
  std::pair<size_t, int32_t> best{0, -1};
  if (terminal.empty() || !first_byte[static_cast<uint8_t>(s[pos])]) return best;
  int32_t node = 0;
  for (size_t i = pos; i < s.size(); ++i) {
    const auto it = edges.find((static_cast<uint64_t>(node) << 8) | static_cast<uint8_t>(s[i]));
    if (it == edges.end()) break;
    node = it->second;
    if (terminal[static_cast<size_t>(node)] >= 0) best = {i + 1 - pos, terminal[static_cast<size_t>(node)]};
  }
  return best;
}

AddedVocabulary::AddedVocabulary(const json& list, const BpeModel& model, const Normalizer* normalizer,
                                 const std::string& json_path)
    : word_char_(std::make_unique<Regex>("\\w")) {
  if (list.is_null()) return;
  if (!list.is_array()) throw Error(json_path + ": expected an array");
  raw_trie_.terminal.push_back(-1);
  normalized_trie_.terminal.push_back(-1);
  int32_t next_id = 0;  // one past the largest added id so far
  for (size_t i = 0; i < list.size(); ++i) {
    const json& t = list[i];
    const std::string where = json_path + "[" + std::to_string(i) + "]";
    if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id") ||
        !t["id"].is_number_integer())
      throw Error(where + ": expected {\"id\": int, \"content\": string, ...}, got " + t.dump().substr(0, 200));
    AddedToken token;
    token.content = t["content"].get<std::string>();
    // The Rust crate ignores the file's id: a token of the model vocab keeps its model id, a new one gets
    // the next id after the model (vocab entry count) and earlier added tokens.
    if (const auto in_model = model.token_to_id(token.content)) {
      token.id = *in_model;
    } else if (const auto in_added = by_content_.find(token.content); in_added != by_content_.end()) {
      token.id = in_added->second;
    } else {
      token.id = next_id < model.entry_count() ? model.entry_count() : next_id;
    }
    next_id = std::max(next_id, token.id + 1);
    token.special = t.value("special", false);
    token.lstrip = t.value("lstrip", false);
    token.rstrip = t.value("rstrip", false);
    token.single_word = t.value("single_word", false);
    token.normalized = t.value("normalized", !token.special);
    if (token.content.empty() || !utf8::is_valid(token.content))
      throw Error(where + ".content: empty or invalid UTF-8");
    if (by_content_.count(token.content) != 0) continue;
    const auto index = static_cast<int32_t>(tokens_.size());
    if (token.normalized) {
      normalized_trie_.insert(normalizer ? normalizer->normalize(token.content) : token.content, index);
    } else {
      raw_trie_.insert(token.content, index);
    }
    by_id_.emplace(token.id, tokens_.size());
    by_content_.emplace(token.content, token.id);
    tokens_.push_back(std::move(token));
  }
}

AddedVocabulary::~AddedVocabulary() = default;

std::vector<Segment> AddedVocabulary::split(std::string_view text, bool normalized_tokens) const {
  const Trie& trie = normalized_tokens ? normalized_trie_ : raw_trie_;
  std::vector<Segment> out;
  size_t emitted = 0;  // end of the text already assigned to a segment
  for (size_t pos = 0; pos < text.size();) {
    const auto [length, index] = trie.longest(text, pos);
    if (index < 0) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens_[static_cast<size_t>(index)];
    size_t start = pos, stop = pos + length;
    pos = stop;
    if (token.single_word) {
      const bool word_before = start > 0 && word_char_->matches_at(text, previous_char_start(text, start));
      const bool word_after = stop < text.size() && word_char_->matches_at(text, stop);
      if (word_before || word_after) continue;
    }
    if (token.lstrip) {
      size_t s = start;
      while (s > emitted) {
        const size_t p = previous_char_start(text, s);
        size_t q = p;
        if (!utf8::is_whitespace(utf8::next(text, q))) break;
        s = p;
      }
      start = s;
    }
    if (token.rstrip) {
      while (stop < text.size()) {
        size_t q = stop;
        if (!utf8::is_whitespace(utf8::next(text, q))) break;
        stop = q;
      }
      pos = stop;
    }
    if (start > emitted) out.push_back({std::string(text.substr(emitted, start - emitted)), -1});
    out.push_back({std::string(), token.id});
    emitted = stop;
  }
  if (emitted < text.size()) out.push_back({std::string(text.substr(emitted)), -1});
  return out;
}

std::optional<int32_t> AddedVocabulary::token_to_id(std::string_view token) const {
  const auto it = by_content_.find(token);
  if (it == by_content_.end()) return std::nullopt;
  return it->second;
}

int32_t AddedVocabulary::max_id() const {
  int32_t m = -1;
  for (const AddedToken& t : tokens_) m = std::max(m, t.id);
  return m;
}

const AddedToken* AddedVocabulary::find(int32_t id) const {
  const auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &tokens_[it->second];
}

}  // namespace adallm::text
