// The OpenAI request layer: valid bodies become the typed requests field for field, and each bad body of
// a long table is a 400 whose param and message name the offending field (wrong types, out-of-range
// values, unknown and not-yet-supported fields, malformed JSON). Accepted-and-ignored fields pass.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/openai_request.h"
#include "structured/matcher.h"

namespace adallm::server {
namespace {

const std::string kMsg = R"("messages":[{"role":"user","content":"hi"}])";

TEST(OpenAIRequest, ChatFieldsParse) {
  const ChatRequest r = parse_chat_request(
      R"({"model":"m","messages":[{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}],"name":"u"}],)"
      R"("max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,"presence_penalty":-1,)"
      R"("frequency_penalty":1.5,"repetition_penalty":1.1,"seed":-3,"n":3,"stop":["x","yz"],"stream":true,)"
      R"("stream_options":{"include_usage":true},"ignore_eos":true,"chat_template_kwargs":{"enable_thinking":false},)"
      R"("user":"someone","logprobs":false,"tools":[],"tool_choice":"none","response_format":{"type":"text"},)"
      R"("logit_bias":{},"top_k":40})");
  EXPECT_EQ(r.model.value(), "m");
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "be brief");
  EXPECT_EQ(r.messages[1].content, "a\nb");
  EXPECT_EQ(r.max_tokens.value(), 7);
  EXPECT_FLOAT_EQ(r.sampling.temperature.value(), 0.5f);
  EXPECT_FLOAT_EQ(r.sampling.top_p.value(), 0.9f);
  EXPECT_EQ(r.sampling.top_k.value(), 40);
  EXPECT_FLOAT_EQ(r.sampling.min_p.value(), 0.05f);
  EXPECT_FLOAT_EQ(r.sampling.presence_penalty.value(), -1.0f);
  EXPECT_FLOAT_EQ(r.sampling.frequency_penalty.value(), 1.5f);
  EXPECT_FLOAT_EQ(r.sampling.repetition_penalty.value(), 1.1f);
  EXPECT_EQ(r.sampling.seed.value(), -3);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"x", "yz"}));
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_EQ(r.chat_template_kwargs.dump(), R"({"enable_thinking":false})");
}

TEST(OpenAIRequest, ChatDefaultsAndNulls) {
  const ChatRequest r = parse_chat_request("{" + kMsg + R"(,"temperature":null,"stop":null,"max_tokens":null})");
  EXPECT_FALSE(r.model);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_FALSE(r.sampling.temperature);
  EXPECT_FALSE(r.sampling.seed);
  EXPECT_EQ(r.n, 1);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_TRUE(r.chat_template_kwargs.empty());
}

TEST(OpenAIRequest, MaxCompletionTokens) {
  EXPECT_EQ(parse_chat_request("{" + kMsg + R"(,"max_completion_tokens":9})").max_tokens.value(), 9);
  EXPECT_EQ(parse_chat_request("{" + kMsg + R"(,"max_completion_tokens":9,"max_tokens":9})").max_tokens.value(), 9);
}

TEST(OpenAIRequest, CompletionPromptForms) {
  auto prompts = [](const std::string& prompt) { return parse_completion_request(R"({"prompt":)" + prompt + "}").prompts; };
  auto p = prompts(R"("hello")");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_FALSE(p[0].is_tokens);
  EXPECT_EQ(p[0].text, "hello");
  p = prompts(R"(["a","b"])");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].text, "b");
  p = prompts("[1,2,3]");
  ASSERT_EQ(p.size(), 1u);
  EXPECT_TRUE(p[0].is_tokens);
  EXPECT_EQ(p[0].tokens, (std::vector<int32_t>{1, 2, 3}));
  p = prompts("[[1],[4,5]]");
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[1].tokens, (std::vector<int32_t>{4, 5}));
  const CompletionRequest r = parse_completion_request(R"({"prompt":"x","echo":true,"max_tokens":0,"best_of":2,"n":2,"suffix":""})");
  EXPECT_TRUE(r.echo);
  EXPECT_EQ(r.max_tokens.value(), 0);
  EXPECT_EQ(r.n, 2);
}

