// String/Regex patterns of tokenizer.json (see pattern.h). An empty literal matches nothing, which keeps
// Replace("" → x) from looping; the Rust crate never produces such a file.
#include "text/pattern.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/regex.h"

namespace adallm::text {

Pattern Pattern::from_json(const nlohmann::json& node, const std::string& json_path) {
  Pattern p;
  if (node.is_object() && node.contains("String") && node["String"].is_string()) {
    p.literal_ = node["String"].get<std::string>();
  } else if (node.is_object() && node.contains("Regex") && node["Regex"].is_string()) {
    p.regex_ = std::make_shared<const Regex>(node["Regex"].get<std::string>());
  } else {
    throw Error(json_path + ": expected {\"String\": ...} or {\"Regex\": ...}, got " + node.dump());
  }
  return p;
}

Pattern Pattern::literal(std::string s) {
  Pattern p;
  p.literal_ = std::move(s);
  return p;
}

std::vector<std::pair<size_t, size_t>> Pattern::find_all(std::string_view s) const {
  if (regex_) return regex_->find_all(s);
  std::vector<std::pair<size_t, size_t>> out;
  if (literal_.empty()) return out;
  for (size_t pos = s.find(literal_); pos != std::string_view::npos; pos = s.find(literal_, pos + literal_.size()))
    out.emplace_back(pos, pos + literal_.size());
  return out;
}

}  // namespace adallm::text
