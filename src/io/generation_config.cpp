// generation_config.json's sampling defaults (see generation_config.h).
#include "io/generation_config.h"

#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace adallm::io {

SamplingParams generation_defaults(const std::filesystem::path& model_dir) {
  SamplingParams p;
  const std::filesystem::path path = model_dir / "generation_config.json";
  std::ifstream in(path);
  if (!in) return p;
  const nlohmann::json g = nlohmann::json::parse(in, nullptr, false);
  if (!g.is_object()) throw Error("generation_config.json is not a JSON object").file(path.string());
  const auto number = [&](const char* field) -> const nlohmann::json* {
    const auto it = g.find(field);
    if (it == g.end() || it->is_null()) return nullptr;
    if (!it->is_number()) {
      throw Error(std::string(field) + ": expected a number, got " + it->dump()).file(path.string());
    }
    return &*it;
  };
  const auto it = g.find("do_sample");
  if (it != g.end() && !it->is_null() && !it->is_boolean()) {
    throw Error("do_sample: expected true or false, got " + it->dump()).file(path.string());
  }
  const bool do_sample = it == g.end() || it->is_null() || it->get<bool>();
  if (!do_sample) {
    p.temperature = 0.0f;
  } else if (const nlohmann::json* t = number("temperature")) {
    p.temperature = t->get<float>();
  }
  if (const nlohmann::json* v = number("top_p")) p.top_p = v->get<float>();
  if (const nlohmann::json* v = number("top_k")) {
    if (!v->is_number_integer()) throw Error("top_k: expected an integer, got " + v->dump()).file(path.string());
    p.top_k = v->get<int32_t>();
  }
  if (const nlohmann::json* v = number("repetition_penalty")) p.repetition_penalty = v->get<float>();
  return p;
}

}  // namespace adallm::io