TEST(OpenAIRequest, ChatLogprobs) {
  EXPECT_FALSE(parse_chat_request("{" + kMsg + "}").logprobs);
  EXPECT_FALSE(parse_chat_request("{" + kMsg + R"(,"logprobs":false})").logprobs);
  EXPECT_FALSE(parse_chat_request("{" + kMsg + R"(,"logprobs":null,"top_logprobs":null})").logprobs);
  EXPECT_EQ(parse_chat_request("{" + kMsg + R"(,"logprobs":true})").logprobs, 0);
  EXPECT_EQ(parse_chat_request("{" + kMsg + R"(,"logprobs":true,"top_logprobs":0})").logprobs, 0);
  EXPECT_EQ(parse_chat_request("{" + kMsg + R"(,"top_logprobs":3,"logprobs":true})").logprobs, 3);
  EXPECT_EQ(parse_chat_request("{" + kMsg + R"(,"logprobs":true,"top_logprobs":20,"stream":true})").logprobs, 20);
}

TEST(OpenAIRequest, CompletionLogprobs) {
  EXPECT_FALSE(parse_completion_request(R"({"prompt":"x"})").logprobs);
  EXPECT_FALSE(parse_completion_request(R"({"prompt":"x","logprobs":null,"echo":true})").logprobs);
  EXPECT_EQ(parse_completion_request(R"({"prompt":"x","logprobs":0})").logprobs, 0);
  EXPECT_EQ(parse_completion_request(R"({"prompt":"x","logprobs":5,"echo":false})").logprobs, 5);
  EXPECT_EQ(parse_completion_request(R"({"prompt":"x","logprobs":20})").logprobs, 20);  // past OpenAI's 5, as vLLM
  try {
    parse_completion_request(R"({"prompt":"x","echo":true,"logprobs":1})");
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_NE(e.message().find("echo"), std::string::npos) << e.message();
    EXPECT_NE(e.message().find("prompt"), std::string::npos) << e.message();
  }
}

struct Bad {
  const char* body;
  const char* param;  // expected param ("" = null) and a substring of the message
};

void expect_bad(bool chat, const Bad& b) {
  SCOPED_TRACE(b.body);
  try {
    if (chat) {
      parse_chat_request(b.body);
    } else {
      parse_completion_request(b.body);
    }
    ADD_FAILURE() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_EQ(e.param(), b.param);
    if (*b.param) {
      EXPECT_EQ(e.message().rfind(std::string(b.param) + ":", 0), 0u) << e.message();
    }
    EXPECT_EQ(e.type(), "invalid_request_error");
    const auto body = e.body();
    EXPECT_TRUE(body["error"].contains("message") && body["error"].contains("code"));
  }
}

