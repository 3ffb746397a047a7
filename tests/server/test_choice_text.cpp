// server/choice_text: one choice's token-to-text path driven by a fake token stream: canned model answers
// tokenized with the real Qwen3 tokenizer (<tool_call> is one added token there) and the demo model's (the
// tags are several byte-level tokens), fed one token at a time as the engine's events would bring them.
// Tool calls come out whole in the delta of the token that closes them, with fresh ids; content around
// them, stop strings, logprobs and finish reasons stay as without tools.
#include "server/choice_text.h"

#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "test_util.h"
#include "text/tokenizer.h"
#include "text/tokenizer_files.h"

namespace adallm::server {
namespace {

struct Answer {
  std::string content;
  std::string reasoning;
  std::vector<std::string> reasoning_deltas;
  std::vector<ToolCallDelta> calls;
  std::vector<size_t> call_after_token;  // the token whose push released each call
  std::vector<std::string> deltas;       // each delta's content
  std::vector<LogprobEntry> logprobs;
  std::string finish_reason;
};

// Feeds `ids` one by one, as the engine's events bring them, then ends the generation with `reason`
// unless a stop string ended it first.
Answer feed(const text::Tokenizer& tokenizer, const std::vector<int32_t>& ids, ChoiceText::Options options,
         const std::string& reason = "stop") {
  const bool logprobs = options.logprobs;
  ChoiceText choice(tokenizer, std::move(options));
  Answer run;
  const auto take = [&run](ChoiceDelta& d, size_t token) {
    run.content += d.text;
    run.deltas.push_back(d.text);
    run.reasoning += d.reasoning;
    run.reasoning_deltas.push_back(d.reasoning);
    // Reasoning never comes after content (within a delta, the reasoning is the earlier text).
    if (!d.reasoning.empty()) EXPECT_EQ(run.content.size(), d.text.size()) << "reasoning after content";
    for (ToolCallDelta& c : d.tool_calls) {
      run.calls.push_back(std::move(c));
      run.call_after_token.push_back(token);
    }
    run.logprobs.insert(run.logprobs.end(), d.logprobs.begin(), d.logprobs.end());
  };
  for (size_t k = 0; k < ids.size(); ++k) {
    const TokenLogprobs lp{-0.5f, {{ids[k], -0.5f}}};
    ChoiceDelta d;
    choice.push(ids[k], logprobs ? &lp : nullptr, d);
    take(d, k);
    if (choice.stopped()) break;
  }
  ChoiceDelta last;
  choice.finish(last);
  take(last, ids.size());
  run.finish_reason = choice.finish_reason(choice.stopped() ? "stop" : reason);
  return run;
}

const std::string kCall = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"東京\"}}\n</tool_call>";
const std::string kCall2 = "<tool_call>\n{\"name\":\"get_time\",\"arguments\":{\"tz\":\"Asia/Tokyo\"}}\n</tool_call>";

struct Tokenizers {
  const text::Tokenizer* qwen3 = test::load_family("qwen3");
  std::unique_ptr<text::Tokenizer> demo = text::Tokenizer::load(test::demo_model_dir() / "nvfp4" / "tokenizer.json");
  std::vector<std::pair<const char*, const text::Tokenizer*>> all() const {
    return {{"qwen3", qwen3}, {"demo", demo.get()}};
  }
};

ChoiceText::Options hermes() { return {{}, false, "", text::ToolCallFormat::hermes}; }

TEST(ChoiceText, ToolCallsFromAFakeTokenStream) {
  const Tokenizers t;
  ASSERT_NE(t.qwen3, nullptr);
  const std::string answer = "<think>\n\n</think>\n\n" + kCall + "\n" + kCall2 + "<|im_end|>";
  const auto open_id = t.qwen3->token_to_id("<tool_call>");
  ASSERT_TRUE(open_id.has_value());
  const std::vector<int32_t> qwen_ids = t.qwen3->encode(answer, false);
  EXPECT_NE(std::find(qwen_ids.begin(), qwen_ids.end(), *open_id), qwen_ids.end());  // one token there
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    const std::vector<int32_t> ids = tokenizer->encode(answer, false);
    const Answer run = feed(*tokenizer, ids, hermes());
    EXPECT_EQ(run.content, "<think>\n\n</think>\n\n");
    ASSERT_EQ(run.calls.size(), 2u);
    EXPECT_EQ(run.calls[0].index, 0);
    EXPECT_EQ(run.calls[1].index, 1);
    EXPECT_EQ(run.calls[0].call.name, "get_weather");
    EXPECT_EQ(run.calls[0].call.arguments, "{\"city\": \"東京\"}");
    EXPECT_EQ(run.calls[1].call.name, "get_time");
    EXPECT_EQ(run.calls[1].call.arguments, "{\"tz\": \"Asia/Tokyo\"}");  // written as Python's json.dumps
    const std::regex id("call_[0-9a-f]{24}");
    EXPECT_TRUE(std::regex_match(run.calls[0].id, id)) << run.calls[0].id;
    EXPECT_NE(run.calls[0].id, run.calls[1].id);
    // Each call comes out with the token that closes it, not at the end.
    EXPECT_LT(run.call_after_token[1], ids.size());
    const auto prefix = [&](size_t n) {
      return tokenizer->decode(std::vector<int32_t>(ids.begin(), ids.begin() + static_cast<ptrdiff_t>(n)));
    };
    EXPECT_NE(prefix(run.call_after_token[0] + 1).find(kCall), std::string::npos);
    EXPECT_EQ(prefix(run.call_after_token[0]).find("</tool_call>"), std::string::npos);
    for (const std::string& d : run.deltas) EXPECT_EQ(d.find("<tool"), std::string::npos) << d;
    EXPECT_EQ(run.finish_reason, "tool_calls");
  }
}

TEST(ChoiceText, IdsDifferAcrossAnswers) {
  const Tokenizers t;
  std::set<std::string> ids;
  for (int i = 0; i < 20; ++i) ids.insert(feed(*t.demo, t.demo->encode(kCall, false), hermes()).calls.at(0).id);
  EXPECT_EQ(ids.size(), 20u);
}

TEST(ChoiceText, TextThatIsNoCall) {
  const Tokenizers t;
  const std::string bad = "I would call <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": }\n</tool_call>";
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    for (const std::string& text : {std::string("def f(x):\n    return x < 3  # <tool_"), bad}) {
      const Answer run = feed(*tokenizer, tokenizer->encode(text, false), hermes());
      EXPECT_EQ(run.content, text);
      EXPECT_TRUE(run.calls.empty());
      EXPECT_EQ(run.finish_reason, "stop");
    }
    // Without tool parsing (no tools, or tool_choice "none") calls are plain text.
    const Answer plain = feed(*tokenizer, tokenizer->encode(kCall, false), {});
    EXPECT_EQ(plain.content, kCall);
    EXPECT_TRUE(plain.calls.empty());
    EXPECT_EQ(plain.finish_reason, "stop");
  }
}

