// Parsing and validation of OpenAI request bodies (see openai_request.h). Each field has one handler that
// checks its JSON type and range (server/request_fields.h; messages and tools: server/chat_fields.h); null
// means "not given", as in OpenAI's API. A field outside the tables is unknown (400); a field of OpenAI's
// API this server does not implement yet is refused by name (400) unless it holds the value that asks for
// nothing (logit_bias {}...).
#include "server/openai_request.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <map>
#include <string>

#include "server/chat_fields.h"
#include "server/request_fields.h"
#include "server/tool_call_grammar.h"
#include "text/json_depth.h"

namespace adallm::server {
namespace {

using namespace fields;

std::vector<std::string> parse_stop(const json& v) {
  std::vector<std::string> stops;
  if (v.is_string()) {
    stops.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    if (v.size() > kMaxStopStrings) {
      throw invalid_field("stop", "at most " + std::to_string(kMaxStopStrings) + " stop strings, got " +
                                      std::to_string(v.size()));
    }
    for (size_t i = 0; i < v.size(); ++i) stops.push_back(get_string("stop[" + std::to_string(i) + "]", v[i]));
  } else {
    wrong_type("stop", "a string or an array of strings", v);
  }
  for (size_t i = 0; i < stops.size(); ++i) {
    const std::string field = v.is_array() ? "stop[" + std::to_string(i) + "]" : "stop";
    if (stops[i].empty()) throw invalid_field(field, "a stop string must not be empty");
    if (stops[i].size() > kMaxStopStringBytes) {
      throw invalid_field(field, "a stop string may have at most " + std::to_string(kMaxStopStringBytes) + " bytes");
    }
  }
  return stops;
}

using Handler = std::function<void(const json&)>;

// Runs the handler of every non-null field; refuses unknown ones. `unsupported` fields are refused unless
// their check accepts the value.
void dispatch(const json& body, const std::map<std::string, Handler, std::less<>>& handlers) {
  for (const auto& [key, value] : body.items()) {
    const auto it = handlers.find(key);
    if (it != handlers.end()) {
      if (!value.is_null()) it->second(value);
      continue;
    }
    if (std::find(std::begin(kIgnoredFields), std::end(kIgnoredFields), key) != std::end(kIgnoredFields)) continue;
    throw invalid_field(key, "unknown field");
  }
}

json parse_body(std::string_view body) {
  if (text::json_nesting_depth(body, kMaxJsonDepth) > kMaxJsonDepth) {
    throw ApiError(400, "the request body nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) +
                            " levels");
  }
  json j;
  try {
    j = json::parse(body.begin(), body.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number beyond a double
    throw ApiError(400, std::string("the request body is not valid JSON (UTF-8): ") + e.what());
  }
  if (!j.is_object()) throw ApiError(400, "the request body must be a JSON object, got " + type_name(j));
  return j;
}

// The handlers of CommonFields. `max_tokens_min` is 1 for chat (an answer of nothing is no answer) and 0
// for completions (echo with max_tokens 0 scores the prompt alone).
void add_common(std::map<std::string, Handler, std::less<>>& h, CommonFields& r, int64_t max_tokens_min,
                std::optional<int64_t>& max_completion_tokens) {
  constexpr int64_t kIntMax = std::numeric_limits<int32_t>::max();
  h["model"] = [&r](const json& v) { r.model = get_string("model", v); };
  h["max_tokens"] = [&r, max_tokens_min](const json& v) {
    r.max_tokens = int_at_least("max_tokens", v, max_tokens_min, kIntMax);
  };
  h["max_completion_tokens"] = [&max_completion_tokens](const json& v) {
    max_completion_tokens = int_at_least("max_completion_tokens", v, 1, kIntMax);
  };
  h["temperature"] = [&r](const json& v) { r.sampling.temperature = ranged("temperature", v, 0.0, 2.0); };
  h["top_p"] = [&r](const json& v) { r.sampling.top_p = ranged("top_p", v, 0.0, 1.0, true); };
  h["top_k"] = [&r](const json& v) { r.sampling.top_k = static_cast<int32_t>(int_at_least("top_k", v, -1, kIntMax)); };
  h["min_p"] = [&r](const json& v) { r.sampling.min_p = ranged("min_p", v, 0.0, 1.0); };
  h["presence_penalty"] = [&r](const json& v) { r.sampling.presence_penalty = ranged("presence_penalty", v, -2.0, 2.0); };
  h["frequency_penalty"] = [&r](const json& v) {
    r.sampling.frequency_penalty = ranged("frequency_penalty", v, -2.0, 2.0);
  };
  h["repetition_penalty"] = [&r](const json& v) {
    r.sampling.repetition_penalty = ranged("repetition_penalty", v, 0.0, 10.0, true);
  };
  h["seed"] = [&r](const json& v) { r.sampling.seed = get_int("seed", v); };
  h["n"] = [&r](const json& v) { r.n = int_at_least("n", v, 1, kMaxChoices); };
  h["stop"] = [&r](const json& v) { r.stop = parse_stop(v); };
  h["stream"] = [&r](const json& v) { r.stream = get_bool("stream", v); };
  h["stream_options"] = [&r](const json& v) {
    if (!v.is_object()) wrong_type("stream_options", "an object", v);
    for (const auto& [key, value] : v.items()) {
      if (key != "include_usage") throw invalid_field("stream_options." + key, "unknown field");
      if (!value.is_null()) r.include_usage = get_bool("stream_options.include_usage", value);
    }
  };
  h["ignore_eos"] = [&r](const json& v) { r.ignore_eos = get_bool("ignore_eos", v); };
  h["logit_bias"] = [](const json& v) {
    if (!v.is_object()) wrong_type("logit_bias", "an object", v);
    if (!v.empty()) not_supported("logit_bias");
  };
}

// Checks that need several fields at once.
void finish_common(CommonFields& r, const std::optional<int64_t>& max_completion_tokens) {
  if (max_completion_tokens) {
    if (r.max_tokens && *r.max_tokens != *max_completion_tokens) {
      throw invalid_field("max_completion_tokens", "differs from max_tokens (" + std::to_string(*r.max_tokens) +
                                                       "); give one of the two");
    }
    r.max_tokens = max_completion_tokens;
  }
  if (r.include_usage && !r.stream) {
    throw invalid_field("stream_options", "is only allowed when stream is true");
  }
}

std::vector<int32_t> parse_token_ids(const std::string& field, const json& v) {
  std::vector<int32_t> ids;
  ids.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    ids.push_back(static_cast<int32_t>(
        int_at_least(field + "[" + std::to_string(i) + "]", v[i], 0, std::numeric_limits<int32_t>::max())));
  }
  return ids;
}

std::vector<Prompt> parse_prompt(const json& v) {
  std::vector<Prompt> prompts;
  if (v.is_string()) {
    prompts.push_back({false, v.get<std::string>(), {}});
    return prompts;
  }
  if (!v.is_array()) wrong_type("prompt", "a string, an array of strings, token ids or arrays of token ids", v);
  if (v.empty()) throw invalid_field("prompt", "must not be an empty array");
  if (v[0].is_number()) {  // one prompt of token ids
    prompts.push_back({true, "", parse_token_ids("prompt", v)});
    return prompts;
  }
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string field = "prompt[" + std::to_string(i) + "]";
    if (v[0].is_string()) {
      prompts.push_back({false, get_string(field, v[i]), {}});
    } else if (v[0].is_array()) {
      if (!v[i].is_array()) wrong_type(field, "an array of token ids (as prompt[0])", v[i]);
      if (v[i].empty()) throw invalid_field(field, "must not be empty");
      prompts.push_back({true, "", parse_token_ids(field, v[i])});
    } else {
      wrong_type(field, "a string, a token id or an array of token ids", v[i]);
    }
  }
  return prompts;
}

void check_choices(const CommonFields& r, size_t prompts) {
  if (static_cast<int64_t>(prompts) * r.n > kMaxChoices) {
    throw invalid_field("n", "n times the number of prompts is " + std::to_string(static_cast<int64_t>(prompts) * r.n) +
                                 ", more than " + std::to_string(kMaxChoices));
  }
}

}  // namespace

