// The `pattern` object shared by Split, Replace normalizer and Replace decoder: {"String": s} (literal) or
// {"Regex": r} (PCRE2, see regex.h). find_all returns non-overlapping [start, end) byte ranges.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adallm::text {

class Regex;

class Pattern {
 public:
  static Pattern from_json(const nlohmann::json& node, const std::string& json_path);
  static Pattern literal(std::string s);
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;
  const std::string& literal_text() const { return literal_; }
  bool is_regex() const { return regex_ != nullptr; }

 private:
  std::string literal_;
  std::shared_ptr<const Regex> regex_;
};

}  // namespace adallm::text