TEST(OpenAIRequest, BadChatRequestsNameTheField) {
  const std::vector<Bad> cases = {
      {R"({"messages":[{"role":"user","content":"hi"}],)", ""},  // malformed JSON
      {"[]", ""},
      {"\"just a string\"", ""},
      {"{}", "messages"},
      {R"({"messages":[]})", "messages"},
      {R"({"messages":"hi"})", "messages"},
      {R"({"messages":[3]})", "messages[0]"},
      {R"({"messages":[{"content":"hi"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user"}]})", "messages[0].content"},
      {R"({"messages":[{"role":"wizard","content":"hi"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"function","content":"hi"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":null}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":[{"text":"a"}]}]})", "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content[0].text"},
      {R"({"messages":[{"role":"user","content":[{"type":"text","text":"a","x":1}]}]})",
       "messages[0].content[0].x"},
      {R"({"messages":[{"role":"user","content":"hi","mood":"happy"}]})", "messages[0].mood"},
      {R"({"messages":[{"role":"user","content":"hi"}],"model":3})", "model"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":-1})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":0})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":1.5})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":"10"})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_tokens":99999999999999999999})", "max_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":-2})", "max_completion_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"max_completion_tokens":3,"max_tokens":4})",
       "max_completion_tokens"},
      {R"({"messages":[{"role":"user","content":"hi"}],"temperature":-0.1})", "temperature"},
      {R"({"messages":[{"role":"user","content":"hi"}],"temperature":2.5})", "temperature"},
      {R"({"messages":[{"role":"user","content":"hi"}],"temperature":"hot"})", "temperature"},
      {R"({"messages":[{"role":"user","content":"hi"}],"temperature":true})", "temperature"},
      {R"({"messages":[{"role":"user","content":"hi"}],"temperature":1e400})", ""},  // JSON number overflow
      {R"({"messages":[{"role":"user","content":"hi"}],"top_p":0})", "top_p"},
      {R"({"messages":[{"role":"user","content":"hi"}],"top_p":1.01})", "top_p"},
      {R"({"messages":[{"role":"user","content":"hi"}],"top_k":-2})", "top_k"},
      {R"({"messages":[{"role":"user","content":"hi"}],"top_k":2.5})", "top_k"},
      {R"({"messages":[{"role":"user","content":"hi"}],"min_p":1.5})", "min_p"},
      {R"({"messages":[{"role":"user","content":"hi"}],"presence_penalty":3})", "presence_penalty"},
      {R"({"messages":[{"role":"user","content":"hi"}],"frequency_penalty":-2.5})", "frequency_penalty"},
      {R"({"messages":[{"role":"user","content":"hi"}],"repetition_penalty":0})", "repetition_penalty"},
      {R"({"messages":[{"role":"user","content":"hi"}],"seed":"42"})", "seed"},
      {R"({"messages":[{"role":"user","content":"hi"}],"seed":1.5})", "seed"},
      {R"({"messages":[{"role":"user","content":"hi"}],"n":0})", "n"},
      {R"({"messages":[{"role":"user","content":"hi"}],"n":1000})", "n"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stop":5})", "stop"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stop":[""]})", "stop[0]"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stop":["a",7]})", "stop[1]"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stop":""})", "stop"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"]})",
       "stop"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stream":"yes"})", "stream"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stream_options":{"include_usage":true}})", "stream_options"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":1}})",
       "stream_options.include_usage"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"continuous":true}})",
       "stream_options.continuous"},
      {R"({"messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":[]})", "stream_options"},
      {R"({"messages":[{"role":"user","content":"hi"}],"ignore_eos":1})", "ignore_eos"},
      {R"({"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":[1]})", "chat_template_kwargs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":{"messages":[]}})",
       "chat_template_kwargs.messages"},
      {R"({"messages":[{"role":"user","content":"hi"}],"temprature":0.5})", "temprature"},
      {R"({"messages":[{"role":"user","content":"hi"}],"echo":true})", "echo"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logprobs":"yes"})", "logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logprobs":1})", "logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"top_logprobs":2})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logprobs":false,"top_logprobs":0})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":21})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":-1})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logprobs":true,"top_logprobs":2.5})", "top_logprobs"},
      {R"({"messages":[{"role":"user","content":"hi"}],"functions":[]})", "functions"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json"}})", "response_format.type"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object","schema":{}}})",
       "response_format"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema"}})",
       "response_format.json_schema"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{}}})",
       "response_format.json_schema.name"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x"}}})",
       "response_format.json_schema.schema"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{},"strict":"yes"}}})",
       "response_format.json_schema.strict"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{},"extra":1}}})",
       "response_format.json_schema.extra"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"x":{"type":"strnig"}}}}}})",
       "response_format.json_schema.schema.properties.x.type"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"(a)\\1"}}}})",
       "response_format.json_schema.schema.pattern"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","properties":{"id":{"type":"string","pattern":"^(?=a)b"}}}}}})",
       "response_format.json_schema.schema.properties.id.pattern"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"^a+$","maxLength":3}}}})",
       "response_format.json_schema.schema.maxLength"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":"text"})", "response_format"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logit_bias":{"5":10}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"hi"}],"modalities":["text","audio"]})", "modalities"},
      {R"({"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high"})", "reasoning_effort"},
  };
  for (const Bad& b : cases) expect_bad(true, b);
}

TEST(OpenAIRequest, ResponseFormatsCompileToGrammars) {
  EXPECT_FALSE(parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"text"}})")
                   .response_format);
  const ChatRequest object =
      parse_chat_request(R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})");
  ASSERT_TRUE(object.response_format);
  EXPECT_EQ(object.response_format->type, "json_object");
  const char* schema_body =
      R"({"prompt":"x","response_format":{"type":"json_schema","json_schema":{"name":"ok","strict":true,)"
      R"("schema":{"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false}}}})";
  const CompletionRequest a = parse_completion_request(schema_body), b = parse_completion_request(schema_body);
  ASSERT_TRUE(a.response_format && a.response_format->grammar);
  EXPECT_EQ(a.response_format->type, "json_schema");
  EXPECT_EQ(a.response_format->grammar, b.response_format->grammar);  // cached by schema text
}