ChatRequest parse_chat_request(std::string_view body) {
  const json j = parse_body(body);
  ChatRequest r;
  std::optional<int64_t> max_completion_tokens;
  std::map<std::string, Handler, std::less<>> h;
  add_common(h, r, 1, max_completion_tokens);
  h["response_format"] = [&r](const json& v) { r.response_format = parse_response_format(v); };
  bool has_messages = false;
  h["messages"] = [&](const json& v) {
    r.messages = parse_messages(v);
    has_messages = true;
  };
  h["chat_template_kwargs"] = [&r](const json& v) {
    if (!v.is_object()) wrong_type("chat_template_kwargs", "an object", v);
    for (const auto& [key, value] : v.items()) {
      if (key == "messages" || key == "add_generation_prompt" || key == "tools") {
        throw invalid_field("chat_template_kwargs." + key, "is set by the server (from the request's own fields)");
      }
      r.chat_template_kwargs[key] = value;
    }
  };
  bool logprobs = false;
  std::optional<int64_t> top_logprobs;
  h["logprobs"] = [&logprobs](const json& v) { logprobs = get_bool("logprobs", v); };
  h["top_logprobs"] = [&top_logprobs](const json& v) {
    top_logprobs = int_at_least("top_logprobs", v, 0, kMaxTopLogprobs);
  };
  h["tools"] = [&r](const json& v) { r.tools = parse_tools(v); };
  std::optional<std::string> tool_choice;
  std::string tool_choice_name;
  h["tool_choice"] = [&](const json& v) { tool_choice_name = parse_tool_choice(v, tool_choice.emplace()); };
  bool parallel_tool_calls = true;
  h["parallel_tool_calls"] = [&](const json& v) { parallel_tool_calls = get_bool("parallel_tool_calls", v); };
  h["functions"] = [](const json&) { not_supported("functions"); };
  h["function_call"] = [](const json&) { not_supported("function_call"); };
  for (const char* field : {"prediction", "audio", "reasoning_effort", "web_search_options"}) {
    h[field] = [field](const json&) { not_supported(field); };
  }
  h["modalities"] = [](const json& v) {
    if (!(v.is_array() && v.size() == 1 && v[0] == "text")) not_supported("modalities", "modalities other than [\"text\"]");
  };
  dispatch(j, h);
  if (!has_messages) throw invalid_field("messages", "missing");
  r.tool_choice = resolve_tool_choice(r.tools, tool_choice, tool_choice_name);
  if (r.tool_choice == ToolChoice::forced) {
    if (r.response_format) {
      throw invalid_field("response_format", "cannot be combined with tool_choice \"required\" or a named function: "
                                             "the answer is the calls");
    }
    r.forced_tool_name = *tool_choice == "function" ? tool_choice_name : "";
    r.parallel_tool_calls = parallel_tool_calls;
    r.forced_calls = tool_call_grammar(r.tools, r.forced_tool_name, parallel_tool_calls);
  }
  if (top_logprobs && !logprobs) throw invalid_field("top_logprobs", "is only allowed when logprobs is true");
  if (logprobs) r.logprobs = static_cast<int32_t>(top_logprobs.value_or(0));
  finish_common(r, max_completion_tokens);
  check_choices(r, 1);
  return r;
}