TEST(ChoiceText, StopStringsComeFirst) {
  const Tokenizers t;
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    ChoiceText::Options options = hermes();
    options.stop = {"Let me"};
    const Answer before = feed(*tokenizer, tokenizer->encode("Sure. Let me check " + kCall, false), options);
    EXPECT_EQ(before.content, "Sure. ");
    EXPECT_TRUE(before.calls.empty());
    EXPECT_EQ(before.finish_reason, "stop");
    // A stop string inside a call cuts it: what is left does not parse, and stays content.
    options.stop = {"東京"};
    const Answer inside = feed(*tokenizer, tokenizer->encode(kCall, false), options);
    EXPECT_EQ(inside.content, kCall.substr(0, kCall.find("東京")));
    EXPECT_TRUE(inside.calls.empty());
    // After a call, a stop string ends the answer with the call made.
    options.stop = {"\nDone"};
    const Answer after = feed(*tokenizer, tokenizer->encode(kCall + "\nDone. " + kCall2, false), options);
    ASSERT_EQ(after.calls.size(), 1u);
    EXPECT_EQ(after.finish_reason, "tool_calls");
  }
}

TEST(ChoiceText, LengthAndUnclosedCalls) {
  const Tokenizers t;
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    // max_tokens right after a call: the call stands.
    EXPECT_EQ(feed(*tokenizer, tokenizer->encode(kCall, false), hermes(), "length").finish_reason, "tool_calls");
    // max_tokens inside a call: it is text, and the answer says length.
    const std::string cut = kCall.substr(0, 30);
    const Answer run = feed(*tokenizer, tokenizer->encode(cut, false), hermes(), "length");
    EXPECT_EQ(run.content, cut);
    EXPECT_TRUE(run.calls.empty());
    EXPECT_EQ(run.finish_reason, "length");
    // A model that ends without the closing tag: the call is read at the end.
    const std::string unclosed = kCall.substr(0, kCall.find("</tool_call>"));
    const Answer end = feed(*tokenizer, tokenizer->encode(unclosed, false), hermes());
    ASSERT_EQ(end.calls.size(), 1u);
    EXPECT_EQ(end.call_after_token[0], tokenizer->encode(unclosed, false).size());  // with finish()
    EXPECT_EQ(end.content, "");
  }
}