TEST(OpenAIRequest, JsonSchemaPatternsAreEnforced) {
  const ChatRequest r = parse_chat_request(
      R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"code",)"
      R"("schema":{"type":"object","properties":{"code":{"type":"string","pattern":"^[A-Z]{3}-\\d{2}$"}},)"
      R"("required":["code"],"additionalProperties":false}}}})");
  ASSERT_TRUE(r.response_format && r.response_format->grammar);
  structured::Matcher ok(r.response_format->grammar);
  EXPECT_TRUE(ok.advance(R"({"code":"ABC-12"})"));
  EXPECT_TRUE(ok.complete());
  structured::Matcher bad(r.response_format->grammar);
  EXPECT_FALSE(bad.advance(R"({"code":"ABC-1x"})"));
}

TEST(OpenAIRequest, BadCompletionRequestsNameTheField) {
  const std::vector<Bad> cases = {
      {"{", ""},
      {"{}", "prompt"},
      {R"({"prompt":5})", "prompt"},
      {R"({"prompt":[]})", "prompt"},
      {R"({"prompt":[1,-2]})", "prompt[1]"},
      {R"({"prompt":[1,"a"]})", "prompt[1]"},
      {R"({"prompt":["a",1]})", "prompt[1]"},
      {R"({"prompt":[[1],[]]})", "prompt[1]"},
      {R"({"prompt":[[1],"a"]})", "prompt[1]"},
      {R"({"prompt":[[1,2.5]]})", "prompt[0][1]"},
      {R"({"prompt":[true]})", "prompt[0]"},
      {R"({"prompt":"x","max_tokens":-1})", "max_tokens"},
      {R"({"prompt":"x","max_completion_tokens":5})", "max_completion_tokens"},
      {R"({"prompt":"x","echo":"true"})", "echo"},
      {R"({"prompt":"x","logprobs":21})", "logprobs"},
      {R"({"prompt":"x","logprobs":-1})", "logprobs"},
      {R"({"prompt":"x","logprobs":true})", "logprobs"},
      {R"({"prompt":"x","logprobs":2,"echo":true})", "logprobs"},
      {R"({"prompt":"x","echo":true,"logprobs":0})", "logprobs"},
      {R"({"prompt":"x","logprobs":2,"top_logprobs":2})", "top_logprobs"},
      {R"({"prompt":"x","suffix":"end"})", "suffix"},
      {R"({"prompt":"x","best_of":3})", "best_of"},
      {R"({"prompt":"x","messages":[]})", "messages"},
      {R"({"prompt":"x","chat_template_kwargs":{}})", "chat_template_kwargs"},
      {R"({"prompt":["a","b","c"],"n":50})", "n"},
  };
  for (const Bad& b : cases) expect_bad(false, b);
}

TEST(OpenAIRequest, InvalidUtf8IsMalformedJson) {
  try {
    parse_chat_request("{\"messages\":[{\"role\":\"user\",\"content\":\"\xff\xfe\"}]}");
    FAIL() << "accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    EXPECT_NE(e.message().find("not valid JSON"), std::string::npos) << e.message();
  }
}

TEST(OpenAIRequest, ErrorBodyShape) {
  const ApiError e = invalid_field("top_p", "bad");
  EXPECT_EQ(e.body().dump(), R"({"error":{"message":"top_p: bad","type":"invalid_request_error","param":"top_p","code":null}})");
  const ApiError s(500, "boom");
  EXPECT_EQ(s.body()["error"]["type"], "server_error");
  EXPECT_TRUE(s.body()["error"]["param"].is_null());
}

TEST(OpenAIRequest, DumpReplacesInvalidUtf8) {
  EXPECT_EQ(dump_json(nlohmann::ordered_json("a\xff")), "\"a\xEF\xBF\xBD\"");
}

const std::string kTool = R"({"type":"function","function":{"name":"get_weather","description":"Weather.",)"
                          R"("parameters":{"type":"object","properties":{"city":{"type":"string"}}},"strict":false}})";

