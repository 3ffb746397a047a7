// Normalizers of the Rust crate (normalizers/{unicode,replace,prepend_append,utils}.rs) restricted to what
// id-exact encoding needs; the JSON shapes and the reasons for rejection are checked here at load.
#include "text/normalizer.h"

#include <nlohmann/json.hpp>
#include <vector>

#include "core/error.h"
#include "text/pattern.h"
#include "text/unicode_nfc.h"

namespace adallm::text {
namespace {

using nlohmann::json;

class NfcNormalizer final : public Normalizer {
 public:
  std::string normalize(std::string_view s) const override { return nfc(s); }
};

class ReplaceNormalizer final : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::string normalize(std::string_view s) const override {
    std::string out;
    size_t prev = 0;
    for (auto [start, end] : pattern_.find_all(s)) {
      out.append(s.substr(prev, start - prev));
      out += content_;
      prev = end;
    }
    out.append(s.substr(prev));
    return out;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer final : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  std::string normalize(std::string_view s) const override {
    return s.empty() ? std::string() : prefix_ + std::string(s);
  }

 private:
  std::string prefix_;
};

class SequenceNormalizer final : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps) : steps_(std::move(steps)) {}
  std::string normalize(std::string_view s) const override {
    std::string cur(s);
    for (const auto& step : steps_) cur = step->normalize(cur);
    return cur;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

std::string string_field(const json& node, const char* key, const std::string& json_path) {
  if (!node.contains(key) || !node[key].is_string())
    throw Error(json_path + "." + key + ": expected a string, got " +
                (node.contains(key) ? node[key].dump() : "nothing"));
  return node[key].get<std::string>();
}

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& node, const std::string& json_path) {
  if (node.is_null()) return nullptr;
  const std::string type = string_field(node, "type", json_path);
  if (type == "NFC") return std::make_unique<NfcNormalizer>();
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(
        Pattern::from_json(node.value("pattern", json()), json_path + ".pattern"),
        string_field(node, "content", json_path));
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(string_field(node, "prepend", json_path));
  if (type == "Sequence") {
    const json& list = node.value("normalizers", json());
    if (!list.is_array()) throw Error(json_path + ".normalizers: expected an array");
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = make_normalizer(list[i], json_path + ".normalizers[" + std::to_string(i) + "]");
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  throw Error(json_path + ".type: normalizer \"" + type +
              "\" is not supported (supported: NFC, Replace, Prepend, Sequence)");
}

}  // namespace adallm::text
