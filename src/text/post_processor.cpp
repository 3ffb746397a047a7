// Post-processors (processors/{template,byte_level,sequence}.rs) reduced to the ids of one sequence.
#include "text/post_processor.h"

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace adallm::text {
namespace {

using nlohmann::json;

class IdentityPostProcessor final : public PostProcessor {
 public:
  std::vector<int32_t> process(std::vector<int32_t> ids) const override { return ids; }
};

// The "single" template as a list of pieces: a fixed id list (special token) or the sequence ($A).
class TemplatePostProcessor final : public PostProcessor {
 public:
  TemplatePostProcessor(const json& node, const std::string& json_path) {
    const json& single = node.value("single", json());
    const json& specials = node.value("special_tokens", json::object());
    if (!single.is_array()) throw Error(json_path + ".single: expected an array");
    for (size_t i = 0; i < single.size(); ++i) {
      const json& piece = single[i];
      const std::string where = json_path + ".single[" + std::to_string(i) + "]";
      if (piece.contains("Sequence")) {
        if (piece["Sequence"].value("id", "") != "A")
          throw Error(where + ": only sequence $A is supported in a single template, got " + piece.dump());
        pieces_.push_back(std::nullopt);
      } else if (piece.contains("SpecialToken")) {
        const std::string name = piece["SpecialToken"].value("id", "");
        if (!specials.contains(name) || !specials[name].contains("ids") || !specials[name]["ids"].is_array())
          throw Error(where + ": special token \"" + name + "\" has no ids in " + json_path + ".special_tokens");
        pieces_.push_back(specials[name]["ids"].get<std::vector<int32_t>>());
      } else {
        throw Error(where + ": expected Sequence or SpecialToken, got " + piece.dump());
      }
    }
  }
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    std::vector<int32_t> out;
    out.reserve(ids.size() + 4);
    for (const auto& piece : pieces_) {
      if (piece)
        out.insert(out.end(), piece->begin(), piece->end());
      else
        out.insert(out.end(), ids.begin(), ids.end());
    }
    return out;
  }

 private:
  std::vector<std::optional<std::vector<int32_t>>> pieces_;
};

class SequencePostProcessor final : public PostProcessor {
 public:
  explicit SequencePostProcessor(std::vector<std::unique_ptr<PostProcessor>> steps) : steps_(std::move(steps)) {}
  std::vector<int32_t> process(std::vector<int32_t> ids) const override {
    for (const auto& step : steps_) ids = step->process(std::move(ids));
    return ids;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

}  // namespace

std::unique_ptr<PostProcessor> make_post_processor(const json& node, const std::string& json_path) {
  if (node.is_null()) return nullptr;
  const std::string type = node.value("type", "");
  if (type == "ByteLevel") return std::make_unique<IdentityPostProcessor>();
  if (type == "TemplateProcessing") return std::make_unique<TemplatePostProcessor>(node, json_path);
  if (type == "Sequence") {
    const json& list = node.value("processors", json());
    if (!list.is_array()) throw Error(json_path + ".processors: expected an array");
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = make_post_processor(list[i], json_path + ".processors[" + std::to_string(i) + "]");
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequencePostProcessor>(std::move(steps));
  }
  throw Error(json_path + ".type: post-processor \"" + type +
              "\" is not supported (supported: TemplateProcessing, ByteLevel, Sequence)");
}

}  // namespace adallm::text