TEST(OpenAIRequest, ToolsAndToolMessagesParse) {
  const ChatRequest r = parse_chat_request(
      R"({"messages":[{"role":"user","content":"Weather in Paris?"},)"
      R"({"role":"assistant","content":null,"refusal":null,"tool_calls":[)"
      R"({"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"days\":2.0,\"a\":[1]}"}},)"
      R"({"index":1,"id":"call_2","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},)"
      R"({"role":"tool","tool_call_id":"call_1","content":[{"type":"text","text":"21 C"}]},)"
      R"({"role":"tool","tool_call_id":"call_2","content":"18 C"},)"
      R"({"role":"assistant","content":"Sunny.","tool_calls":[],"annotations":[]}],)"
      R"("tools":[)" + kTool + R"(,{"type":"function","function":{"name":"f-2_x"}}],"parallel_tool_calls":false})");
  ASSERT_EQ(r.messages.size(), 5u);
  EXPECT_EQ(r.messages[1].role, "assistant");
  EXPECT_EQ(r.messages[1].content, "");
  ASSERT_EQ(r.messages[1].tool_calls.size(), 2u);
  EXPECT_EQ(r.messages[1].tool_calls[0].id, "call_1");
  EXPECT_EQ(r.messages[1].tool_calls[0].name, "get_weather");
  // Decoded, key order kept; 2.0 stays a float (a template writes it back as Python does: 2.0).
  EXPECT_EQ(r.messages[1].tool_calls[0].arguments.dump(), R"({"city":"Paris","days":2.0,"a":[1]})");
  EXPECT_TRUE(r.messages[1].tool_calls[1].arguments.empty());
  EXPECT_EQ(r.messages[2].role, "tool");
  EXPECT_EQ(r.messages[2].tool_call_id, "call_1");
  EXPECT_EQ(r.messages[2].content, "21 C");
  EXPECT_TRUE(r.messages[4].tool_calls.empty());
  ASSERT_EQ(r.tools.size(), 2u);
  EXPECT_EQ(r.tools[0].dump(), nlohmann::ordered_json::parse(kTool).dump());  // as written, in order
  EXPECT_EQ(r.tool_choice, ToolChoice::automatic);  // the default with tools
}

TEST(OpenAIRequest, ToolChoice) {
  const auto choice = [](const std::string& fields) { return parse_chat_request("{" + kMsg + "," + fields + "}").tool_choice; };
  EXPECT_EQ(parse_chat_request("{" + kMsg + "}").tool_choice, ToolChoice::none);
  EXPECT_EQ(choice(R"("tools":[)" + kTool + "]"), ToolChoice::automatic);
  EXPECT_EQ(choice(R"("tools":[)" + kTool + R"(],"tool_choice":"auto")"), ToolChoice::automatic);
  EXPECT_EQ(choice(R"("tools":[)" + kTool + R"(],"tool_choice":"none")"), ToolChoice::none);
  EXPECT_EQ(choice(R"("tools":[)" + kTool + R"(],"tool_choice":null)"), ToolChoice::automatic);
  EXPECT_EQ(choice(R"("tools":[],"tool_choice":"auto")"), ToolChoice::none);  // nothing to call
  EXPECT_EQ(choice(R"("tool_choice":"none")"), ToolChoice::none);
  // Forced: a grammar of the calls.
  const ChatRequest required = parse_chat_request("{" + kMsg + R"(,"tools":[)" + kTool + R"(],"tool_choice":"required"})");
  EXPECT_EQ(required.tool_choice, ToolChoice::forced);
  EXPECT_TRUE(required.forced_calls);
  const ChatRequest named = parse_chat_request(
      "{" + kMsg + R"(,"tools":[)" + kTool + R"(],"tool_choice":{"type":"function","function":{"name":"get_weather"}}})");
  EXPECT_EQ(named.tool_choice, ToolChoice::forced);
  EXPECT_TRUE(named.forced_calls);
  EXPECT_FALSE(parse_chat_request("{" + kMsg + R"(,"tools":[)" + kTool + "]}").forced_calls);
  EXPECT_TRUE(parse_chat_request("{" + kMsg + R"(,"tools":null})").tools.empty());
}

