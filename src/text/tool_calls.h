// Tool calls in generated text, in the format a model's chat template teaches it, and which format that is.
// Hermes (Qwen2.5, Qwen3, Hermes 2 Pro / 3): each call is `<tool_call>\n{"name": ..., "arguments": {...}}\n
// </tool_call>`. The parser streams: the server pushes text as it is generated and gets back the content
// that can no longer be the start of a call, and each call once its closing tag has arrived. Call ids,
// requests and the OpenAI JSON are the server's.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace adallm::text {

struct ModelText;

enum class ToolCallFormat { none, hermes };
const char* tool_call_format_name(ToolCallFormat format);  // "none", "hermes"

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
// parser would never see them).
ToolCallSupport detect_tool_calls(const ModelText& text);

struct ToolCall {
  std::string name;
  // The arguments object as JSON text, written as Python's json.dumps(ensure_ascii=False) writes it
  // (what vLLM returns, and what a chat template's tojson writes when the call comes back in a request).
  std::string arguments;
};

// The streaming parser of Hermes tool calls. The rules, the same whether text comes at once or in pieces:
// - text before the first <tool_call> is content; a partial "<tool_call" at the end of what was pushed is
//   held back until the next piece rules it in or out (as stop strings are);
// - each <tool_call>...</tool_call> whose body is a JSON object with a non-empty string "name" and an
//   object "arguments" is a call (other keys are ignored); text between and after calls is dropped;
// - a call that does not parse is no call: it and all text after it are content, tags included (when it
//   is the first, the whole text is content, as vLLM's hermes parser leaves it);
// - at the end, an unclosed <tool_call> is parsed the same way (a model may end without the closing tag).
class HermesToolCallParser {
 public:
  static constexpr std::string_view kOpen = "<tool_call>";
  static constexpr std::string_view kClose = "</tool_call>";

  struct Output {
    std::string content;
    std::vector<ToolCall> calls;
  };

  // Appends what `text` releases to `out`.
  void push(std::string_view text, Output& out);
  // The end of generation: appends what was held back. Later pushes and flushes add nothing.
  void flush(Output& out);

  size_t num_calls() const { return num_calls_; }

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
  size_t num_calls_ = 0;
  bool flushed_ = false;
};

// All of `text` at once (push and flush).
HermesToolCallParser::Output parse_hermes_tool_calls(std::string_view text);

}  // namespace adallm::text
