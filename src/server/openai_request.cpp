// Parsing and validation of OpenAI request bodies (see openai_request.h). Each field has one handler that
// checks its JSON type and range; null means "not given", as in OpenAI's API. A field outside the tables
// is unknown (400); a field of OpenAI's API this server does not implement yet is refused by name (400)
// unless it holds the value that asks for nothing (tools [], response_format text...).
#include "server/openai_request.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <sstream>
#include <string>

namespace adallm::server {
namespace {

using json = nlohmann::ordered_json;

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number_float()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

std::string number_text(double x) {
  std::ostringstream os;
  os << x;
  return os.str();
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected, const json& v) {
  throw invalid_field(field, std::string("expected ") + expected + ", got " + type_name(v));
}

double get_number(const std::string& field, const json& v) {
  if (!v.is_number()) wrong_type(field, "a number", v);
  return v.get<double>();
}

// A number in [lo, hi] (open at lo when lo_open); written as negated tests so that inf fails too.
float ranged(const std::string& field, const json& v, double lo, double hi, bool lo_open = false) {
  const double x = get_number(field, v);
  const bool ok = (lo_open ? x > lo : x >= lo) && x <= hi && std::isfinite(x);
  if (!ok) {
    throw invalid_field(field, "expected a number in " + std::string(lo_open ? "(" : "[") + number_text(lo) + ", " +
                                   number_text(hi) + "], got " + number_text(x));
  }
  return static_cast<float>(x);
}

int64_t get_int(const std::string& field, const json& v) {
  if (!v.is_number_integer()) wrong_type(field, "an integer", v);
  if (v.is_number_unsigned() && v.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
    throw invalid_field(field, "the integer " + v.dump() + " is too large");
  }
  return v.get<int64_t>();
}

int64_t int_at_least(const std::string& field, const json& v, int64_t lo, int64_t hi) {
  const int64_t x = get_int(field, v);
  if (x < lo || x > hi) {
    throw invalid_field(field, "expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                                   std::to_string(x));
  }
  return x;
}

bool get_bool(const std::string& field, const json& v) {
  if (!v.is_boolean()) wrong_type(field, "true or false", v);
  return v.get<bool>();
}

std::string get_string(const std::string& field, const json& v) {
  if (!v.is_string()) wrong_type(field, "a string", v);
  return v.get<std::string>();
}

[[noreturn]] void not_supported(const std::string& field, const std::string& what = "") {
  throw invalid_field(field, (what.empty() ? std::string("this field") : what) +
                                 " is not supported by this server yet (see docs/http-api.md)");
}

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

// The deepest array/object nesting in `body`, counted outside strings; stops counting past `limit`. A
// cheap pass before parsing: nlohmann parses iteratively, but copying or walking a value (the template
// context, dump) recurses, and a body of 100k nested arrays would overflow the worker's stack there.
size_t nesting_depth(std::string_view body, size_t limit) {
  size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (const char c : body) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
      if (deepest > limit) return deepest;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest;
}

json parse_body(std::string_view body) {
  if (nesting_depth(body, kMaxJsonDepth) > kMaxJsonDepth) {
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

std::string parse_content(const std::string& field, const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (!v.is_array()) wrong_type(field, "a string or an array of content parts", v);
  std::string text;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string part_field = field + "[" + std::to_string(i) + "]";
    const json& part = v[i];
    if (!part.is_object()) wrong_type(part_field, "a content part object", part);
    const auto type = part.find("type");
    if (type == part.end()) throw invalid_field(part_field + ".type", "missing");
    const std::string kind = get_string(part_field + ".type", *type);
    if (kind != "text") not_supported(part_field + ".type", "content part type \"" + kind + "\"");
    std::optional<std::string> part_text;
    for (const auto& [key, value] : part.items()) {
      if (key == "type") continue;
      if (key != "text") throw invalid_field(part_field + "." + key, "unknown field");
      part_text = get_string(part_field + ".text", value);
    }
    if (!part_text) throw invalid_field(part_field + ".text", "missing");
    if (i > 0) text += "\n";
    text += *part_text;
  }
  return text;
}

std::vector<ChatMessage> parse_messages(const json& v) {
  if (!v.is_array()) wrong_type("messages", "an array of messages", v);
  if (v.empty()) throw invalid_field("messages", "must hold at least one message");
  std::vector<ChatMessage> messages;
  messages.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string field = "messages[" + std::to_string(i) + "]";
    const json& m = v[i];
    if (!m.is_object()) wrong_type(field, "a message object", m);
    ChatMessage message;
    bool has_role = false, has_content = false;
    for (const auto& [key, value] : m.items()) {
      const std::string f = field + "." + key;
      if (key == "role") {
        message.role = get_string(f, value);
        has_role = true;
        if (message.role == "tool" || message.role == "function") not_supported(f, "role \"" + message.role + "\"");
        if (message.role != "system" && message.role != "user" && message.role != "assistant") {
          throw invalid_field(f, "expected \"system\", \"user\" or \"assistant\", got \"" + message.role + "\"");
        }
      } else if (key == "content") {
        if (value.is_null()) throw invalid_field(f, "must not be null (tool calls are not supported yet)");
        message.content = parse_content(f, value);
        has_content = true;
      } else if (key == "name") {
        get_string(f, value);  // accepted, as OpenAI does, and not passed to the template
      } else if (key == "tool_calls" || key == "function_call" || key == "tool_call_id") {
        if (!value.is_null() && !(value.is_array() && value.empty())) not_supported(f);
      } else {
        throw invalid_field(f, "unknown field");
      }
    }
    if (!has_role) throw invalid_field(field + ".role", "missing");
    if (!has_content) throw invalid_field(field + ".content", "missing");
    messages.push_back(std::move(message));
  }
  return messages;
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
  bool has_messages = false;
  h["messages"] = [&](const json& v) {
    r.messages = parse_messages(v);
    has_messages = true;
  };
  h["chat_template_kwargs"] = [&r](const json& v) {
    if (!v.is_object()) wrong_type("chat_template_kwargs", "an object", v);
    for (const auto& [key, value] : v.items()) {
      if (key == "messages" || key == "add_generation_prompt") {
        throw invalid_field("chat_template_kwargs." + key, "is set by the server");
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
  h["tools"] = [](const json& v) {
    if (!v.is_array()) wrong_type("tools", "an array", v);
    if (!v.empty()) not_supported("tools");
  };
  h["tool_choice"] = [](const json& v) {
    if (!(v.is_string() && v.get<std::string>() == "none")) not_supported("tool_choice", "tool_choice other than \"none\"");
  };
  h["functions"] = [](const json&) { not_supported("functions"); };
  h["function_call"] = [](const json&) { not_supported("function_call"); };
  h["response_format"] = [](const json& v) {
    if (!v.is_object()) wrong_type("response_format", "an object", v);
    const auto type = v.find("type");
    if (type == v.end()) throw invalid_field("response_format.type", "missing");
    const std::string kind = get_string("response_format.type", *type);
    if (kind != "text") not_supported("response_format.type", "response_format \"" + kind + "\"");
    if (v.size() != 1) throw invalid_field("response_format", "type \"text\" takes no other field");
  };
  for (const char* field : {"prediction", "audio", "reasoning_effort", "web_search_options"}) {
    h[field] = [field](const json&) { not_supported(field); };
  }
  h["modalities"] = [](const json& v) {
    if (!(v.is_array() && v.size() == 1 && v[0] == "text")) not_supported("modalities", "modalities other than [\"text\"]");
  };
  dispatch(j, h);
  if (!has_messages) throw invalid_field("messages", "missing");
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
