// Tool calls in generated text, in the format a model's chat template teaches it, and which format that is.
// Hermes (Qwen2.5, Qwen3, Hermes 2 Pro / 3): each call is `<tool_call>\n{"name": ..., "arguments": {...}}\n
// </tool_call>`. Llama 3.1 / 3.2 / 3.3 JSON: the answer is `{"name": ..., "parameters": {...}}`, several
// separated by ";". The parsers stream: the server pushes text as it is
// generated and gets back the content that can no longer be part of a call, and each call once it is
// whole. Call ids, requests and the OpenAI JSON are the server's.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace adallm::text {

struct ModelText;

enum class ToolCallFormat { none, hermes, llama3_json };
const char* tool_call_format_name(ToolCallFormat format);  // "none", "hermes", "llama3_json"

// What a model can do with the tools of a request, decided once at load.
struct ToolCallSupport {
  // The chat template writes tools into the prompt: its render changes when it is given one.
  bool template_renders_tools = false;
  ToolCallFormat format = ToolCallFormat::none;
  // Why `format` is none although the template renders tools (for the error a request with tools gets).
  std::string problem;
};

// Hermes when the vocabulary has <tool_call> and </tool_call> or the chat template writes "<tool_call>",
// and neither tag is a special token (the detokenizer drops special tokens from generated text, so the
// parser would never see them). Else Llama 3 JSON when the template asks for calls in the format
// {"name": function name, "parameters": ...} (what Meta's Llama 3.1 / 3.2 / 3.3 templates write).
ToolCallSupport detect_tool_calls(const ModelText& text);

struct ToolCall {
  std::string name;
  // The arguments object as JSON text, written as Python's json.dumps(ensure_ascii=False) writes it
  // (what vLLM returns, and what a chat template's tojson writes when the call comes back in a request).
  std::string arguments;
};

struct ToolCallOutput {
  std::string content;
  std::vector<ToolCall> calls;
};

// A streaming tool-call parser: push text as it comes, flush at the end. The result never depends on
// where the pieces end.
class ToolCallParser {
 public:
  using Output = ToolCallOutput;
  virtual ~ToolCallParser() = default;
  // Appends what `text` releases to `out`.
  virtual void push(std::string_view text, Output& out) = 0;
  // The end of generation: appends what was held back. Later pushes and flushes add nothing.
  virtual void flush(Output& out) = 0;
  size_t num_calls() const { return num_calls_; }

 protected:
  size_t num_calls_ = 0;
  bool flushed_ = false;
};

// The parser of `format`; null for none.
std::unique_ptr<ToolCallParser> make_tool_call_parser(ToolCallFormat format);

// The streaming parser of Hermes tool calls. The rules, the same whether text comes at once or in pieces:
// - text before the first <tool_call> is content; a partial "<tool_call" at the end of what was pushed is
//   held back until the next piece rules it in or out (as stop strings are);
// - each <tool_call>...</tool_call> whose body is a JSON object with a non-empty string "name" and an
//   object "arguments" is a call (other keys are ignored); text between and after calls is dropped;
// - a call that does not parse is no call: it and all text after it are content, tags included (when it
//   is the first, the whole text is content, as vLLM's hermes parser leaves it);
// - at the end, an unclosed <tool_call> is parsed the same way (a model may end without the closing tag).
class HermesToolCallParser final : public ToolCallParser {
 public:
  static constexpr std::string_view kOpen = "<tool_call>";
  static constexpr std::string_view kClose = "</tool_call>";

  void push(std::string_view text, Output& out) override;
  void flush(Output& out) override;

 private:
  enum class State {
    content,  // before the first call: buffer_ may be the start of kOpen
    call,     // inside a call: buffer_ is its text so far, kOpen excluded
    between,  // after a call: buffer_ may be the start of kOpen; the rest is dropped
    plain,    // after a call that did not parse: everything is content
  };
  State state_ = State::content;
  std::string buffer_;
  size_t scanned_ = 0;  // in `call`: bytes of buffer_ known not to start kClose
};

// The streaming parser of Llama 3 JSON tool calls (vLLM's llama3_json). The rules, the same whether text
// comes at once or in pieces:
// - leading whitespace and a leading "<|python_tag|>" (when the tokenizer does not drop it as special)
//   are held; when the first other character is not "{", the whole text is content, released at once;
// - otherwise the text is read as JSON objects separated by ";" (whitespace around allowed), each a call
//   when it has a non-empty string "name" and an object "parameters" (or "arguments", which vLLM takes
//   too); a call is released once the ";" after it, or the end, has arrived;
// - when the first object is no call, or anything but ";" follows it, the whole text is content, as vLLM
//   answers; when a later one is no call (or is followed by something else), it and all text after it are
//   content, the calls before it stay calls (vLLM would make the whole text content; but those calls
//   were streamed already);
// - an object cut off by the end is no call.
class Llama3JsonToolCallParser final : public ToolCallParser {
 public:
  static constexpr std::string_view kPythonTag = "<|python_tag|>";

  void push(std::string_view text, Output& out) override;
  void flush(Output& out) override;

 private:
  enum class State {
    start,  // nothing but whitespace (and a partial kPythonTag) yet: buffer_ holds it
    calls,  // reading objects: buffer_ starts at the first one not released
    plain,  // everything is content
  };
  void read(Output& out);
  void fail(Output& out);
  State state_ = State::start;
  std::string raw_;     // all text pushed while no call was released: the content if the first fails
  std::string buffer_;
  size_t pos_ = 0;      // in `calls`: bytes of buffer_ read
  bool in_object_ = false;
  size_t object_begin_ = 0;
  int depth_ = 0;
  bool in_string_ = false, escaped_ = false;
  std::optional<ToolCall> pending_;  // a whole call waiting for the ";" or the end after it
};

// All of `text` at once (push and flush).
ToolCallOutput parse_hermes_tool_calls(std::string_view text);
ToolCallOutput parse_llama3_json_tool_calls(std::string_view text);

}  // namespace adallm::text