TEST(ChoiceText, LogprobsCoverEveryTokenWithCalls) {
  const Tokenizers t;
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    ChoiceText::Options options = hermes();
    options.logprobs = true;
    // ASCII: a token that is part of a character reads U+FFFD in logprobs (docs/http-api.md).
    const std::string text = "Checking. " + kCall2 + "<|im_end|>";
    const std::vector<int32_t> ids = tokenizer->encode(text, false);
    const Answer run = feed(*tokenizer, ids, options);
    ASSERT_EQ(run.logprobs.size(), ids.size());
    std::string joined;
    for (size_t k = 0; k < ids.size(); ++k) {
      EXPECT_FLOAT_EQ(run.logprobs[k].logprob, -0.5f);
      joined += run.logprobs[k].token;
    }
    EXPECT_EQ(joined, tokenizer->decode(ids, true));  // the call's tokens included
    EXPECT_EQ(run.content, "Checking. ");
    EXPECT_EQ(run.calls.size(), 1u);
  }
}

}  // namespace
}  // namespace adallm::server

namespace adallm::server {
namespace {

ChoiceText::Options reasoning(text::ToolCallFormat tools = text::ToolCallFormat::none, bool opened = false) {
  ChoiceText::Options o;
  o.tool_calls = tools;
  o.reasoning = true;
  o.reasoning_opened = opened;
  return o;
}

// Qwen3's <think> and </think> are single added tokens; the demo model spells them in bytes: either way
// the tags never reach a delta, the reasoning comes out as it is generated, then the answer.
TEST(ChoiceText, ReasoningThenTheAnswer) {
  const Tokenizers t;
  ASSERT_NE(t.qwen3, nullptr);
  const std::string answer = "<think>\nThe user wants 2+2. That is 4.\n</think>\n\nThe answer is 4.";
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    const std::vector<int32_t> ids = tokenizer->encode(answer, false);
    const Answer run = feed(*tokenizer, ids, reasoning());
    EXPECT_EQ(run.reasoning, "The user wants 2+2. That is 4.");
    EXPECT_EQ(run.content, "The answer is 4.");
    EXPECT_EQ(run.finish_reason, "stop");
    size_t with_reasoning = 0;
    for (size_t k = 0; k < run.deltas.size(); ++k) {
      EXPECT_EQ(run.deltas[k].find("think>"), std::string::npos) << run.deltas[k];
      EXPECT_EQ(run.reasoning_deltas[k].find("think>"), std::string::npos) << run.reasoning_deltas[k];
      with_reasoning += !run.reasoning_deltas[k].empty();
    }
    EXPECT_GT(with_reasoning, 1u);  // streamed as generated, not at the end
    // Without the parser: all of it is content, as before.
    const Answer plain = feed(*tokenizer, ids, {});
    EXPECT_EQ(plain.content, answer);
    EXPECT_EQ(plain.reasoning, "");
  }
}

TEST(ChoiceText, ToolCallsAfterTheReasoning) {
  const Tokenizers t;
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    const Answer run = feed(*tokenizer, tokenizer->encode("<think>\nI need the weather.\n</think>\n\n" + kCall, false),
                            reasoning(text::ToolCallFormat::hermes));
    EXPECT_EQ(run.reasoning, "I need the weather.");
    EXPECT_EQ(run.content, "");
    ASSERT_EQ(run.calls.size(), 1u);
    EXPECT_EQ(run.calls[0].call.name, "get_weather");
    EXPECT_EQ(run.finish_reason, "tool_calls");
    // A call written inside the reasoning is thinking, not a call: the tool parser sees the answer only.
    const Answer thought = feed(*tokenizer, tokenizer->encode("<think>" + kCall + "</think>No call.", false),
                                reasoning(text::ToolCallFormat::hermes));
    EXPECT_EQ(thought.reasoning, kCall);
    EXPECT_EQ(thought.content, "No call.");
    EXPECT_TRUE(thought.calls.empty());
    EXPECT_EQ(thought.finish_reason, "stop");
  }
}

