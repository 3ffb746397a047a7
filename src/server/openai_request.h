// OpenAI request bodies (POST /v1/chat/completions and /v1/completions) parsed and validated into typed
// requests. Every field is checked for type and range here, before anything touches the model; a wrong
// type, an out-of-range value, an unknown field or a field this server does not implement yet is an
// ApiError 400 whose message and param name the field. A few fields are accepted and ignored
// (kIgnoredFields). Model-dependent checks (the model name, prompt length) are the serving layer's.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace adallm::server {

// Accepted, and ignored: they change nothing a local server does.
inline constexpr std::string_view kIgnoredFields[] = {"user", "metadata", "service_tier", "parallel_tool_calls", "store"};

inline constexpr int64_t kMaxChoices = 128;     // n times the number of prompts
inline constexpr size_t kMaxStopStrings = 16;
inline constexpr size_t kMaxStopStringBytes = 1024;
inline constexpr size_t kMaxJsonDepth = 64;        // nesting of arrays and objects in a body
// Alternatives a request may ask for with each token's logprob: chat's top_logprobs (OpenAI's limit) and
// completions' logprobs (OpenAI's legacy limit is 5; 20 here, as vLLM accepts; the engine's own bound).
inline constexpr int64_t kMaxTopLogprobs = 20;

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
};

struct ChatMessage {
  std::string role;     // system, user or assistant
  std::string content;  // content-part arrays joined with "\n", as vLLM does for text-only templates
};

struct ChatRequest : CommonFields {
  std::vector<ChatMessage> messages;
  nlohmann::ordered_json chat_template_kwargs = nlohmann::ordered_json::object();  // extra template variables
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
