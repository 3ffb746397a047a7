// OpenAI response bodies and stream chunks, field for field as api.openai.com writes them:
// chat.completion / chat.completion.chunk and text_completion, with usage. Pure JSON building; the HTTP
// layer sends them (server/http_server.cpp).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/serving.h"

namespace adallm::server {

enum class Endpoint { chat, completions };

struct ResponseMeta {
  Endpoint endpoint = Endpoint::chat;
  std::string id;       // chatcmpl-... or cmpl-...
  int64_t created = 0;  // Unix seconds
  std::string model;
};

// A fresh id for `endpoint` (random, 24 hex digits after the prefix) and the current time.
ResponseMeta new_response_meta(Endpoint endpoint, std::string model);

nlohmann::ordered_json usage_json(const Usage& usage);

// A choice's "logprobs" object for `entries`. Chat: {"content": [{"token", "logprob", "bytes" (the token's
// UTF-8 bytes), "top_logprobs": [{"token", "logprob", "bytes"}...]}...], "refusal": null}. Completions
// (OpenAI's legacy shape): {"tokens", "token_logprobs", "top_logprobs": [{text: logprob}...], "text_offset"};
// alternatives whose text repeats an earlier one's keep the first (the more likely).
nlohmann::ordered_json logprobs_json(Endpoint endpoint, const std::vector<LogprobEntry>& entries);

// The whole answer: texts[i] and finish_reasons[i] are choice i's. `logprobs` (null: "logprobs": null on
// every choice) holds choice i's entries at i. `tool_calls` (chat) holds choice i's calls at i: a choice
// with calls has "tool_calls": [{"id", "type": "function", "function": {"name", "arguments"}}...] in its
// message, and its content is null when empty (as OpenAI writes it). `reasoning` (chat, with a reasoning
// parser) holds choice i's reasoning at i: the message has "reasoning_content" (null when empty, as vLLM
// writes it), and content is null when empty beside reasoning.
nlohmann::ordered_json response_json(const ResponseMeta& meta, const std::vector<std::string>& texts,
                                     const std::vector<std::string>& finish_reasons, const Usage& usage,
                                     const std::vector<std::vector<LogprobEntry>>* logprobs = nullptr,
                                     const std::vector<std::vector<ToolCallDelta>>* tool_calls = nullptr,
                                     const std::vector<std::string>* reasoning = nullptr);

// One stream chunk of one choice. Chat: `role` adds "role": "assistant" (the first chunk of a choice),
// the delta holds content when `text` is non-empty or `role` is set, and is {} on the finishing chunk.
// with_usage_null: "usage": null, as OpenAI writes on every chunk when include_usage is on.
// `logprobs` (null: "logprobs": null) are the entries of the tokens this chunk's text releases.
nlohmann::ordered_json chunk_json(const ResponseMeta& meta, int64_t index, const std::string& text,
                                  const std::string& finish_reason, bool role, bool with_usage_null,
                                  const std::vector<LogprobEntry>* logprobs = nullptr);

// A chat chunk of reasoning text: "delta": {"reasoning_content": TEXT}, as vLLM streams it; `logprobs`
// as chunk_json's.
nlohmann::ordered_json reasoning_chunk_json(const ResponseMeta& meta, int64_t index, const std::string& reasoning,
                                            bool with_usage_null, const std::vector<LogprobEntry>* logprobs = nullptr);

// A chat chunk of one tool call, whole: "delta": {"tool_calls": [{"index", "id", "type": "function",
// "function": {"name", "arguments"}}]}, "logprobs": null, "finish_reason": null.
nlohmann::ordered_json tool_call_chunk_json(const ResponseMeta& meta, int64_t index, const ToolCallDelta& call,
                                            bool with_usage_null);

// The last chunk when include_usage is on: "choices": [] and the usage.
nlohmann::ordered_json usage_chunk_json(const ResponseMeta& meta, const Usage& usage);

}  // namespace adallm::server
