// Conformance of text::Tokenizer with Hugging Face's Rust `tokenizers` on the generated corpus (≥ 5,000
// strings per family, see tests/oracles/): every id of encode with and without special tokens, and decode.
// The reference outputs come from scripts/oracles.sh (scripts/test.sh runs it before ctest); when they
// are missing the tests fail, never skip. Unit tests of the pieces live in the other test_*.cpp files.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/oracle_data.h"
#include "text/tokenizer.h"

namespace adallm::text {
namespace {

namespace oracle = adallm::test::oracle;

// Collects mismatches: the first 20 in full, and a count per kind, into one failure message.
class Mismatches {
 public:
  void add(const std::string& kind, size_t line, const std::string& text, const std::string& expected,
           const std::string& got) {
    ++counts_[kind];
    ++total_;
    if (details_.size() < 20) {
      details_.push_back(kind + " at corpus line " + std::to_string(line) + " for " + oracle::escaped(text) +
                         "\n    expected " + expected + "\n    got      " + got);
    }
  }
  size_t total() const { return total_; }
  std::string report(size_t cases) const {
    std::string out = std::to_string(total_) + " mismatches over " + std::to_string(cases) + " strings (";
    for (const auto& [kind, n] : counts_) out += kind + ": " + std::to_string(n) + "; ";
    out += "first " + std::to_string(details_.size()) + " below)\n";
    for (const auto& d : details_) out += "  " + d + "\n";
    return out;
  }

 private:
  std::map<std::string, size_t> counts_;
  std::vector<std::string> details_;
  size_t total_ = 0;
};

Mismatches check_encode(const Tokenizer& tokenizer, const oracle::TokenizerOracle& reference) {
  Mismatches bad;
  size_t line = 1;  // line 1 of the file is the header
  for (const auto& c : reference.cases) {
    ++line;
    auto check = [&](const std::string& kind, std::string_view input, bool special, const std::vector<int32_t>& want) {
      try {
        const auto got = tokenizer.encode(input, special);
        if (got != want) bad.add(kind, line, c.text, oracle::ids_string(want), oracle::ids_string(got));
      } catch (const std::exception& e) {
        bad.add(kind, line, c.text, oracle::ids_string(want), std::string("exception: ") + e.what());
      }
    };
    check("ids (add_special_tokens=true)", c.text, true, c.ids);
    check("ids_plain (add_special_tokens=false)", c.text, false, c.ids_plain);
    // The same string as the invalid UTF-8 bytes it was decoded from: the reference saw U+FFFD for them.
    if (c.invalid_utf8) check("ids_plain from invalid UTF-8 bytes", *c.invalid_utf8, false, c.ids_plain);
  }
  return bad;
}

Mismatches check_decode(const Tokenizer& tokenizer, const oracle::TokenizerOracle& reference) {
  Mismatches bad;
  size_t line = 1;
  for (const auto& c : reference.cases) {
    ++line;
    auto check = [&](const std::string& kind, const std::vector<int32_t>& ids, bool skip, const std::string& want) {
      try {
        const auto got = tokenizer.decode(ids, skip);
        if (got != want) bad.add(kind, line, c.text, oracle::escaped(want), oracle::escaped(got));
      } catch (const std::exception& e) {
        bad.add(kind, line, c.text, oracle::escaped(want), std::string("exception: ") + e.what());
      }
    };
    // Where the reference round-trips (decoded == text) this is decode(encode(s)) == s; elsewhere (NFC,
    // Gemma's literal U+2581) AdaLLM must still produce the reference's text.
    check(c.decoded == c.text ? "decode round-trip" : "decode (reference does not round-trip)", c.ids_plain, false,
          c.decoded);
    check("decode(ids, skip_special_tokens=true)", c.ids, true, c.decoded_skip);
  }
  return bad;
}

class TokenizerConformance : public ::testing::TestWithParam<std::string> {};

// One test per family, so that each ctest process loads the (large) tokenizer.json only once.
TEST_P(TokenizerConformance, MatchesRustTokenizers) {
  oracle::TokenizerOracle reference;
  std::unique_ptr<Tokenizer> tokenizer;
  try {
    reference = oracle::load_tokenizer_oracle(GetParam());
    tokenizer = Tokenizer::load(reference.tokenizer_json);
  } catch (const std::exception& e) {
    FAIL() << GetParam() << ": " << e.what();
  }
  ASSERT_GE(reference.cases.size(), 5000u) << oracle::kRegenerateHint;
  const auto encode = check_encode(*tokenizer, reference);
  EXPECT_EQ(encode.total(), 0u) << GetParam() << " encode: " << encode.report(reference.cases.size());
  const auto decode = check_decode(*tokenizer, reference);
  const auto round_trips = std::count_if(reference.cases.begin(), reference.cases.end(),
                                         [](const auto& c) { return c.decoded == c.text; });
  EXPECT_EQ(decode.total(), 0u) << GetParam() << " decode (" << round_trips
                                << " strings round-trip in the reference): " << decode.report(reference.cases.size());
}

INSTANTIATE_TEST_SUITE_P(Oracle, TokenizerConformance, ::testing::Values("qwen3", "llama3_1", "gemma3"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace adallm::text