CompletionRequest parse_completion_request(std::string_view body) {
  const json j = parse_body(body);
  CompletionRequest r;
  std::optional<int64_t> max_completion_tokens;
  std::map<std::string, Handler, std::less<>> h;
  add_common(h, r, 0, max_completion_tokens);
  h.erase("max_completion_tokens");  // a chat field
  // As vLLM: completions take response_format too.
  h["response_format"] = [&r](const json& v) { r.response_format = parse_response_format(v); };
  bool has_prompt = false;
  h["prompt"] = [&](const json& v) {
    r.prompts = parse_prompt(v);
    has_prompt = true;
  };
  h["echo"] = [&r](const json& v) { r.echo = get_bool("echo", v); };
  h["logprobs"] = [&r](const json& v) {
    r.logprobs = static_cast<int32_t>(int_at_least("logprobs", v, 0, kMaxTopLogprobs));
  };
  h["suffix"] = [](const json& v) {
    if (!get_string("suffix", v).empty()) not_supported("suffix");
  };
  std::optional<int64_t> best_of;
  h["best_of"] = [&best_of](const json& v) { best_of = int_at_least("best_of", v, 1, kMaxChoices); };
  dispatch(j, h);
  if (!has_prompt) throw invalid_field("prompt", "missing");
  if (best_of && *best_of != r.n) not_supported("best_of", "best_of other than n");
  if (r.echo && r.logprobs) {
    throw invalid_field("logprobs", "cannot be combined with echo: this server computes the logprobs of generated "
                                    "tokens only, not of the prompt's");
  }
  finish_common(r, max_completion_tokens);
  check_choices(r, r.prompts.size());
  return r;
}

}  // namespace adallm::server