// max_tokens inside the reasoning: all of it is reasoning, no content; a stop string inside it cuts it.
TEST(ChoiceText, ReasoningCutShort) {
  const Tokenizers t;
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    const std::vector<int32_t> ids = tokenizer->encode("<think>\nStep one, step two </thi", false);
    const Answer cut = feed(*tokenizer, ids, reasoning(), "length");
    EXPECT_EQ(cut.reasoning, "Step one, step two </thi");
    EXPECT_EQ(cut.content, "");
    EXPECT_EQ(cut.finish_reason, "length");
    ChoiceText::Options stop = reasoning();
    stop.stop = {"step two"};
    const Answer stopped = feed(*tokenizer, ids, stop, "length");
    EXPECT_EQ(stopped.reasoning, "Step one,");
    EXPECT_EQ(stopped.content, "");
    EXPECT_EQ(stopped.finish_reason, "stop");
    // Opened in the prompt: the output starts inside the reasoning.
    const Answer opened = feed(*tokenizer, tokenizer->encode("Two and two.\n</think>\n\nFour.", false),
                               reasoning(text::ToolCallFormat::none, true));
    EXPECT_EQ(opened.reasoning, "Two and two.");
    EXPECT_EQ(opened.content, "Four.");
  }
}

// Every generated token has its logprobs entry, the reasoning's and the tags' included, in order.
TEST(ChoiceText, LogprobsCoverTheReasoning) {
  const Tokenizers t;
  for (const auto& [name, tokenizer] : t.all()) {
    SCOPED_TRACE(name);
    // ASCII: a token that is part of a character reads U+FFFD in logprobs.
    const std::vector<int32_t> ids = tokenizer->encode("<think>\nHmm.\n</think>\n\n" + kCall2, false);
    ChoiceText::Options o = reasoning(text::ToolCallFormat::hermes);
    o.logprobs = true;
    const Answer run = feed(*tokenizer, ids, o);
    ASSERT_EQ(run.logprobs.size(), ids.size());
    std::string joined;
    for (const LogprobEntry& e : run.logprobs) joined += e.token;
    EXPECT_EQ(joined, tokenizer->decode(ids, true));
  }
}

// Llama 3.1's JSON calls, with its tokenizer (<|python_tag|> and <|eot_id|> are special: dropped).
TEST(ChoiceText, Llama3JsonToolCalls) {
  const text::Tokenizer* llama = test::load_family("llama3_1");
  ASSERT_NE(llama, nullptr);
  ChoiceText::Options o;
  o.tool_calls = text::ToolCallFormat::llama3_json;
  const std::string call = R"({"name": "get_weather", "parameters": {"city": "東京"}})";
  for (const std::string& prefix : {std::string(), std::string("<|python_tag|>")}) {
    const Answer run = feed(*llama, llama->encode(prefix + call + "; " + call + "<|eot_id|>", false), o);
    EXPECT_EQ(run.content, "");
    ASSERT_EQ(run.calls.size(), 2u);
    EXPECT_EQ(run.calls[0].call.name, "get_weather");
    EXPECT_EQ(run.calls[1].call.arguments, R"({"city": "東京"})");
    EXPECT_EQ(run.calls[1].index, 1);
    EXPECT_EQ(run.finish_reason, "tool_calls");
  }
  const Answer text = feed(*llama, llama->encode("It is sunny {really}.", false), o);
  EXPECT_EQ(text.content, "It is sunny {really}.");
  EXPECT_TRUE(text.calls.empty());
  EXPECT_EQ(text.finish_reason, "stop");
}

}  // namespace
}  // namespace adallm::server
