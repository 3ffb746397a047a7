// Forced tool calls: the grammar takes exactly Hermes calls of the allowed tools with arguments valid
// under their parameters, one call for a named function, one or more for "required" (one without
// parallel_tool_calls).
#include <gtest/gtest.h>

#include <string>

#include "server/tool_call_grammar.h"
#include "structured/matcher.h"

namespace adallm::server {
namespace {

using json = nlohmann::ordered_json;

const json kTools = json::parse(R"([
  {"type":"function","function":{"name":"get_weather","parameters":{"type":"object",
    "properties":{"city":{"type":"string"}},"required":["city"],"additionalProperties":false}}},
  {"type":"function","function":{"name":"now"}}])");

bool complete(const std::shared_ptr<const structured::Grammar>& g, const std::string& text) {
  structured::Matcher m(g);
  return m.advance(text) && m.complete();
}

TEST(ToolCallGrammar, HermesCallsOfTheAllowedToolsOnly) {
  const std::string weather = "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>";
  const std::string now = "<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n</tool_call>";
  const auto required = tool_call_grammar(kTools, "", true);
  EXPECT_TRUE(complete(required, weather));
  EXPECT_TRUE(complete(required, now));
  EXPECT_TRUE(complete(required, weather + "\n" + now));
  EXPECT_FALSE(complete(required, ""));
  EXPECT_FALSE(complete(required, "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(complete(required, "<tool_call>\n{\"name\": \"other\", \"arguments\": {}}\n</tool_call>"));
  EXPECT_FALSE(complete(tool_call_grammar(kTools, "", false), weather + "\n" + now));
  const auto named = tool_call_grammar(kTools, "now", true);
  EXPECT_TRUE(complete(named, now));
  EXPECT_FALSE(complete(named, weather));
  EXPECT_FALSE(complete(named, now + "\n" + now));
  structured::Matcher m(named);
  ASSERT_TRUE(m.advance(now));
  EXPECT_FALSE(m.can_continue());  // the request stops at the closing tag
}

// Llama 3 JSON: {"name": ..., "parameters": ...}, several separated by "; " (what vLLM's llama3_json reads).
TEST(ToolCallGrammar, Llama3JsonCalls) {
  const auto llama3 = text::ToolCallFormat::llama3_json;
  const std::string weather = R"({"name": "get_weather", "parameters": {"city": "Paris"}})";
  const std::string now = R"({"name": "now", "parameters": {}})";
  const auto required = tool_call_grammar(kTools, "", true, llama3);
  EXPECT_TRUE(complete(required, weather));
  EXPECT_TRUE(complete(required, now));
  EXPECT_TRUE(complete(required, weather + "; " + now));
  EXPECT_FALSE(complete(required, weather + "\n" + now));
  EXPECT_FALSE(complete(required, R"({"name": "get_weather", "arguments": {"city": "Paris"}})"));
  EXPECT_FALSE(complete(required, R"({"name": "get_weather", "parameters": {}})"));
  EXPECT_FALSE(complete(required, "<tool_call>\n" + now + "\n</tool_call>"));
  EXPECT_FALSE(complete(tool_call_grammar(kTools, "", false, llama3), weather + "; " + now));
  const auto named = tool_call_grammar(kTools, "get_weather", true, llama3);
  EXPECT_TRUE(complete(named, weather));
  EXPECT_FALSE(complete(named, now));
  structured::Matcher m(named);
  ASSERT_TRUE(m.advance(weather));
  EXPECT_FALSE(m.can_continue());
}

}  // namespace
}  // namespace adallm::server
