// The reasoning splitter and its load-time check (see reasoning.h).
#include "text/reasoning.h"

#include <algorithm>

#include "core/error.h"
#include "text/model_text.h"
#include "text/stop_strings.h"

namespace adallm::text {
namespace {

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

size_t first_non_space(std::string_view text, size_t from = 0) {
  while (from < text.size() && is_space(text[from])) ++from;
  return from;
}

}  // namespace

const char* reasoning_format_name(ReasoningFormat format) {
  switch (format) {
    case ReasoningFormat::qwen3: return "qwen3";
    case ReasoningFormat::deepseek_r1: return "deepseek_r1";
    default: return "none";
  }
}

std::optional<ReasoningFormat> parse_reasoning_format(std::string_view name) {
  if (name == "qwen3") return ReasoningFormat::qwen3;
  if (name == "deepseek_r1") return ReasoningFormat::deepseek_r1;
  return std::nullopt;
}

void check_reasoning_support(const ModelText& text, ReasoningFormat format) {
  if (format == ReasoningFormat::none) return;
  const std::string what = std::string("--reasoning-parser ") + reasoning_format_name(format);
  const std::string open(ReasoningParser::kOpen), close(ReasoningParser::kClose);
  bool known = text.chat_template && text.chat_template->source().find(close) != std::string::npos;
  if (text.tokenizer) {
    for (const std::string& tag : {open, close}) {
      const auto id = text.tokenizer->token_to_id(tag);
      if (!id) continue;
      known = true;
      if (text.tokenizer->is_special(*id)) {
        throw Error(what + ": the tokenizer marks " + tag + " as a special token, which is dropped from generated "
                    "text, so the reasoning cannot be read")
            .hint("this model's reasoning needs another parser; serve it without --reasoning-parser");
      }
    }
  }
  if (!known) {
    throw Error(what + ": neither the vocabulary nor the chat template of this model knows " + open + " / " + close +
                ", so it writes no reasoning this parser can read")
        .hint("serve it without --reasoning-parser");
  }
}

bool prompt_opens_reasoning(std::string_view prompt) {
  size_t end = prompt.size();
  while (end > 0 && is_space(prompt[end - 1])) --end;
  return prompt.substr(0, end).ends_with(ReasoningParser::kOpen);
}

void ReasoningParser::push(std::string_view text, Output& out) {
  if (flushed_) return;
  buffer_ += text;
  for (;;) {
    switch (state_) {
      case State::start: {
        const size_t i = first_non_space(buffer_);
        if (i == buffer_.size()) return;
        const std::string_view rest = std::string_view(buffer_).substr(i);
        if (rest.starts_with(kOpen)) {
          buffer_.erase(0, i + kOpen.size());
          state_ = State::reasoning;
        } else if (kOpen.starts_with(rest)) {
          return;
        } else if (opened_in_prompt_) {
          state_ = State::reasoning;
        } else {
          state_ = State::content;  // no reasoning: the text as it is, its leading whitespace included
          content_started_ = true;
        }
        break;
      }
      case State::reasoning: {
        const size_t begin = reasoning_started_ ? 0 : first_non_space(buffer_);
        const size_t at = buffer_.find(kClose, begin);
        size_t end = at != std::string::npos ? at : buffer_.size() - partial_tag_suffix(buffer_, kClose);
        while (end > begin && is_space(buffer_[end - 1])) --end;
        if (end > begin) {
          out.reasoning.append(buffer_, begin, end - begin);
          reasoning_started_ = true;
        }
        if (at == std::string::npos) {
          buffer_.erase(0, std::max(begin, end));
          return;
        }
        buffer_.erase(0, at + kClose.size());
        state_ = State::content;
        break;
      }
      case State::content: {
        if (!content_started_) {
          const size_t i = first_non_space(buffer_);
          if (i == buffer_.size()) {
            buffer_.clear();
            return;
          }
          buffer_.erase(0, i);
          content_started_ = true;
        }
        out.content += buffer_;
        buffer_.clear();
        return;
      }
    }
  }
}

void ReasoningParser::flush(Output& out) {
  if (flushed_) return;
  flushed_ = true;
  if (state_ == State::start && !opened_in_prompt_) {
    out.content += buffer_;  // whitespace, or a partial <think>: no reasoning
  } else if (state_ != State::content) {
    // Cut off inside the reasoning (or, opened in the prompt, before any of it): all of it is reasoning.
    const size_t begin = reasoning_started_ ? 0 : first_non_space(buffer_);
    size_t end = buffer_.size();
    while (end > begin && is_space(buffer_[end - 1])) --end;
    out.reasoning.append(buffer_, begin, end - begin);
  } else if (content_started_) {
    out.content += buffer_;
  }
  buffer_.clear();
}

ReasoningParser::Output parse_reasoning(std::string_view text, bool opened_in_prompt) {
  ReasoningParser parser(opened_in_prompt);
  ReasoningParser::Output out;
  parser.push(text, out);
  parser.flush(out);
  return out;
}

}  // namespace adallm::text
