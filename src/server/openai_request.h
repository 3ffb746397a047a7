// OpenAI request bodies (POST /v1/chat/completions and /v1/completions) parsed and validated into typed
// requests. Every field is checked for type and range here, before anything touches the model; a wrong
// type, an out-of-range value, an unknown field or a field this server does not implement yet is an
// ApiError 400 whose message and param name the field. A few fields are accepted and ignored
// (kIgnoredFields). Model-dependent checks (the model name, prompt length, whether the model can take
// tools) are the serving layer's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api_error.h"
#include "server/response_format.h"

namespace adallm::server {

// Accepted, and ignored: they change nothing a local server does.
inline constexpr std::string_view kIgnoredFields[] = {"user", "metadata", "service_tier", "store"};

inline constexpr int64_t kMaxChoices = 128;     // n times the number of prompts
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 1024;
inline constexpr size_t kMaxJsonDepth = 64;        // nesting of arrays and objects in a body
// Alternatives a request may ask for with each token's logprob: chat's top_logprobs (OpenAI's limit) and
// completions' logprobs (OpenAI's legacy limit is 5; 20 here, as vLLM accepts; the engine's own bound).
inline constexpr int64_t kMaxTopLogprobs = 20;
inline constexpr size_t kMaxTools = 128;           // OpenAI's limit
inline constexpr size_t kMaxToolNameBytes = 64;    // OpenAI's: [a-zA-Z0-9_-]{1,64}

// The sampling fields a request set; what it leaves unset comes from the model's generation_config.json.
struct SamplingFields {
  std::optional<float> temperature, top_p, min_p, presence_penalty, frequency_penalty, repetition_penalty;
  std::optional<int32_t> top_k;
  std::optional<int64_t> seed;
};

// The fields chat and completions share.
struct CommonFields {
  std::optional<std::string> model;     // absent: the served model
  std::optional<int64_t> max_tokens;    // absent: the serving layer's default
  SamplingFields sampling;
  int64_t n = 1;
  std::vector<std::string> stop;
  bool stream = false;
  bool include_usage = false;           // stream_options.include_usage
  bool ignore_eos = false;
  // Set: every generated token's logprob plus this many top alternatives (chat: logprobs true with
  // top_logprobs; completions: logprobs N). Absent: no logprobs.
  std::optional<int32_t> logprobs;
  std::optional<ResponseFormat> response_format;  // unset: text
  // No JSON field sets it: `adallm run`, whose --max-tokens is a cap, sets it so that an answer ends where
  // the context does (finish reason length) instead of the request being refused for max_tokens.
  bool max_tokens_up_to_context = false;
};

// A call an assistant message made (a tool call the server returned earlier, sent back by the client).
struct MessageToolCall {
  std::string id;
  std::string name;
  // The client's arguments string, JSON-decoded (key order kept): chat templates write it with tojson, as
  // vLLM hands it to transformers.
  nlohmann::ordered_json arguments;
};

struct ChatMessage {
  std::string role;  // system, user, assistant or tool
  // Content-part arrays joined with "\n", as vLLM does for text-only templates; "" for an assistant
  // message with tool calls and no content (null or absent), as vLLM passes it.
  std::string content;
  std::vector<MessageToolCall> tool_calls;  // assistant messages only
  std::string tool_call_id;                 // tool messages only (required there)
};

// "none": the tools are given to the template, and generated text is not parsed for calls. "auto" (the
// default when there are tools): calls in the model's format are parsed out of the answer. "forced"
// ("required" or a named function): the answer is constrained to calls (ChatRequest::forced_calls).
enum class ToolChoice { none, automatic, forced };

struct ChatRequest : CommonFields {
  std::vector<ChatMessage> messages;
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();  // extra template variables
  // The request's tools as the client wrote them ({"type": "function", "function": {...}}), validated:
  // the chat template's `tools`. Empty: none (an empty array is none).
  nlohmann::ordered_json tools = nlohmann::ordered_json::array();
  ToolChoice tool_choice = ToolChoice::none;
  // tool_choice forced: the grammar of the calls the answer must be (server/tool_call_grammar.h), in the
  // Hermes format; the serving layer builds it again for a model with another format from the two below.
  std::shared_ptr<const structured::Grammar> forced_calls;
  std::string forced_tool_name;  // the named function; "" for "required"
  bool parallel_tool_calls = true;
};

struct Prompt {
  bool is_tokens = false;
  std::string text;             // !is_tokens
  std::vector<int32_t> tokens;  // is_tokens
};

struct CompletionRequest : CommonFields {
  std::vector<Prompt> prompts;  // one choice group per prompt
  bool echo = false;
};

// Throw ApiError (400) for malformed JSON or an invalid field.
ChatRequest parse_chat_request(std::string_view body);
CompletionRequest parse_completion_request(std::string_view body);

}  // namespace adallm::server
