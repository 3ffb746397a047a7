// Pre-tokenizers of the Rust crate (pre_tokenizers/{split,byte_level,sequence}.rs and the split
// behaviours of tokenizer/normalizer.rs), on plain strings since only ids matter to AdaLLM.
#include "text/pre_tokenizer.h"

#include <algorithm>
#include <array>
#include <nlohmann/json.hpp>
#include <optional>

#include "core/error.h"
#include "text/pattern.h"

namespace adallm::text {
namespace {

using nlohmann::json;
using Range = std::pair<size_t, size_t>;

struct ByteMap {
  std::array<std::string, 256> to_unicode;
  std::array<int, 512> to_byte{};
  ByteMap() {
    to_byte.fill(-1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const int cp = printable ? b : next++;
      std::string s;
      if (cp < 0x80) {
        s.push_back(static_cast<char>(cp));
      } else {
        s.push_back(static_cast<char>(0xC0 | (cp >> 6)));
        s.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
      }
      to_unicode[static_cast<size_t>(b)] = s;
      to_byte[static_cast<size_t>(cp)] = b;
    }
  }
};

const ByteMap& byte_map() {
  static const ByteMap m;
  return m;
}

enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const json& node, const std::string& json_path) {
  const std::string b = node.is_string() ? node.get<std::string>() : "";
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  throw Error(json_path + ": unknown split behavior " + node.dump());
}

// Applies a split behaviour to the alternating (range, is_match) list covering a word.
std::vector<Range> apply_behavior(const std::vector<std::pair<Range, bool>>& parts, Behavior behavior) {
  std::vector<Range> out;
  bool previous_match = false;
  switch (behavior) {
    case Behavior::Removed:
      for (const auto& [r, m] : parts)
        if (!m) out.push_back(r);
      break;
    case Behavior::Isolated:
      for (const auto& [r, m] : parts) out.push_back(r);
      break;
    case Behavior::MergedWithPrevious:
      for (const auto& [r, m] : parts) {
        if (m && !previous_match && !out.empty())
          out.back().second = r.second;
        else
          out.push_back(r);
        previous_match = m;
      }
      break;
    case Behavior::MergedWithNext:
      for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
        if (it->second && !previous_match && !out.empty())
          out.back().first = it->first.first;
        else
          out.push_back(it->first);
        previous_match = it->second;
      }
      std::reverse(out.begin(), out.end());
      break;
    case Behavior::Contiguous:
      for (const auto& [r, m] : parts) {
        if (m == previous_match && !out.empty())
          out.back().second = r.second;
        else
          out.push_back(r);
        previous_match = m;
      }
      break;
  }
  return out;
}

void split_words(std::vector<std::string>& words, const Pattern& pattern, Behavior behavior, bool invert) {
  std::vector<std::string> result;
  result.reserve(words.size() * 2);
  std::vector<std::pair<Range, bool>> parts;
  for (const std::string& w : words) {
    parts.clear();
    size_t prev = 0;
    for (auto [start, end] : pattern.find_all(w)) {
      if (prev != start) parts.push_back({{prev, start}, invert});
      parts.push_back({{start, end}, !invert});
      prev = end;
    }
    if (prev != w.size()) parts.push_back({{prev, w.size()}, invert});
    for (auto [start, end] : apply_behavior(parts, behavior))
      if (end > start) result.push_back(w.substr(start, end - start));
  }
  words = std::move(result);
}

class SplitPreTokenizer final : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, Behavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<std::string>& words) const override {
    split_words(words, pattern_, behavior_, invert_);
  }

 private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's pattern, which ByteLevel applies itself when use_regex is true.
constexpr const char* kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

class ByteLevelPreTokenizer final : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex) regex_ = Pattern::from_json(json{{"Regex", kGpt2Pattern}}, "ByteLevel");
  }
  void pre_tokenize(std::vector<std::string>& words) const override {
    if (add_prefix_space_)
      for (std::string& w : words)
        if (w.empty() || w[0] != ' ') w.insert(0, " ");
    if (regex_) split_words(words, *regex_, Behavior::Isolated, false);
    const ByteMap& m = byte_map();
    for (std::string& w : words) {
      std::string mapped;
      mapped.reserve(w.size() * 2);
      for (char c : w) mapped += m.to_unicode[static_cast<uint8_t>(c)];
      w = std::move(mapped);
    }
  }

 private:
  bool add_prefix_space_;
  std::optional<Pattern> regex_;
};

class SequencePreTokenizer final : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> steps) : steps_(std::move(steps)) {}
  void pre_tokenize(std::vector<std::string>& words) const override {
    for (const auto& step : steps_) step->pre_tokenize(words);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> steps_;
};

bool bool_field(const json& node, const char* key, bool fallback, const std::string& json_path) {
  if (!node.contains(key)) return fallback;
  if (!node[key].is_boolean()) throw Error(json_path + "." + key + ": expected a boolean, got " + node[key].dump());
  return node[key].get<bool>();
}

}  // namespace

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& node, const std::string& json_path) {
  if (node.is_null()) return nullptr;
  const std::string type = node.value("type", "");
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(
        Pattern::from_json(node.value("pattern", json()), json_path + ".pattern"),
        parse_behavior(node.value("behavior", json()), json_path + ".behavior"),
        bool_field(node, "invert", false, json_path));
  }
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPreTokenizer>(bool_field(node, "add_prefix_space", true, json_path),
                                                   bool_field(node, "use_regex", true, json_path));
  if (type == "Sequence") {
    const json& list = node.value("pretokenizers", json());
    if (!list.is_array()) throw Error(json_path + ".pretokenizers: expected an array");
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = make_pre_tokenizer(list[i], json_path + ".pretokenizers[" + std::to_string(i) + "]");
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(steps));
  }
  throw Error(json_path + ".type: pre-tokenizer \"" + type +
              "\" is not supported (supported: Split, ByteLevel, Sequence)");
}

const std::string& byte_to_unicode(uint8_t byte) { return byte_map().to_unicode[byte]; }

int unicode_to_byte(char32_t cp) { return cp < 512 ? byte_map().to_byte[cp] : -1; }

}  // namespace adallm::text
