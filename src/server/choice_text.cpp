// One choice's token-to-text path (see choice_text.h).
#include "server/choice_text.h"

#include <cmath>
#include <cstdio>
#include <random>
#include <span>
#include <string_view>
#include <utility>

namespace adallm::server {
namespace {

int64_t code_points(std::string_view text) {
  int64_t n = 0;
  for (const char ch : text) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
  return n;
}

float finite_logprob(float x) { return std::isfinite(x) ? x : kLogprobFloor; }

// OpenAI's ids are "call_" and 24 characters; random, so that ids of different answers do not collide
// when a client keeps a conversation's calls together.
std::string new_tool_call_id() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  char hex[25];
  std::snprintf(hex, sizeof hex, "%016llx%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() & 0xffffffffULL));
  return std::string("call_") + hex;
}

}  // namespace

ChoiceText::ChoiceText(const text::Tokenizer& tokenizer, Options options)
    : tokenizer_(tokenizer), detokenizer_(tokenizer, true), stop_(std::move(options.stop)), logprobs_(options.logprobs),
      detokenized_code_points_(code_points(options.echo)) {
  tools_ = text::make_tool_call_parser(options.tool_calls);
  if (options.reasoning) reasoning_.emplace(options.reasoning_opened);
}

void ChoiceText::push(int32_t id, const TokenLogprobs* logprobs, ChoiceDelta& delta) {
  if (stop_.stopped()) return;
  if (logprobs_ && logprobs != nullptr) {
    PendingLogprob p{logprob_entry(*logprobs, id), detokenized_bytes_, -1};
    p.entry.text_offset = detokenized_code_points_;
    pending_logprobs_.push_back(std::move(p));
  }
  release(detokenizer_.push(id), delta, false);
}

void ChoiceText::finish(ChoiceDelta& delta) {
  if (stop_.stopped()) return;  // what a stop string leaves was released when it matched
  release(detokenizer_.flush(), delta, false);
  if (!stop_.stopped()) release("", delta, true);
}

void ChoiceText::release(const std::string& piece, ChoiceDelta& delta, bool end) {
  if (!piece.empty()) {
    detokenized_bytes_ += static_cast<int64_t>(piece.size());
    detokenized_code_points_ += code_points(piece);
    // The detokenizer releases text at clean boundaries: every token it held ends here.
    for (PendingLogprob& p : pending_logprobs_) {
      if (p.end < 0) p.end = detokenized_bytes_;
    }
  }
  std::string text = stop_.push(piece);
  if (end) {
    text += stop_.flush();
    for (PendingLogprob& p : pending_logprobs_) {  // tokens of no text (special tokens) end here
      if (p.end < 0) p.end = detokenized_bytes_;
    }
  }
  released_bytes_ += static_cast<int64_t>(text.size());
  const bool stopped = stop_.stopped();
  if (reasoning_) {
    text::ReasoningParser::Output split;
    reasoning_->push(text, split);
    if (end || stopped) reasoning_->flush(split);
    delta.reasoning += split.reasoning;
    text = std::move(split.content);
  }
  if (tools_) {
    text::ToolCallOutput out;
    tools_->push(text, out);
    if (end || stopped) tools_->flush(out);
    delta.text += out.content;
    auto index = static_cast<int64_t>(tools_->num_calls() - out.calls.size());
    for (text::ToolCall& call : out.calls) delta.tool_calls.push_back({index++, new_tool_call_id(), std::move(call)});
  } else {
    delta.text += text;
  }
  if (pending_logprobs_.empty()) return;
  // Tokens are in order, so are their ends; a stop string keeps the tokens whose text begins before it.
  size_t n = 0;
  while (n < pending_logprobs_.size()) {
    const PendingLogprob& p = pending_logprobs_[n];
    const bool ready = stopped ? p.start < released_bytes_ : p.end >= 0 && p.end <= released_bytes_;
    if (!ready) break;
    delta.logprobs.push_back(p.entry);
    ++n;
  }
  pending_logprobs_.erase(pending_logprobs_.begin(), pending_logprobs_.begin() + static_cast<ptrdiff_t>(n));
  if (stopped) pending_logprobs_.clear();
}

std::string ChoiceText::finish_reason(const std::string& reason) const {
  return (reason == "stop" || reason == "length") && num_tool_calls() > 0 ? "tool_calls" : reason;
}

LogprobEntry ChoiceText::logprob_entry(const TokenLogprobs& lp, int32_t id) const {
  LogprobEntry e;
  // Special tokens are skipped in the text, so their bytes are empty too.
  const auto bytes = [this](int32_t t, const std::string& text) {
    return tokenizer_.is_special(t) ? text : tokenizer_.token_bytes(t).value_or(text);
  };
  e.token = tokenizer_.decode(std::span<const int32_t>(&id, 1), true);
  e.bytes = bytes(id, e.token);
  e.logprob = finite_logprob(lp.logprob);
  e.top.reserve(lp.top.size());
  for (const auto& [top_id, top_logprob] : lp.top) {
    std::string text = tokenizer_.decode(std::span<const int32_t>(&top_id, 1), true);
    std::string raw = bytes(top_id, text);
    e.top.push_back({std::move(text), finite_logprob(top_logprob), std::move(raw)});
  }
  return e;
}

}  // namespace adallm::server
