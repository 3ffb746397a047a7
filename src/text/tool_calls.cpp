// Tool-call format detection and the Hermes and Llama 3 JSON parsers (see tool_calls.h).
#include "text/tool_calls.h"

#include <algorithm>
#include <optional>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/jinja/value.h"
#include "text/json_depth.h"
#include "text/model_text.h"
#include "text/stop_strings.h"

namespace adallm::text {
namespace {

using json = nlohmann::ordered_json;

// Arguments nested deeper than this are not taken for a call: no tool schema nests so deep, and the JSON
// value is walked recursively to be written out again.
constexpr size_t kMaxCallDepth = 64;

// The phrase Meta's Llama 3.1 / 3.2 / 3.3 chat templates teach calls with.
constexpr std::string_view kLlama3Format = R"({"name": function name, "parameters")";

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

// A call's JSON object: a non-empty string "name" and an object under `arguments_key` (Llama 3: under
// "parameters", else "arguments").
std::optional<ToolCall> parse_call(std::string_view body, bool llama3 = false) {
  if (json_nesting_depth(body, kMaxCallDepth) > kMaxCallDepth) return std::nullopt;
  const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  const auto name = j.find("name");
  auto arguments = j.find(llama3 ? "parameters" : "arguments");
  if (llama3 && arguments == j.end()) arguments = j.find("arguments");
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
    case ToolCallFormat::llama3_json: return "llama3_json";
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
  } else if (text.chat_template->source().find(kLlama3Format) != std::string::npos) {
    support.format = ToolCallFormat::llama3_json;
  } else {
    support.problem = "its chat template asks for tool calls in a format this server cannot parse yet (it reads "
                      "Hermes / Qwen3 calls, " + open + "{\"name\": ..., \"arguments\": ...}" + close +
                      ", and Llama 3 JSON calls, {\"name\": ..., \"parameters\": ...})";
  }
  return support;
}

std::unique_ptr<ToolCallParser> make_tool_call_parser(ToolCallFormat format) {
  switch (format) {
    case ToolCallFormat::hermes: return std::make_unique<HermesToolCallParser>();
    case ToolCallFormat::llama3_json: return std::make_unique<Llama3JsonToolCallParser>();
    default: return nullptr;
  }
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
          const size_t keep = partial_tag_suffix(buffer_, kOpen);
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
          scanned_ = buffer_.size() - partial_tag_suffix(buffer_, kClose);
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

void Llama3JsonToolCallParser::push(std::string_view text, Output& out) {
  if (flushed_) return;
  if (state_ == State::plain) {
    out.content += text;
    return;
  }
  if (num_calls_ == 0) raw_ += text;
  buffer_ += text;
  if (state_ == State::start) {
    size_t i = 0;
    while (i < buffer_.size() && is_space(buffer_[i])) ++i;
    if (i == buffer_.size()) return;
    const std::string_view rest = std::string_view(buffer_).substr(i);
    if (rest.starts_with(kPythonTag)) {
      buffer_.erase(0, i + kPythonTag.size());
    } else if (kPythonTag.starts_with(rest)) {
      return;
    } else if (rest.front() == '{') {
      buffer_.erase(0, i);
    } else {
      fail(out);
      return;
    }
    state_ = State::calls;
    pos_ = 0;
  }
  read(out);
}

void Llama3JsonToolCallParser::read(Output& out) {
  while (state_ == State::calls) {
    if (!in_object_) {
      while (pos_ < buffer_.size() && is_space(buffer_[pos_])) ++pos_;
      if (pos_ == buffer_.size()) return;
      if (pending_) {
        if (buffer_[pos_] != ';') return fail(out);
        out.calls.push_back(*std::exchange(pending_, std::nullopt));
        ++num_calls_;
        raw_.clear();
        buffer_.erase(0, pos_ + 1);
        pos_ = 0;
        continue;
      }
      if (buffer_[pos_] != '{') return fail(out);
      in_object_ = true;
      object_begin_ = pos_;
      depth_ = 0;
      in_string_ = escaped_ = false;
    }
    // Braces outside strings: the object ends where its first brace is matched.
    for (; pos_ < buffer_.size() && in_object_; ++pos_) {
      const char c = buffer_[pos_];
      if (in_string_) {
        if (escaped_) {
          escaped_ = false;
        } else if (c == '\\') {
          escaped_ = true;
        } else if (c == '"') {
          in_string_ = false;
        }
      } else if (c == '"') {
        in_string_ = true;
      } else if (c == '{') {
        ++depth_;
      } else if (c == '}' && --depth_ == 0) {
        in_object_ = false;
      }
    }
    if (in_object_) return;
    pending_ = parse_call(std::string_view(buffer_).substr(object_begin_, pos_ - object_begin_), true);
    if (!pending_) return fail(out);
  }
}

void Llama3JsonToolCallParser::fail(Output& out) {
  if (num_calls_ == 0) {
    out.content += raw_;
  } else {
    size_t i = 0;  // the whitespace after the last ";" separated, it is no part of the content
    while (i < buffer_.size() && is_space(buffer_[i])) ++i;
    out.content.append(buffer_, i);
  }
  raw_.clear();
  buffer_.clear();
  pending_.reset();
  in_object_ = false;
  state_ = State::plain;
}

void Llama3JsonToolCallParser::flush(Output& out) {
  if (flushed_) return;
  if (state_ == State::start || (state_ == State::calls && (in_object_ || (num_calls_ == 0 && !pending_)))) {
    fail(out);  // only whitespace (or a python tag), an object cut off, or nothing after the tag
  } else if (state_ == State::calls && pending_) {
    out.calls.push_back(std::move(*pending_));
    ++num_calls_;
  }
  buffer_.clear();
  raw_.clear();
  pending_.reset();
  flushed_ = true;
}

namespace {

ToolCallOutput parse_all(ToolCallParser& parser, std::string_view text) {
  ToolCallOutput out;
  parser.push(text, out);
  parser.flush(out);
  return out;
}

}  // namespace

ToolCallOutput parse_hermes_tool_calls(std::string_view text) {
  HermesToolCallParser parser;
  return parse_all(parser, text);
}

ToolCallOutput parse_llama3_json_tool_calls(std::string_view text) {
  Llama3JsonToolCallParser parser;
  return parse_all(parser, text);
}

}  // namespace adallm::text
