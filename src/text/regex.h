// A compiled pre-tokenizer regex: PCRE2 in UTF + UCP mode, JIT-compiled, with `\s`/`\S` rewritten to the
// whitespace set of Oniguruma (what the Rust crate runs), which differs from PCRE2's only by U+180E.
// Thread-safe for concurrent matching; the patterns themselves come from the pre-tokenizer.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adallm::text {

class Regex {
 public:
  // Throws adallm::Error (message names the pattern and PCRE2's complaint) when the pattern does not compile.
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Non-overlapping matches [start, end) in byte offsets, left to right. `s` must be valid UTF-8.
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;
  // True when the whole of the one code point `s` matches (used for single-character class tests).
  bool matches_at(std::string_view s, size_t pos) const;

  // Exposed for tests: the pattern after the whitespace rewrite.
  static std::string rewrite_whitespace(const std::string& pattern);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace adallm::text
