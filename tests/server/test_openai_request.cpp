// The OpenAI request layer: valid bodies become the typed requests field for field, and each bad body of
// a long table is a 400 whose param and message name the offending field (wrong types, out-of-range
// values, unknown and not-yet-supported fields, malformed JSON). Accepted-and-ignored fields pass.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "server/api_error.h"
#include "server/openai_request.h"

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
      {R"({"messages":[{"role":"tool","content":"hi"}]})", "messages[0].role"},
      {R"({"messages":[{"role":"user","content":null}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":5}]})", "messages[0].content"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]})",
       "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":[{"text":"a"}]}]})", "messages[0].content[0].type"},
      {R"({"messages":[{"role":"user","content":[{"type":"text"}]}]})", "messages[0].content[0].text"},
      {R"({"messages":[{"role":"user","content":[{"type":"text","text":"a","x":1}]}]})",
       "messages[0].content[0].x"},
      {R"({"messages":[{"role":"user","content":"hi","mood":"happy"}]})", "messages[0].mood"},
      {R"({"messages":[{"role":"assistant","content":"","tool_calls":[{"id":"1"}]}]})", "messages[0].tool_calls"},
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
      {R"({"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f"}}]})",
       "tools"},
      {R"({"messages":[{"role":"user","content":"hi"}],"tool_choice":"auto"})", "tool_choice"},
      {R"({"messages":[{"role":"user","content":"hi"}],"functions":[]})", "functions"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}})",
       "response_format.type"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{}}})",
       "response_format.type"},
      {R"({"messages":[{"role":"user","content":"hi"}],"response_format":"text"})", "response_format"},
      {R"({"messages":[{"role":"user","content":"hi"}],"logit_bias":{"5":10}})", "logit_bias"},
      {R"({"messages":[{"role":"user","content":"hi"}],"modalities":["text","audio"]})", "modalities"},
      {R"({"messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high"})", "reasoning_effort"},
  };
  for (const Bad& b : cases) expect_bad(true, b);
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
