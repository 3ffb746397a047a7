// Reasoning text in generated output: the thinking of Qwen3 and DeepSeek-R1 style models, written
// `<think>\n...\n</think>\n\n` before the answer, split from the answer as the server streams it
// (vLLM's --reasoning-parser qwen3 / deepseek_r1). Whether a model has the tags is checked here at load;
// which requests parse reasoning, and the OpenAI fields it goes into, are the server's.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace adallm::text {

struct ModelText;

// The parsers `--reasoning-parser` names. Both read the same thing: qwen3 (Qwen3's template leaves
// `<think>` to the model) and deepseek_r1 (DeepSeek-R1's and Qwen3-Thinking-2507's templates end the
// prompt with `<think>\n`); the parser takes either, so the two are one here.
enum class ReasoningFormat { none, qwen3, deepseek_r1 };
const char* reasoning_format_name(ReasoningFormat format);  // "none", "qwen3", "deepseek_r1"
std::optional<ReasoningFormat> parse_reasoning_format(std::string_view name);  // nullopt: unknown name

// Throws adallm::Error at load when the model cannot have its reasoning read: neither its vocabulary nor
// its chat template knows <think> and </think>, or its tokenizer marks them special (the detokenizer drops
// special tokens from generated text, so the parser would never see them).
void check_reasoning_support(const ModelText& text, ReasoningFormat format);

// True when a rendered prompt ends inside an opened <think> (whitespace after the tag allowed): the answer
// starts in its reasoning without writing the tag.
bool prompt_opens_reasoning(std::string_view prompt);

// The streaming splitter of reasoning and content. The rules, the same whether text comes at once or in
// pieces:
// - the output starts in reasoning when the prompt opened it (prompt_opens_reasoning) or when its text
//   starts with <think> (whitespace before it allowed); else all of it is content, unchanged;
// - in reasoning, the text up to the first </think> is the reasoning, without the tags and without the
//   whitespace at its two ends; the text after </think>, without its leading whitespace, is content;
// - an output that ends without </think> (max_tokens, a stop string) is all reasoning;
// - a partial tag, and whitespace that may turn out to be trimmed, are held back until the next piece
//   decides (the same hold-back as stop strings: partial_tag_suffix).
class ReasoningParser {
 public:
  static constexpr std::string_view kOpen = "<think>";
  static constexpr std::string_view kClose = "</think>";

  struct Output {
    std::string reasoning;
    std::string content;
  };

  explicit ReasoningParser(bool opened_in_prompt) : opened_in_prompt_(opened_in_prompt) {}

  // Appends what `text` releases to `out`.
  void push(std::string_view text, Output& out);
  // The end of generation: appends what was held back. Later pushes and flushes add nothing.
  void flush(Output& out);

 private:
  enum class State {
    start,      // nothing decided: buffer_ is whitespace and maybe the start of kOpen
    reasoning,  // buffer_: held back (leading whitespace, or trailing whitespace and a partial kClose)
    content,    // after </think> (leading whitespace held back) or an output without reasoning
  };
  bool opened_in_prompt_;
  State state_ = State::start;
  std::string buffer_;
  bool reasoning_started_ = false;  // in reasoning: some non-whitespace was released
  bool content_started_ = false;    // in content: leading whitespace is no longer trimmed
  bool flushed_ = false;
};

// All of `text` at once (push and flush).
ReasoningParser::Output parse_reasoning(std::string_view text, bool opened_in_prompt);

}  // namespace adallm::text