TEST(OpenAIRequest, BadToolRequestsNameTheField) {
  const std::string m = "{" + kMsg + ",";
  const std::string tools = m + R"("tools":[)" + kTool + "],";
  const std::string name64(64, 'a');
  std::string many = m + R"("tools":[)";
  for (size_t i = 0; i <= kMaxTools; ++i) many += (i ? "," : "") + std::string(R"({"type":"function","function":{"name":"f)") + std::to_string(i) + "\"}}";
  many += "]}";
  const auto call = [](const std::string& c) {
    return R"({"messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[)" + c + "]}]}";
  };
  const std::string ok_call = R"({"id":"c","type":"function","function":{"name":"f","arguments":"{}"}})";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {m + R"("tools":{"type":"function"}})", "tools"},
      {m + R"("tools":[1]})", "tools[0]"},
      {m + R"("tools":[{"function":{"name":"f"}}]})", "tools[0].type"},
      {m + R"("tools":[{"type":"retrieval","function":{"name":"f"}}]})", "tools[0].type"},
      {m + R"("tools":[{"type":"function"}]})", "tools[0].function"},
      {m + R"("tools":[{"type":"function","function":"f"}]})", "tools[0].function"},
      {m + R"("tools":[{"type":"function","function":{"description":"d"}}]})", "tools[0].function.name"},
      {m + R"("tools":[{"type":"function","function":{"name":""}}]})", "tools[0].function.name"},
      {m + R"("tools":[{"type":"function","function":{"name":"get weather"}}]})", "tools[0].function.name"},
      {m + R"("tools":[{"type":"function","function":{"name":"a.b"}}]})", "tools[0].function.name"},
      {m + R"("tools":[{"type":"function","function":{"name":")" + name64 + R"(a"}}]})", "tools[0].function.name"},
      {m + R"("tools":[{"type":"function","function":{"name":5}}]})", "tools[0].function.name"},
      {m + R"("tools":[{"type":"function","function":{"name":"f","description":5}}]})", "tools[0].function.description"},
      {m + R"("tools":[{"type":"function","function":{"name":"f","parameters":"{}"}}]})", "tools[0].function.parameters"},
      {m + R"("tools":[{"type":"function","function":{"name":"f","parameters":[]}}]})", "tools[0].function.parameters"},
      {m + R"("tools":[{"type":"function","function":{"name":"f","strict":"yes"}}]})", "tools[0].function.strict"},
      {m + R"("tools":[{"type":"function","function":{"name":"f","args":{}}}]})", "tools[0].function.args"},
      {m + R"("tools":[{"type":"function","name":"f","function":{"name":"f"}}]})", "tools[0].name"},
      {m + R"("tools":[)" + kTool + "," + kTool + "]}", "tools[1].function.name"},
      {many, "tools"},
      {tools + R"("tool_choice":"sometimes"})", "tool_choice"},
      {tools + R"("tool_choice":5})", "tool_choice"},
      {tools + R"("tool_choice":"required","response_format":{"type":"json_object"}})", "response_format"},
      {m + R"("tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"x":{"type":"string","pattern":"a{1,99999}"}}}}}],"tool_choice":"required"})",
       "tools[0].function.parameters.properties.x.pattern"},
      {m + R"("tool_choice":"required"})", "tool_choice"},
      {tools + R"("tool_choice":{"type":"function","function":{"name":"get_time"}}})", "tool_choice.function.name"},
      {m + R"("tool_choice":{"type":"function","function":{"name":"get_time"}}})", "tool_choice.function.name"},
      {tools + R"("tool_choice":{"function":{"name":"get_weather"}}})", "tool_choice.type"},
      {tools + R"("tool_choice":{"type":"tool","function":{"name":"get_weather"}}})", "tool_choice.type"},
      {tools + R"("tool_choice":{"type":"function","function":{}}})", "tool_choice.function.name"},
      {tools + R"("tool_choice":{"type":"function","name":"get_weather"}})", "tool_choice.name"},
      {m + R"("parallel_tool_calls":"yes"})", "parallel_tool_calls"},
      {m + R"("chat_template_kwargs":{"tools":[]}})", "chat_template_kwargs.tools"},
      {m + R"("functions":[{"name":"f"}]})", "functions"},
      {m + R"("function_call":"auto"})", "function_call"},
      // Messages: tool results and the calls they answer.
      {R"({"messages":[{"role":"user","content":"hi"},{"role":"tool","content":"21"}]})", "messages[1].tool_call_id"},
      {R"({"messages":[{"role":"tool","tool_call_id":7,"content":"21"}]})", "messages[0].tool_call_id"},
      {R"({"messages":[{"role":"tool","tool_call_id":"c"}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","tool_call_id":"c","content":"hi"}]})", "messages[0].tool_call_id"},
      {R"({"messages":[{"role":"user","content":"hi","tool_calls":[)" + ok_call + "]}]}", "messages[0].tool_calls"},
      {R"({"messages":[{"role":"assistant","content":null}]})", "messages[0].content"},
      {R"({"messages":[{"role":"assistant","tool_calls":[]}]})", "messages[0].content"},
      {R"({"messages":[{"role":"assistant","tool_calls":{"id":"c"}}]})", "messages[0].tool_calls"},
      {call("5"), "messages[1].tool_calls[0]"},
      {call(R"({"type":"function","function":{"name":"f","arguments":"{}"}})"), "messages[1].tool_calls[0].id"},
      {call(R"({"id":"c","function":{"name":"f","arguments":"{}"}})"), "messages[1].tool_calls[0].type"},
      {call(R"({"id":"c","type":"code","function":{"name":"f","arguments":"{}"}})"), "messages[1].tool_calls[0].type"},
      {call(R"({"id":"c","type":"function"})"), "messages[1].tool_calls[0].function"},
      {call(R"({"id":"c","type":"function","function":{"arguments":"{}"}})"), "messages[1].tool_calls[0].function.name"},
      {call(R"({"id":"c","type":"function","function":{"name":"","arguments":"{}"}})"),
       "messages[1].tool_calls[0].function.name"},
      {call(R"({"id":"c","type":"function","function":{"name":"f"}})"), "messages[1].tool_calls[0].function.arguments"},
      {call(R"({"id":"c","type":"function","function":{"name":"f","arguments":{"a":1}}})"),
       "messages[1].tool_calls[0].function.arguments"},
      {call(R"({"id":"c","type":"function","function":{"name":"f","arguments":"{\"a\": 1"}})"),
       "messages[1].tool_calls[0].function.arguments"},
      {call(R"({"id":"c","type":"function","function":{"name":"f","arguments":")" + std::string(100, '[') +
            std::string(100, ']') + R"("}})"),
       "messages[1].tool_calls[0].function.arguments"},
      {call(R"({"id":"c","type":"function","function":{"name":"f","arguments":"{}","strict":true}})"),
       "messages[1].tool_calls[0].function.strict"},
      {call(R"({"id":"c","index":"0","type":"function","function":{"name":"f","arguments":"{}"}})"),
       "messages[1].tool_calls[0].index"},
      {call(ok_call + R"(,{"id":"d","type":"function","function":{"name":"f","arguments":"{}"},"extra":1})"),
       "messages[1].tool_calls[1].extra"},
      {R"({"messages":[{"role":"assistant","content":"x","refusal":5}]})", "messages[0].refusal"},
      {R"({"messages":[{"role":"assistant","content":"x","function_call":{"name":"f","arguments":"{}"}}]})",
       "messages[0].function_call"},
  };
  for (const auto& [body, param] : cases) expect_bad(true, {body.c_str(), param.c_str()});
}

