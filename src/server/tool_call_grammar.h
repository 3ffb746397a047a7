// Forced tool calls (tool_choice "required" or a named function) as a grammar over the format the chat
// template teaches: Hermes `<tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>` (calls
// separated by "\n") or Llama 3 JSON `{"name": "NAME", "parameters": ARGS}` (separated by "; "), ARGS held
// to that tool's parameters schema. The serving layer turns it into the request's TokenConstraint like a
// response_format's.
#pragma once

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "structured/grammar.h"
#include "text/tool_calls.h"

namespace adallm::server {

// `tools`: the request's validated tools. `name` empty: "required", a call of any of them (one or more
// when `parallel`); else exactly one call of that function. `format`: hermes or llama3_json. ApiError 400 naming
// tools[i].function.parameters... for a parameters schema outside what structured/json_schema.h supports.
std::shared_ptr<const structured::Grammar> tool_call_grammar(const nlohmann::ordered_json& tools,
                                                             const std::string& name, bool parallel,
                                                             text::ToolCallFormat format = text::ToolCallFormat::hermes);

}  // namespace adallm::server
