// The chat request's structured fields, for parse_chat_request (server/openai_request.cpp): messages (content
// parts, assistant tool calls, tool results), tools and tool_choice. Each throws an ApiError 400 naming
// the field (`messages[2].tool_calls[0].function.arguments`, `tools[1].function.name`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "server/openai_request.h"

namespace adallm::server {

std::vector<ChatMessage> parse_messages(const nlohmann::ordered_json& v);
// The tools, validated and kept as written (they go to the chat template).
nlohmann::ordered_json parse_tools(const nlohmann::ordered_json& v);
// tool_choice: "none" | "auto" | "required" | {"type": "function", "function": {"name"}}. Returns the
// named function's name (empty for the strings); `mode` gets the string, or "function".
std::string parse_tool_choice(const nlohmann::ordered_json& v, std::string& mode);
// The tool fields together (`mode` absent: tool_choice not given): a named function must be one of the
// tools, and forcing a call ("required", named: ToolChoice::forced) needs tools. Auto without tools is none.
ToolChoice resolve_tool_choice(const nlohmann::ordered_json& tools, const std::optional<std::string>& mode,
                               const std::string& name);

}  // namespace adallm::server
