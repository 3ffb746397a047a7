// OpenAI response and chunk JSON (see openai_response.h).
#include "server/openai_response.h"

#include <chrono>
#include <cstdio>
#include <random>

namespace adallm::server {

using json = nlohmann::ordered_json;

namespace {

const char* object_name(Endpoint e, bool chunk) {
  if (e == Endpoint::chat) return chunk ? "chat.completion.chunk" : "chat.completion";
  return "text_completion";
}

json finish_json(const std::string& reason) { return reason.empty() ? json(nullptr) : json(reason); }

json head(const ResponseMeta& meta, bool chunk) {
  json j;
  j["id"] = meta.id;
  j["object"] = object_name(meta.endpoint, chunk);
  j["created"] = meta.created;
  j["model"] = meta.model;
  return j;
}

json bytes_json(const std::string& text) {
  json bytes = json::array();
  for (const char ch : text) bytes.push_back(static_cast<unsigned char>(ch));
  return bytes;
}

json chat_token_json(const std::string& token, float logprob, const std::string& bytes) {
  json t;
  t["token"] = token;
  t["logprob"] = logprob;
  t["bytes"] = bytes_json(bytes);
  return t;
}

json tool_call_json(const ToolCallDelta& call, bool with_index) {
  json j;
  if (with_index) j["index"] = call.index;
  j["id"] = call.id;
  j["type"] = "function";
  j["function"] = {{"name", call.call.name}, {"arguments", call.call.arguments}};
  return j;
}

}  // namespace

json logprobs_json(Endpoint endpoint, const std::vector<LogprobEntry>& entries) {
  json j;
  if (endpoint == Endpoint::chat) {
    json content = json::array();
    for (const LogprobEntry& e : entries) {
      json t = chat_token_json(e.token, e.logprob, e.bytes);
      json top = json::array();
      for (const TokenAlternative& a : e.top) top.push_back(chat_token_json(a.token, a.logprob, a.bytes));
      t["top_logprobs"] = std::move(top);
      content.push_back(std::move(t));
    }
    j["content"] = std::move(content);
    j["refusal"] = nullptr;
    return j;
  }
  json tokens = json::array(), token_logprobs = json::array(), top_logprobs = json::array(), offsets = json::array();
  for (const LogprobEntry& e : entries) {
    tokens.push_back(e.token);
    token_logprobs.push_back(e.logprob);
    json top = json::object();
    for (const TokenAlternative& a : e.top) {
      if (!top.contains(a.token)) top[a.token] = a.logprob;
    }
    top_logprobs.push_back(std::move(top));
    offsets.push_back(e.text_offset);
  }
  j["tokens"] = std::move(tokens);
  j["token_logprobs"] = std::move(token_logprobs);
  j["top_logprobs"] = std::move(top_logprobs);
  j["text_offset"] = std::move(offsets);
  return j;
}

ResponseMeta new_response_meta(Endpoint endpoint, std::string model) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char hex[25];
  std::snprintf(hex, sizeof hex, "%016llx%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() & 0xffffffffULL));
  ResponseMeta meta;
  meta.endpoint = endpoint;
  meta.id = std::string(endpoint == Endpoint::chat ? "chatcmpl-" : "cmpl-") + hex;
  meta.created = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                     .count();
  meta.model = std::move(model);
  return meta;
}

json usage_json(const Usage& usage) {
  json u;
  u["prompt_tokens"] = usage.prompt_tokens;
  u["completion_tokens"] = usage.completion_tokens;
  u["total_tokens"] = usage.prompt_tokens + usage.completion_tokens;
  u["prompt_tokens_details"] = {{"cached_tokens", usage.cached_tokens}};
  return u;
}

json response_json(const ResponseMeta& meta, const std::vector<std::string>& texts,
                   const std::vector<std::string>& finish_reasons, const Usage& usage,
                   const std::vector<std::vector<LogprobEntry>>* logprobs,
                   const std::vector<std::vector<ToolCallDelta>>* tool_calls,
                   const std::vector<std::string>* reasoning) {
  json j = head(meta, false);
  json choices = json::array();
  for (size_t i = 0; i < texts.size(); ++i) {
    json c;
    c["index"] = i;
    if (meta.endpoint == Endpoint::chat) {
      const bool called = tool_calls != nullptr && !tool_calls->at(i).empty();
      const bool reasoned = reasoning != nullptr && !reasoning->at(i).empty();
      c["message"] = {{"role", "assistant"},
                      {"content", (called || reasoned) && texts[i].empty() ? json(nullptr) : json(texts[i])}};
      if (reasoning != nullptr) c["message"]["reasoning_content"] = reasoned ? json(reasoning->at(i)) : json(nullptr);
      if (called) {
        json calls = json::array();
        for (const ToolCallDelta& call : tool_calls->at(i)) calls.push_back(tool_call_json(call, false));
        c["message"]["tool_calls"] = std::move(calls);
      }
    } else {
      c["text"] = texts[i];
    }
    c["logprobs"] = logprobs != nullptr ? logprobs_json(meta.endpoint, logprobs->at(i)) : json(nullptr);
    c["finish_reason"] = finish_json(finish_reasons[i]);
    choices.push_back(std::move(c));
  }
  j["choices"] = std::move(choices);
  j["usage"] = usage_json(usage);
  return j;
}

json chunk_json(const ResponseMeta& meta, int64_t index, const std::string& text, const std::string& finish_reason,
                bool role, bool with_usage_null, const std::vector<LogprobEntry>* logprobs) {
  json j = head(meta, true);
  json c;
  c["index"] = index;
  if (meta.endpoint == Endpoint::chat) {
    json delta = json::object();
    if (role) delta["role"] = "assistant";
    if (role || !text.empty()) delta["content"] = text;
    c["delta"] = std::move(delta);
  } else {
    c["text"] = text;
  }
  c["logprobs"] = logprobs != nullptr ? logprobs_json(meta.endpoint, *logprobs) : json(nullptr);
  c["finish_reason"] = finish_json(finish_reason);
  j["choices"] = json::array({std::move(c)});
  if (with_usage_null) j["usage"] = nullptr;
  return j;
}

json reasoning_chunk_json(const ResponseMeta& meta, int64_t index, const std::string& reasoning, bool with_usage_null,
                          const std::vector<LogprobEntry>* logprobs) {
  json j = head(meta, true);
  json c;
  c["index"] = index;
  c["delta"] = {{"reasoning_content", reasoning}};
  c["logprobs"] = logprobs != nullptr ? logprobs_json(meta.endpoint, *logprobs) : json(nullptr);
  c["finish_reason"] = nullptr;
  j["choices"] = json::array({std::move(c)});
  if (with_usage_null) j["usage"] = nullptr;
  return j;
}

json tool_call_chunk_json(const ResponseMeta& meta, int64_t index, const ToolCallDelta& call, bool with_usage_null) {
  json j = head(meta, true);
  json c;
  c["index"] = index;
  c["delta"] = {{"tool_calls", json::array({tool_call_json(call, true)})}};
  c["logprobs"] = nullptr;
  c["finish_reason"] = nullptr;
  j["choices"] = json::array({std::move(c)});
  if (with_usage_null) j["usage"] = nullptr;
  return j;
}

json usage_chunk_json(const ResponseMeta& meta, const Usage& usage) {
  json j = head(meta, true);
  j["choices"] = json::array();
  j["usage"] = usage_json(usage);
  return j;
}

}  // namespace adallm::server
