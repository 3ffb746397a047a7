// The token-to-text path of one choice: incremental detokenization, stop strings held back across pieces,
// the logprobs entries kept in step with the text they belong to, reasoning split from the answer, and tool
// calls parsed out of the answer (after the stop strings, as vLLM applies them). It sees token ids and their logprobs, never the engine:
// the serving layer (server/serving.h) feeds it each event's tokens, and tests feed it canned ones.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "adallm/request.h"
#include "text/detokenizer.h"
#include "text/reasoning.h"
#include "text/stop_strings.h"
#include "text/tokenizer.h"
#include "text/tool_calls.h"

namespace adallm::server {

// One generated token's logprobs, as text. `token` is the tokenizer's decode of that id alone (special
// tokens skipped, so they read ""): exact for a whole token; a token that is only part of a multi-byte
// character decodes to U+FFFD, because the decoder pipeline repairs invalid UTF-8 as the Rust crate does and
// the Tokenizer exposes no raw bytes per id. Non-finite logprobs are written as kLogprobFloor.
// `bytes`: the token's raw bytes (Tokenizer::token_bytes; a token holding part of a UTF-8 sequence has
// those bytes, where `token`, its text, has U+FFFD), OpenAI's logprobs `bytes`.
struct TokenAlternative {
  std::string token;
  float logprob = 0.0f;
  std::string bytes;
};
struct LogprobEntry {
  std::string token;
  float logprob = 0.0f;
  std::vector<TokenAlternative> top;  // the requested number of alternatives, most likely first
  int64_t text_offset = 0;            // code points before this token's text in the choice's text (echo included)
  std::string bytes;
};
inline constexpr float kLogprobFloor = -9999.0f;  // as vLLM writes -inf: JSON has no infinity

// A tool call parsed out of a choice's text, whole: OpenAI's stream carries it in one delta (name and
// the complete arguments), sent once its closing tag has been generated.
struct ToolCallDelta {
  int64_t index = 0;  // among the choice's calls
  std::string id;     // "call_" and 24 random hex digits
  text::ToolCall call;
};

struct ChoiceDelta {
  int64_t index = 0;
  std::string text;  // content; with tool parsing, only the content outside calls (text::ToolCallParser)
  // With reasoning parsing: the reasoning text this delta releases (text::ReasoningParser); the content
  // is then the answer after it.
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;
  // "" until the choice's last delta: "stop", "length", or "tool_calls" when it made a call.
  std::string finish_reason;
  // With logprobs: the entries of the tokens whose text's last byte the stop matcher releases (a token whose
  // text is held back, by the detokenizer or a possible stop string, comes out with the delta that releases
  // it). A stop string drops the entries of tokens whose text lies wholly at or past it. The tool and
  // reasoning parsers do not hold entries back: a call's tokens, and the reasoning's, have theirs, as every
  // generated token does.
  std::vector<LogprobEntry> logprobs;
};

class ChoiceText {
 public:
  struct Options {
    std::vector<std::string> stop;
    bool logprobs = false;
    std::string echo;  // text before the choice's output (completions' echo): counted in text_offset
    text::ToolCallFormat tool_calls = text::ToolCallFormat::none;  // none: no parsing
    // Split reasoning from the answer (the tool parser then sees the answer only); reasoning_opened: the
    // prompt ends inside an opened <think> (text::prompt_opens_reasoning).
    bool reasoning = false;
    bool reasoning_opened = false;
  };
  // The tokenizer must outlive this object.
  ChoiceText(const text::Tokenizer& tokenizer, Options options);

  // One generated token, with its logprobs when the choice asked for them: appends what it releases to
  // `delta`. Tokens after a stop string add nothing.
  void push(int32_t id, const TokenLogprobs* logprobs, ChoiceDelta& delta);
  // The end of generation: appends what was held back. A stop string may still match in it (stopped()).
  void finish(ChoiceDelta& delta);

  bool stopped() const { return stop_.stopped(); }  // a stop string matched
  size_t num_tool_calls() const { return tools_ ? tools_->num_calls() : 0; }
  bool parses_reasoning() const { return reasoning_.has_value(); }
  // The answer's finish reason for the engine's (or a stop string's) `reason`: "tool_calls" in place of
  // stop or length once a call was parsed, as vLLM answers (the calls it returns are whole; one cut by
  // max_tokens stays text); else `reason`.
  std::string finish_reason(const std::string& reason) const;

 private:
  // Feeds detokenized text (`piece`, pushed for a token, or flushed) through the stop matcher, the reasoning
  // parser and the tool parser into `delta`, keeping the logprobs entries in step. `end` also releases what they hold.
  void release(const std::string& piece, ChoiceDelta& delta, bool end);
  LogprobEntry logprob_entry(const TokenLogprobs& lp, int32_t id) const;

  const text::Tokenizer& tokenizer_;
  text::IncrementalDetokenizer detokenizer_;
  text::StopStringMatcher stop_;
  std::optional<text::ReasoningParser> reasoning_;
  std::unique_ptr<text::ToolCallParser> tools_;
  bool logprobs_ = false;
  // Tokens whose text is not yet released, each with its start and end in the detokenized stream (bytes;
  // end unknown, -1, while the detokenizer holds its bytes).
  struct PendingLogprob {
    LogprobEntry entry;
    int64_t start = 0, end = -1;
  };
  std::vector<PendingLogprob> pending_logprobs_;
  int64_t detokenized_bytes_ = 0;        // of the detokenizer's output so far
  int64_t detokenized_code_points_ = 0;  // of the echo and that output: the next token's text_offset
  int64_t released_bytes_ = 0;           // of the detokenizer's output the stop matcher has released
};

}  // namespace adallm::server
