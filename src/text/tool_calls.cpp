// Tool-call format detection and the Hermes parser (see tool_calls.h).
#include "text/tool_calls.h"

#include <algorithm>
#include <optional>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/jinja/value.h"
#include "text/json_depth.h"
#include "text/model_text.h"

namespace adallm::text {
namespace {

using json = nlohmann::ordered_json;

// Arguments nested deeper than this are not taken for a call: no tool schema nests so deep, and the JSON
// value is walked recursively to be written out again.
constexpr size_t kMaxCallDepth = 64;

// The longest suffix of `text` that is a proper prefix of `tag`: the bytes that must wait for more text.
size_t partial_tag(std::string_view text, std::string_view tag) {
  for (size_t len = std::min(tag.size() - 1, text.size()); len > 0; --len) {
    if (text.substr(text.size() - len) == tag.substr(0, len)) return len;
  }
  return 0;
}

std::optional<ToolCall> parse_call(std::string_view body) {
  if (json_nesting_depth(body, kMaxCallDepth) > kMaxCallDepth) return std::nullopt;
  const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto name = j.find("name");
  const auto arguments = j.find("arguments");
  if (name == j.end() || !name->is_string() || name->get_ref<const std::string&>().empty()) return std::nullopt;
  if (arguments == j.end() || !arguments->is_object()) return std::nullopt;
  return ToolCall{name->get<std::string>(), jinja::json_dumps(jinja::Value::from_json(*arguments), {})};
}

// A conversation with and without one tool: a template that renders tools writes them somewhere.
bool renders_tools(const ChatTemplate& tmpl, const ModelText& text) {
  json messages = json::array({json{{"role", "user"}, {"content", "What is the weather in Paris?"}}});
  json without = text.template_context(messages, true);
  without["tools"] = nullptr;  // what transformers passes when there are none
  json with = text.template_context(std::move(messages), true);
  with["tools"] = json::parse(R"([{"type": "function", "function": {"name": "get_weather",
      "description": "Get the weather of a city.", "parameters": {"type": "object",
      "properties": {"city": {"type": "string"}}, "required": ["city"]}}}])");
  try {
    return tmpl.render(with) != tmpl.render(without);
  } catch (const Error&) {
    // A template that refuses this conversation (it wants a system message first, say) is judged by its
    // source: a request with tools then meets the template's own error, which names the problem.
    return tmpl.source().find("tools") != std::string::npos;
  }
}

}  // namespace

const char* tool_call_format_name(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::hermes: return "hermes";
    default: return "none";
  }
}

ToolCallSupport detect_tool_calls(const ModelText& text) {
  ToolCallSupport support;
  if (!text.chat_template) return support;
  support.template_renders_tools = renders_tools(*text.chat_template, text);
  if (!support.template_renders_tools) return support;

  const std::string open(HermesToolCallParser::kOpen), close(HermesToolCallParser::kClose);
  bool in_vocabulary = false;
  if (text.tokenizer) {
    const auto open_id = text.tokenizer->token_to_id(open);
    const auto close_id = text.tokenizer->token_to_id(close);
    in_vocabulary = open_id && close_id;
    if (in_vocabulary && (text.tokenizer->is_special(*open_id) || text.tokenizer->is_special(*close_id))) {
      support.problem = "its tokenizer marks " + open + " / " + close +
                        " as special tokens, which are dropped from generated text, so calls cannot be read";
      return support;
    }
  }
  if (in_vocabulary || text.chat_template->source().find(open) != std::string::npos) {
    support.format = ToolCallFormat::hermes;
  } else {
    support.problem = "its chat template asks for tool calls in a format this server cannot parse yet (it reads "
                      "Hermes / Qwen3 calls: " + open + "{\"name\": ..., \"arguments\": ...}" + close + ")";
  }
  return support;
}

void HermesToolCallParser::push(std::string_view text, Output& out) {
  if (flushed_) return;
  buffer_ += text;
  for (;;) {
    switch (state_) {
      case State::plain:
        out.content += buffer_;
        buffer_.clear();
        return;
      case State::content:
      case State::between: {
        const size_t at = buffer_.find(kOpen);
        if (at == std::string::npos) {
          const size_t keep = partial_tag(buffer_, kOpen);
          if (state_ == State::content) out.content.append(buffer_, 0, buffer_.size() - keep);
          buffer_.erase(0, buffer_.size() - keep);
          return;
        }
        if (state_ == State::content) out.content.append(buffer_, 0, at);
        buffer_.erase(0, at + kOpen.size());
        state_ = State::call;
        scanned_ = 0;
        break;
      }
      case State::call: {
        const size_t at = buffer_.find(kClose, scanned_);
        if (at == std::string::npos) {
          scanned_ = buffer_.size() - partial_tag(buffer_, kClose);
          return;
        }
        if (auto call = parse_call(std::string_view(buffer_).substr(0, at))) {
          out.calls.push_back(std::move(*call));
          ++num_calls_;
          buffer_.erase(0, at + kClose.size());
          state_ = State::between;
          break;
        }
        out.content += kOpen;
        out.content += buffer_;
        buffer_.clear();
        state_ = State::plain;
        return;
      }
    }
  }
}

void HermesToolCallParser::flush(Output& out) {
  if (flushed_) return;
  flushed_ = true;
  if (state_ == State::content) {
    out.content += buffer_;
  } else if (state_ == State::call) {
    if (auto call = parse_call(buffer_)) {
      out.calls.push_back(std::move(*call));
      ++num_calls_;
    } else {
      out.content += kOpen;
      out.content += buffer_;
    }
  }
  buffer_.clear();
}

HermesToolCallParser::Output parse_hermes_tool_calls(std::string_view text) {
  HermesToolCallParser parser;
  HermesToolCallParser::Output out;
  parser.push(text, out);
  parser.flush(out);
  return out;
}

}  // namespace adallm::text
