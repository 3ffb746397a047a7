// text/reasoning: the <think> splitter on whole texts (reasoning then answer, no </think>, empty
// reasoning, the tag opened in the prompt, lookalike tags, whitespace trimmed at the seams), the same texts
// streamed split at every boundary and byte by byte (the result never depends on where pieces end), what is
// released early, where a prompt opens reasoning, and the load-time check against real and made-up models.
#include "text/reasoning.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "text/model_text.h"
#include "streamed_text.h"
#include "tokenizer_files.h"

namespace adallm::text {
namespace {
namespace fs = std::filesystem;

using Output = ReasoningParser::Output;

struct Case {
  const char* what;
  std::string text;
  bool opened_in_prompt;
  std::string reasoning;
  std::string content;
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"Qwen3: thinking then the answer", "<think>\nThe user greets me.\n</think>\n\nHello!", false,
       "The user greets me.", "Hello!"},
      {"no reasoning: all content, unchanged", "  Hello <b>there</b>\n", false, "", "  Hello <b>there</b>\n"},
      {"empty reasoning (enable_thinking false writes it in the prompt)", "<think>\n\n</think>\n\nHi", false, "", "Hi"},
      {"no </think>: all reasoning (cut by max_tokens)", "<think>\nLet me count: 1, 2, ", false, "Let me count: 1, 2,",
       ""},
      {"opened in the prompt (DeepSeek-R1)", "First, 2+2.\n</think>\n\n4", true, "First, 2+2.", "4"},
      {"opened in the prompt and written again", "<think>\nx\n</think>y", true, "x", "y"},
      {"opened in the prompt, no </think>", "\nstill thinking", true, "still thinking", ""},
      {"opened in the prompt, nothing generated but whitespace", "\n\n", true, "", ""},
      {"whitespace before <think>", "\n <think>a</think>b", false, "a", "b"},
      {"<think> later is content", "Answer: <think>no</think>", false, "", "Answer: <think>no</think>"},
      {"a lookalike opening tag", "<thinking>x</thinking>", false, "", "<thinking>x</thinking>"},
      {"a lookalike closing tag stays reasoning", "<think>a </thinker> b</think>c", false, "a </thinker> b", "c"},
      {"a second </think> is content", "<think>a</think>b</think>c", false, "a", "b</think>c"},
      {"a partial </think> at the end stays reasoning", "<think>abc </thi", false, "abc </thi", ""},
      {"a partial <think> alone is content", "<thi", false, "", "<thi"},
      {"whitespace inside the reasoning kept", "<think>a\n\n  b\tc</think>\n\n\n d \n", false, "a\n\n  b\tc", "d \n"},
      {"only whitespace after </think>", "<think>r</think>\n\n", false, "r", ""},
      {"tool call after the reasoning",
       "<think>\nI need the weather.\n</think>\n\n<tool_call>\n{\"name\": \"w\", \"arguments\": {}}\n</tool_call>", false,
       "I need the weather.", "<tool_call>\n{\"name\": \"w\", \"arguments\": {}}\n</tool_call>"},
      {"unicode", "<think>東京 👋 é</think>Voilà — ok", false, "東京 👋 é", "Voilà — ok"},
      {"empty output", "", false, "", ""},
  };
  return all;
}

Output streamed(const Case& c, const std::vector<size_t>& cuts) {
  ReasoningParser parser(c.opened_in_prompt);
  Output out;
  test::push_cut(parser, c.text, cuts, out);
  return out;
}

void expect_output(const Case& c, const Output& out, const std::string& how) {
  SCOPED_TRACE(std::string(c.what) + ", " + how);
  EXPECT_EQ(out.reasoning, c.reasoning);
  EXPECT_EQ(out.content, c.content);
}

TEST(ReasoningParser, WholeTexts) {
  for (const Case& c : cases()) expect_output(c, parse_reasoning(c.text, c.opened_in_prompt), "at once");
}

TEST(ReasoningParser, SplitAtEveryBoundary) {
  for (const Case& c : cases()) {
    test::for_every_cut(
        c.text.size(), SIZE_MAX, [&](const std::vector<size_t>& cuts) { return streamed(c, cuts); },
        [&](const Output& out, const std::string& how) { expect_output(c, out, how); },
        [&](const Output& out) { return out.reasoning == c.reasoning && out.content == c.content; });
  }
}

