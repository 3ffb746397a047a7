// The logprobs JSON of the OpenAI responses: chat's content entries with bytes and top_logprobs, the legacy
// completions arrays, and where they sit in a whole answer and in a stream chunk ("logprobs": null when a
// request did not ask for them); tool calls in a whole answer and in their stream chunks; reasoning_content
// in a whole answer and in its chunks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/openai_response.h"

namespace adallm::server {
namespace {

using json = nlohmann::ordered_json;

std::vector<LogprobEntry> sample_entries() {
  LogprobEntry a{"Hi", -0.25f, {{"Hi", -0.25f, "Hi"}, {"Hello", -1.5f, "Hello"}}, 0, "Hi"};
  LogprobEntry b{" \xC3\xA9t\xC3\xA9", -2.0f, {{" \xC3\xA9t\xC3\xA9", -0.5f, " \xC3\xA9t\xC3\xA9"},
                                                  {" \xC3\xA9t\xC3\xA9", -0.75f, " \xC3\xA9t\xC3\xA9"}}, 2,
                 " \xC3\xA9t\xC3\xA9"};
  return {a, b};
}

ResponseMeta meta(Endpoint e) { return {e, "id-1", 123, "demo"}; }

TEST(OpenAIResponse, ChatLogprobsShape) {
  const json j = logprobs_json(Endpoint::chat, sample_entries());
  EXPECT_EQ(j.dump(),
            R"({"content":[)"
            R"({"token":"Hi","logprob":-0.25,"bytes":[72,105],"top_logprobs":[)"
            R"({"token":"Hi","logprob":-0.25,"bytes":[72,105]},{"token":"Hello","logprob":-1.5,"bytes":[72,101,108,108,111]}]},)"
            R"({"token":" été","logprob":-2.0,"bytes":[32,195,169,116,195,169],"top_logprobs":[)"
            R"({"token":" été","logprob":-0.5,"bytes":[32,195,169,116,195,169]},)"
            R"({"token":" été","logprob":-0.75,"bytes":[32,195,169,116,195,169]}]}],"refusal":null})");
  EXPECT_EQ(logprobs_json(Endpoint::chat, {}).dump(), R"({"content":[],"refusal":null})");
}

TEST(OpenAIResponse, ChatLogprobBytesAreTheTokensRawBytes) {
  // A token holding the first byte of "é" reads U+FFFD; its bytes are that one byte, as OpenAI gives them.
  const LogprobEntry e{"\xEF\xBF\xBD", -1.0f, {}, 0, "\xC3"};
  EXPECT_EQ(logprobs_json(Endpoint::chat, {e}).dump(),
            R"({"content":[{"token":")" "\xEF\xBF\xBD" R"(","logprob":-1.0,"bytes":[195],"top_logprobs":[]}],"refusal":null})");
}

TEST(OpenAIResponse, CompletionLogprobsShape) {
  const json j = logprobs_json(Endpoint::completions, sample_entries());
  // Two alternatives with the same text: the object keeps the first, the more likely.
  EXPECT_EQ(j.dump(), R"({"tokens":["Hi"," été"],"token_logprobs":[-0.25,-2.0],)"
                      R"("top_logprobs":[{"Hi":-0.25,"Hello":-1.5},{" été":-0.5}],"text_offset":[0,2]})");
  LogprobEntry zero{"x", -1.0f, {}, 7};  // logprobs 0: no alternatives
  EXPECT_EQ(logprobs_json(Endpoint::completions, {zero}).dump(),
            R"({"tokens":["x"],"token_logprobs":[-1.0],"top_logprobs":[{}],"text_offset":[7]})");
}

TEST(OpenAIResponse, WholeAnswerCarriesLogprobsOnlyWhenAsked) {
  const std::vector<std::vector<LogprobEntry>> entries = {sample_entries()};
  const json without = response_json(meta(Endpoint::chat), {"Hi été"}, {"stop"}, {});
  EXPECT_TRUE(without["choices"][0]["logprobs"].is_null());
  const json with = response_json(meta(Endpoint::chat), {"Hi été"}, {"stop"}, {}, &entries);
  EXPECT_EQ(with["choices"][0]["logprobs"], logprobs_json(Endpoint::chat, entries[0]));
  EXPECT_EQ(with["choices"][0]["message"]["content"], "Hi été");
  const json completion = response_json(meta(Endpoint::completions), {"Hi été"}, {"length"}, {}, &entries);
  EXPECT_EQ(completion["choices"][0]["logprobs"]["tokens"], json::array({"Hi", " été"}));
  EXPECT_EQ(completion["choices"][0]["logprobs"]["text_offset"], json::array({0, 2}));
}

TEST(OpenAIResponse, ChunkCarriesItsTokensLogprobs) {
  const std::vector<LogprobEntry> entries = sample_entries();
  const json chunk = chunk_json(meta(Endpoint::chat), 1, "Hi été", "", false, false, &entries);
  EXPECT_EQ(chunk["choices"][0]["index"], 1);
  EXPECT_EQ(chunk["choices"][0]["delta"]["content"], "Hi été");
  ASSERT_EQ(chunk["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_EQ(chunk["choices"][0]["logprobs"]["content"][1]["token"], " été");
  // A chunk of entries whose text came earlier (special tokens read ""): an empty delta with its logprobs.
  const std::vector<LogprobEntry> eos = {{"", -0.125f, {}, 6}};
  const json tail = chunk_json(meta(Endpoint::chat), 0, "", "", false, false, &eos);
  EXPECT_EQ(tail["choices"][0]["delta"], json::object());
  EXPECT_EQ(tail["choices"][0]["logprobs"]["content"][0]["bytes"], json::array());
  EXPECT_TRUE(chunk_json(meta(Endpoint::chat), 0, "x", "", false, false)["choices"][0]["logprobs"].is_null());
  const json text = chunk_json(meta(Endpoint::completions), 0, "Hi", "", false, true, &entries);
  EXPECT_EQ(text["choices"][0]["logprobs"]["token_logprobs"], json::array({-0.25, -2.0}));
  EXPECT_TRUE(text["usage"].is_null());
}

TEST(OpenAIResponse, ToolCallsInTheWholeAnswer) {
  const std::vector<std::vector<ToolCallDelta>> calls = {
      {{0, "call_a", {"get_weather", R"({"city": "Paris"})"}}, {1, "call_b", {"get_time", "{}"}}},
      {{0, "call_c", {"get_time", "{}"}}},
      {}};
  const json j = response_json(meta(Endpoint::chat), {"", "Let me check.", "Hi"}, {"tool_calls", "tool_calls", "stop"},
                               {}, nullptr, &calls);
  EXPECT_EQ(j["choices"][0]["message"].dump(),
            R"({"role":"assistant","content":null,"tool_calls":[)"
            R"({"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\": \"Paris\"}"}},)"
            R"({"id":"call_b","type":"function","function":{"name":"get_time","arguments":"{}"}}]})");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(j["choices"][1]["message"]["content"], "Let me check.");  // content before the calls is kept
  EXPECT_EQ(j["choices"][1]["message"]["tool_calls"][0]["id"], "call_c");
  EXPECT_EQ(j["choices"][2]["message"].dump(), R"({"role":"assistant","content":"Hi"})");
}

TEST(OpenAIResponse, ToolCallChunk) {
  const ToolCallDelta call{1, "call_b", {"get_time", R"({"tz": "UTC"})"}};
  EXPECT_EQ(tool_call_chunk_json(meta(Endpoint::chat), 2, call, true).dump(),
            R"({"id":"id-1","object":"chat.completion.chunk","created":123,"model":"demo","choices":[{"index":2,)"
            R"("delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"get_time",)"
            R"("arguments":"{\"tz\": \"UTC\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null})");
}

TEST(OpenAIResponse, ReasoningInTheWholeAnswer) {
  const std::vector<std::vector<ToolCallDelta>> calls = {{}, {{0, "call_a", {"get_time", "{}"}}}, {}, {}};
  const std::vector<std::string> reasoning = {"I think.", "Need the time.", "", "Cut sho"};
  const json j = response_json(meta(Endpoint::chat), {"Four.", "", "Hi", ""}, {"stop", "tool_calls", "stop", "length"},
                               {}, nullptr, &calls, &reasoning);
  EXPECT_EQ(j["choices"][0]["message"].dump(),
            R"({"role":"assistant","content":"Four.","reasoning_content":"I think."})");
  EXPECT_EQ(j["choices"][1]["message"].dump(),
            R"({"role":"assistant","content":null,"reasoning_content":"Need the time.","tool_calls":[)"
            R"({"id":"call_a","type":"function","function":{"name":"get_time","arguments":"{}"}}]})");
  EXPECT_EQ(j["choices"][2]["message"].dump(), R"({"role":"assistant","content":"Hi","reasoning_content":null})");
  // max_tokens inside the reasoning: no content at all.
  EXPECT_EQ(j["choices"][3]["message"].dump(), R"({"role":"assistant","content":null,"reasoning_content":"Cut sho"})");
  EXPECT_EQ(j["choices"][3]["finish_reason"], "length");
  // Without a reasoning parser the message has no reasoning_content.
  const json plain = response_json(meta(Endpoint::chat), {""}, {"stop"}, {}, nullptr, nullptr);
  EXPECT_EQ(plain["choices"][0]["message"].dump(), R"({"role":"assistant","content":""})");
}

TEST(OpenAIResponse, ReasoningChunk) {
  EXPECT_EQ(reasoning_chunk_json(meta(Endpoint::chat), 1, "Hmm", false).dump(),
            R"({"id":"id-1","object":"chat.completion.chunk","created":123,"model":"demo","choices":[{"index":1,)"
            R"("delta":{"reasoning_content":"Hmm"},"logprobs":null,"finish_reason":null}]})");
  const std::vector<LogprobEntry> entries = sample_entries();
  const json with = reasoning_chunk_json(meta(Endpoint::chat), 0, "Hmm", true, &entries);
  EXPECT_EQ(with["choices"][0]["logprobs"]["content"].size(), 2u);
  EXPECT_TRUE(with["usage"].is_null());
}

}  // namespace
}  // namespace adallm::server
