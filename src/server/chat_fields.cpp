// The chat request's structured fields (see chat_fields.h): each message, with its content parts, tool
// calls and tool_call_id; the tools and tool_choice.
#include "server/chat_fields.h"

#include <algorithm>
#include <map>

#include "server/request_fields.h"
#include "text/json_depth.h"

namespace adallm::server {
namespace {

using namespace fields;

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

// A JSON text inside a string field (tool-call arguments): parsed with the body's limits.
json parse_embedded_json(const std::string& field, const std::string& text) {
  if (text::json_nesting_depth(text, kMaxJsonDepth) > kMaxJsonDepth) {
    throw invalid_field(field, "nests arrays and objects deeper than " + std::to_string(kMaxJsonDepth) + " levels");
  }
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw invalid_field(field, std::string("expected a JSON text (the arguments object), got an invalid one: ") +
                                   e.what());
  }
}

void expect_function_type(const std::string& field, const json& v) {
  const std::string type = get_string(field, v);
  if (type != "function") throw invalid_field(field, "expected \"function\", got \"" + type + "\"");
}

// An assistant message's tool call: {"id", "type": "function", "function": {"name", "arguments"}}.
MessageToolCall parse_message_tool_call(const std::string& field, const json& v) {
  if (!v.is_object()) wrong_type(field, "a tool call object", v);
  MessageToolCall call;
  bool has_id = false, has_type = false, has_function = false, has_name = false, has_arguments = false;
  each_field(field, v, {
    {"id", [&](const std::string& f, const json& x) { call.id = get_string(f, x); has_id = true; }},
    // A streamed call's position: clients that rebuild a message from stream deltas send it back.
    {"index", [](const std::string& f, const json& x) { get_int(f, x); }},
    {"type", [&](const std::string& f, const json& x) { expect_function_type(f, x); has_type = true; }},
    {"function", [&](const std::string& f, const json& x) {
       if (!x.is_object()) wrong_type(f, "an object", x);
       has_function = true;
       each_field(f, x, {
         {"name", [&](const std::string& g, const json& y) { call.name = get_string(g, y); has_name = true; }},
         {"arguments", [&](const std::string& g, const json& y) {
            call.arguments = parse_embedded_json(g, get_string(g, y));
            has_arguments = true;
          }},
       });
     }},
  });
  if (!has_id) throw invalid_field(field + ".id", "missing");
  if (!has_type) throw invalid_field(field + ".type", "missing");
  if (!has_function) throw invalid_field(field + ".function", "missing");
  if (!has_name || call.name.empty()) {
    throw invalid_field(field + ".function.name", has_name ? "must not be empty" : "missing");
  }
  if (!has_arguments) throw invalid_field(field + ".function.arguments", "missing");
  return call;
}

ChatMessage parse_message(const std::string& field, const json& m) {
  if (!m.is_object()) wrong_type(field, "a message object", m);
  ChatMessage message;
  bool has_role = false, has_content = false, has_tool_calls = false, has_tool_call_id = false;
  for (const auto& [key, value] : m.items()) {
    const std::string f = field + "." + key;
    if (key == "role") {
      message.role = get_string(f, value);
      has_role = true;
      if (message.role == "function") not_supported(f, "role \"function\" (use tools and the \"tool\" role)");
      if (message.role != "system" && message.role != "user" && message.role != "assistant" && message.role != "tool") {
        throw invalid_field(f, "expected \"system\", \"user\", \"assistant\" or \"tool\", got \"" + message.role +
                                   "\"");
      }
    } else if (key == "content") {
      if (value.is_null()) continue;  // allowed beside tool calls, checked below
      message.content = parse_content(f, value);
      has_content = true;
    } else if (key == "name") {
      get_string(f, value);  // accepted, as OpenAI does, and not passed to the template
    } else if (key == "tool_calls") {
      if (value.is_null()) continue;
      if (!value.is_array()) wrong_type(f, "an array of tool calls", value);
      has_tool_calls = true;
      for (size_t j = 0; j < value.size(); ++j) {
        message.tool_calls.push_back(parse_message_tool_call(f + "[" + std::to_string(j) + "]", value[j]));
      }
    } else if (key == "tool_call_id") {
      if (value.is_null()) continue;
      message.tool_call_id = get_string(f, value);
      has_tool_call_id = true;
    } else if (key == "function_call") {
      if (!value.is_null()) not_supported(f, "function_call (the deprecated functions API; use tool_calls)");
    } else if (key == "refusal") {
      // Fields of a response message that clients send back with it (the openai SDKs' finalMessage());
      // the template has no use for them.
      if (!value.is_null()) get_string(f, value);
    } else if (key == "annotations") {
      if (!value.is_null() && !value.is_array()) wrong_type(f, "an array", value);
    } else {
      throw invalid_field(f, "unknown field");
    }
  }
  if (!has_role) throw invalid_field(field + ".role", "missing");
  if (has_tool_calls && message.role != "assistant") {
    throw invalid_field(field + ".tool_calls", "only assistant messages have tool calls");
  }
  if (has_tool_call_id != (message.role == "tool")) {
    throw invalid_field(field + ".tool_call_id", message.role == "tool" ? "missing: a tool message answers a tool call"
                                                                         : "only tool messages answer a tool call");
  }
  if (!has_content && message.tool_calls.empty()) {
    throw invalid_field(field + ".content", message.role == "assistant" ? "missing (or null) without tool_calls"
                                                                       : "missing (or null)");
  }
  return message;
}

// OpenAI's rule for function names: ^[a-zA-Z0-9_-]{1,64}$. It also keeps names plain text inside the
// prompts that templates write (JSON, XML-like tags).
void check_function_name(const std::string& field, const std::string& name) {
  const bool ok = !name.empty() && name.size() <= kMaxToolNameBytes &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                           c == '-';
                  });
  if (!ok) {
    throw invalid_field(field, "expected 1 to " + std::to_string(kMaxToolNameBytes) +
                                   " of a-z, A-Z, 0-9, '_' and '-', got " + json(name).dump());
  }
}

}  // namespace

