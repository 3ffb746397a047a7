// The `post_processor` of tokenizer.json, for single sequences: TemplateProcessing (e.g. BOS before $A),
// ByteLevel (offsets only: no effect on ids) and Sequence. Pair templates are parsed but never applied.
#pragma once

#include <cstdint>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace adallm::text {

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  virtual std::vector<int32_t> process(std::vector<int32_t> ids) const = 0;
};

std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& node, const std::string& json_path);

}  // namespace adallm::text
