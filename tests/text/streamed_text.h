// Shared by the streaming parsers' tests (tool calls, reasoning): feeding a parser a text cut at given
// points, the cuts every streamed parser must survive, and a made-up model directory of the demo
// tokenizer with a chat template of the test's own.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"

namespace adallm::test {

// `text` pushed into `parser` in pieces ending at `cuts` (increasing, inside the text), then flushed.
template <class Parser, class Output>
void push_cut(Parser& parser, std::string_view text, const std::vector<size_t>& cuts, Output& out) {
  size_t from = 0;
  for (const size_t cut : cuts) {
    parser.push(text.substr(from, cut - from), out);
    from = cut;
  }
  parser.push(text.substr(from), out);
  parser.flush(out);
}

// Streams a text of `n` bytes every way a result must not depend on: one cut at each boundary, every byte
// apart, and (up to `pair_limit` bytes: the count is quadratic) every pair of cuts. `run(cuts)` streams it
// cut there, `expect(out, how)` asserts on a result, `right(out)` tells without asserting (the pair loop
// reports the first wrong pair of each first cut only).
template <class Run, class Expect, class Right>
void for_every_cut(size_t n, size_t pair_limit, Run run, Expect expect, Right right) {
  for (size_t i = 1; i < n; ++i) expect(run(std::vector<size_t>{i}), "split at " + std::to_string(i));
  std::vector<size_t> every;
  for (size_t i = 1; i < n; ++i) every.push_back(i);
  expect(run(every), "byte by byte");
  if (n > pair_limit) return;
  for (size_t i = 1; i < n; ++i) {
    for (size_t j = i + 1; j < n; ++j) {
      const auto out = run(std::vector<size_t>{i, j});
      if (!right(out)) {
        expect(out, "split at " + std::to_string(i) + " and " + std::to_string(j));
        break;
      }
    }
  }
}

// A model directory in `dir`: the demo model's tokenizer (`added` tokens appended to its added_tokens)
// and `chat_template`.
inline std::filesystem::path demo_model_with_template(const TempDir& dir, const std::string& chat_template,
                                                      const nlohmann::json& added = {}) {
  std::ifstream in(demo_model_dir() / "nvfp4" / "tokenizer.json");
  std::stringstream source;
  source << in.rdbuf();
  nlohmann::json tokenizer = nlohmann::json::parse(source.str());
  for (const auto& token : added) tokenizer["added_tokens"].push_back(token);
  std::ofstream(dir / "tokenizer.json") << tokenizer.dump();
  std::ofstream(dir / "tokenizer_config.json")
      << nlohmann::json{{"eos_token", "<|im_end|>"}, {"chat_template", chat_template}}.dump();
  return dir.path();
}

}  // namespace adallm::test