// Text is released as soon as it cannot be a tag or whitespace that will be trimmed.
TEST(ReasoningParser, ReleasesEarly) {
  ReasoningParser parser(false);
  Output out;
  parser.push("\n<thi", out);
  EXPECT_EQ(out.reasoning, "");
  EXPECT_EQ(out.content, "");
  parser.push("nk>\nStep one", out);
  EXPECT_EQ(out.reasoning, "Step one");
  parser.push(".\n\n", out);  // trailing whitespace: held until something follows it
  EXPECT_EQ(out.reasoning, "Step one.");
  parser.push("Step two </", out);
  EXPECT_EQ(out.reasoning, "Step one.\n\nStep two");
  parser.push("think>\n\n", out);
  EXPECT_EQ(out.reasoning, "Step one.\n\nStep two");
  EXPECT_EQ(out.content, "");
  parser.push("The answer", out);
  EXPECT_EQ(out.content, "The answer");
  parser.flush(out);
  parser.push("more", out);  // after the end: nothing
  parser.flush(out);
  EXPECT_EQ(out.reasoning, "Step one.\n\nStep two");
  EXPECT_EQ(out.content, "The answer");

  ReasoningParser plain(false);
  Output answer;
  plain.push("Hel", answer);  // not <think>: content at once
  EXPECT_EQ(answer.content, "Hel");
  EXPECT_EQ(answer.reasoning, "");
}

TEST(ReasoningParser, PromptOpensReasoning) {
  EXPECT_TRUE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n"));
  EXPECT_TRUE(prompt_opens_reasoning("x<think>"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n"));
  EXPECT_FALSE(prompt_opens_reasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));  // enable_thinking false
  EXPECT_FALSE(prompt_opens_reasoning(""));
}

TEST(ReasoningParser, FormatNames) {
  EXPECT_EQ(parse_reasoning_format("qwen3"), ReasoningFormat::qwen3);
  EXPECT_EQ(parse_reasoning_format("deepseek_r1"), ReasoningFormat::deepseek_r1);
  EXPECT_EQ(parse_reasoning_format("granite"), std::nullopt);
  EXPECT_EQ(std::string(reasoning_format_name(ReasoningFormat::deepseek_r1)), "deepseek_r1");
}

// ---- the load-time check ----------------------------------------------------------------------------------

fs::path npm_model_dir(const std::string& family) { return test::tokenizer_json(family).parent_path(); }

std::string check_error(const ModelText& text) {
  try {
    check_reasoning_support(text, ReasoningFormat::qwen3);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(ReasoningSupport, RealAndMadeUpModels) {
  // Qwen3: <think> and </think> are in its vocabulary, not special.
  EXPECT_NO_THROW(check_reasoning_support(load_model_text(npm_model_dir("qwen3")), ReasoningFormat::qwen3));
  check_reasoning_support(load_model_text(npm_model_dir("llama3_1")), ReasoningFormat::none);  // off: no check
  const std::string llama = check_error(load_model_text(npm_model_dir("llama3_1")));
  EXPECT_NE(llama.find("--reasoning-parser qwen3: neither the vocabulary nor the chat template"), std::string::npos)
      << llama;
  {
    test::TempDir dir;  // the template writes the tags; the vocabulary has them as plain text
    const auto model = test::demo_model_with_template(dir, "{{ messages[0].content }}<think>\n\n</think>");
    EXPECT_EQ(check_error(load_model_text(model)), "");
  }
  {
    test::TempDir dir;  // special tokens would be dropped from the text
    const nlohmann::json added = nlohmann::json::parse(
        R"([{"id": 4096, "content": "<think>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true}])");
    const auto model = test::demo_model_with_template(dir, "{{ messages[0].content }}</think>", added);
    const std::string e = check_error(load_model_text(model));
    EXPECT_NE(e.find("marks <think> as a special token"), std::string::npos) << e;
  }
}

}  // namespace
}  // namespace adallm::text