std::vector<ChatMessage> parse_messages(const json& v) {
  if (!v.is_array()) wrong_type("messages", "an array of messages", v);
  if (v.empty()) throw invalid_field("messages", "must hold at least one message");
  std::vector<ChatMessage> messages;
  messages.reserve(v.size());
  for (size_t i = 0; i < v.size(); ++i) messages.push_back(parse_message("messages[" + std::to_string(i) + "]", v[i]));
  return messages;
}

// tools: [{"type": "function", "function": {"name", "description"?, "parameters"?, "strict"?}}], kept as
// written for the chat template once every field checks out.
json parse_tools(const json& v) {
  if (!v.is_array()) wrong_type("tools", "an array of tools", v);
  if (v.size() > kMaxTools) {
    throw invalid_field("tools", "at most " + std::to_string(kMaxTools) + " tools, got " + std::to_string(v.size()));
  }
  std::map<std::string, size_t> seen;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string field = "tools[" + std::to_string(i) + "]";
    if (!v[i].is_object()) wrong_type(field, "a tool object", v[i]);
    bool has_type = false, has_function = false, has_name = false;
    std::string name;
    each_field(field, v[i], {
      {"type", [&](const std::string& f, const json& x) { expect_function_type(f, x); has_type = true; }},
      {"function", [&](const std::string& f, const json& x) {
         if (!x.is_object()) wrong_type(f, "an object", x);
         has_function = true;
         each_field(f, x, {
           {"name", [&](const std::string& g, const json& y) {
              name = get_string(g, y);
              check_function_name(g, name);
              has_name = true;
            }},
           {"description", [](const std::string& g, const json& y) { get_string(g, y); }},
           {"parameters", [](const std::string& g, const json& y) {
              if (!y.is_object()) wrong_type(g, "a JSON Schema object", y);
            }},
           {"strict", [](const std::string& g, const json& y) { get_bool(g, y); }},
         });
       }},
    });
    if (!has_type) throw invalid_field(field + ".type", "missing");
    if (!has_function) throw invalid_field(field + ".function", "missing");
    if (!has_name) throw invalid_field(field + ".function.name", "missing");
    const auto [it, fresh] = seen.emplace(name, i);
    if (!fresh) {
      throw invalid_field(field + ".function.name", "\"" + name + "\" is already the name of tools[" +
                                                        std::to_string(it->second) + "]");
    }
  }
  return v;
}

std::string parse_tool_choice(const json& v, std::string& mode) {
  if (v.is_string()) {
    mode = v.get<std::string>();
    if (mode != "none" && mode != "auto" && mode != "required") {
      throw invalid_field("tool_choice", "expected \"none\", \"auto\", \"required\" or a function object, got \"" +
                                             mode + "\"");
    }
    return "";
  }
  if (!v.is_object()) wrong_type("tool_choice", "a string or an object", v);
  mode = "function";
  std::string name;
  bool has_type = false, has_name = false;
  each_field("tool_choice", v, {
    {"type", [&](const std::string& f, const json& x) { expect_function_type(f, x); has_type = true; }},
    {"function", [&](const std::string& f, const json& x) {
       if (!x.is_object()) wrong_type(f, "an object", x);
       each_field(f, x, {{"name", [&](const std::string& g, const json& y) {
                           name = get_string(g, y);
                           has_name = true;
                         }}});
     }},
  });
  if (!has_type) throw invalid_field("tool_choice.type", "missing");
  if (!has_name) throw invalid_field("tool_choice.function.name", "missing");
  return name;
}

ToolChoice resolve_tool_choice(const json& tools, const std::optional<std::string>& mode, const std::string& name) {
  if (mode == "function") {
    const bool known = std::any_of(tools.begin(), tools.end(),
                                   [&](const json& t) { return t.at("function").at("name") == name; });
    if (!known) throw invalid_field("tool_choice.function.name", "\"" + name + "\" is not the name of any of tools");
  }
  if (mode == "required" || mode == "function") {
    if (tools.empty()) throw invalid_field("tool_choice", "\"" + *mode + "\" needs tools");
    return ToolChoice::forced;
  }
  if (mode == "none") return ToolChoice::none;
  return tools.empty() ? ToolChoice::none : ToolChoice::automatic;
}

}  // namespace adallm::server
