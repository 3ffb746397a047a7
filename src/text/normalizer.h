// The `normalizer` of tokenizer.json: NFC, Replace (string or regex pattern), Prepend and Sequence, applied
// to text between added tokens. Offsets are not tracked (AdaLLM needs ids only); other types are rejected.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>

namespace adallm::text {

class Normalizer {
 public:
  virtual ~Normalizer() = default;
  virtual std::string normalize(std::string_view s) const = 0;
};

// `json_path` (e.g. "normalizer.normalizers[1]") names the node in errors. Returns nullptr for JSON null.
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& node, const std::string& json_path);

}  // namespace adallm::text