// A body nested past kMaxJsonDepth is refused before nlohmann parses it (a value 100k levels deep would
// overflow the stack wherever it is later copied or walked recursively); brackets inside strings do not
// count, and kMaxJsonDepth levels exactly still parse.
TEST(OpenAIRequest, DeepNestingIsRefusedBeforeParsing) {
  const auto kwargs = [](size_t arrays) {
    return "{" + kMsg + R"(,"chat_template_kwargs":{"x":)" + std::string(arrays, '[') + std::string(arrays, ']') + "}}";
  };
  // The body's object and chat_template_kwargs are two levels.
  const ChatRequest ok = parse_chat_request(kwargs(kMaxJsonDepth - 2));
  EXPECT_TRUE(ok.chat_template_kwargs.at("x").is_array());
  for (const size_t arrays : {kMaxJsonDepth - 1, size_t{100000}}) {
    try {
      parse_chat_request(kwargs(arrays));
      FAIL() << arrays << " nested arrays were accepted";
    } catch (const ApiError& e) {
      EXPECT_EQ(e.status(), 400);
      EXPECT_NE(e.message().find("deeper than 64 levels"), std::string::npos) << e.message();
    }
  }
  try {
    parse_completion_request(std::string(100000, '{'));
    FAIL() << "100k open braces were accepted";
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
  }
  const std::string brackets_in_text = "{" + kMsg.substr(0, kMsg.size() - 3) + std::string(1000, '[') + R"("}]})";
  EXPECT_EQ(parse_chat_request(brackets_in_text).messages.at(0).content, "hi" + std::string(1000, '['));
}

}  // namespace
}  // namespace adallm::server
