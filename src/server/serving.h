// The serving layer between HTTP and the engine: text in, text out. It checks a parsed request against
// the model (its name, the context length), renders the chat template, tokenizes, submits one engine
// request per choice (n per prompt, with distinct seeds), and turns each choice's tokens back into text:
// incremental detokenization, stop strings held back across chunks, finish reasons and usage. It knows
// nothing of HTTP or JSON responses (server/http_server.cpp shapes those).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "adallm/sampling_params.h"
#include "engine/engine.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "text/detokenizer.h"
#include "text/model_text.h"
#include "text/stop_strings.h"

namespace adallm::server {

// Tokens a completion request generates when it names no max_tokens (OpenAI's default), at most what the
// context has left. A chat request without max_tokens may fill the context.
inline constexpr int64_t kDefaultCompletionMaxTokens = 16;

// One generated token's logprobs, as text. `token` is the tokenizer's decode of that id alone (special
// tokens skipped, so they read ""): exact for a whole token; a token that is only part of a multi-byte
// character decodes to U+FFFD, because the decoder pipeline repairs invalid UTF-8 as the Rust crate does and
// the Tokenizer exposes no raw bytes per id. Non-finite logprobs are written as kLogprobFloor.
struct TokenAlternative {
  std::string token;
  float logprob = 0.0f;
};
struct LogprobEntry {
  std::string token;
  float logprob = 0.0f;
  std::vector<TokenAlternative> top;  // the requested number of alternatives, most likely first
  int64_t text_offset = 0;            // code points before this token's text in the choice's text (echo included)
};
inline constexpr float kLogprobFloor = -9999.0f;  // as vLLM writes -inf: JSON has no infinity

struct ChoiceDelta {
  int64_t index = 0;
  std::string text;
  std::string finish_reason;  // "" until the choice's last delta: "stop" or "length"
  // With logprobs: the entries of the tokens whose text's last byte `text` releases (a token whose text is
  // held back, by the detokenizer or a possible stop string, comes out with the delta that releases it).
  // A stop string drops the entries of tokens whose text lies wholly at or past it.
  std::vector<LogprobEntry> logprobs;
};

struct Usage {
  int64_t prompt_tokens = 0;      // each prompt once, whatever n is
  int64_t completion_tokens = 0;  // every choice's
  int64_t cached_tokens = 0;      // prompt tokens whose KV came from the prefix cache (first choice per prompt)
};

class Serving;

// One HTTP request's choices in flight. Not thread-safe: one HTTP worker drives it. Destroying it drops
// the engine streams, and the engine cancels whatever has not finished (a client that went away).
class Generation {
 public:
  ~Generation();
  Generation(const Generation&) = delete;
  Generation& operator=(const Generation&) = delete;

  size_t num_choices() const { return choices_.size(); }
  bool done() const;
  // Waits for one more engine event of every unfinished choice and appends the choices that moved (new
  // text and/or their finish reason). Throws ApiError 500 when the engine failed a request, 503 when it
  // is shutting down.
  void next(std::vector<ChoiceDelta>& out);
  // Waits at most `timeout` for the next engine event; true when next() would not block long (an event
  // is there, or every choice is done). Lets the caller check its client and shutdown between waits.
  bool wait(std::chrono::milliseconds timeout);
  // Stops every unfinished choice now.
  void cancel();
  Usage usage() const;
  // The text to put before choice i's output: its prompt when the completion request asked for echo.
  const std::string& echo_text(size_t i) const { return choices_[i].echo; }

 private:
  friend class Serving;
  struct Choice {
    std::shared_ptr<engine::RequestStream> stream;  // null once finished
    std::optional<text::IncrementalDetokenizer> detokenizer;
    std::optional<text::StopStringMatcher> stop;
    std::string echo;
    int64_t prompt_tokens = 0;
    bool first_of_prompt = false;  // counts the prompt in usage
    int64_t completion_tokens = 0;
    int64_t cached_tokens = 0;
    bool had_token = false;
    std::string finish_reason;
    // Logprobs (requested when `logprobs`): tokens whose text is not yet released, each with its start and
    // end in the detokenized stream (bytes; end unknown, -1, while the detokenizer holds its bytes).
    bool logprobs = false;
    struct PendingLogprob {
      LogprobEntry entry;
      int64_t start = 0, end = -1;
    };
    std::vector<PendingLogprob> pending_logprobs;
    int64_t detokenized_bytes = 0;        // of the detokenizer's output so far
    int64_t detokenized_code_points = 0;  // of the echo and that output: the next token's text_offset
    int64_t released_bytes = 0;           // of the detokenizer's output the stop matcher has released
  };
  explicit Generation(Serving& serving) : serving_(serving) {}
  void finish(Choice& c, const std::string& reason);
  // Feeds detokenized text (`piece`, pushed for a token, or flushed) through the stop matcher into `delta`,
  // keeping the logprobs entries in step. `flush_stop` also releases what the matcher holds (the end).
  void release(Choice& c, const std::string& piece, ChoiceDelta& delta, bool flush_stop);
  LogprobEntry logprob_entry(const TokenLogprobs& lp, int32_t id) const;

  Serving& serving_;
  std::vector<Choice> choices_;
};

class Serving {
 public:
  // `defaults` are the model's generation_config.json sampling values; `max_model_len` the engine's.
  Serving(engine::Engine& engine, const text::ModelText& text, SamplingParams defaults, std::string served_model_name);

  const std::string& model_name() const { return model_name_; }
  int64_t max_model_len() const { return max_model_len_; }
  Metrics& metrics() { return metrics_; }
  // The Prometheus text of /metrics: the serving layer's counters and the engine's KV gauges.
  std::string render_metrics() const;

  // Validate against the model and submit: ApiError (400 with the field, 404 for another model) when the
  // request cannot run; nothing stays queued then.
  std::unique_ptr<Generation> chat(const ChatRequest& request);
  std::unique_ptr<Generation> complete(const CompletionRequest& request);

  // Renders a chat request's prompt (the template with its kwargs); ApiError 400 for a template error.
  std::string render_chat(const ChatRequest& request) const;

 private:
  friend class Generation;
  struct PreparedPrompt {
    std::vector<int32_t> tokens;
    std::string echo;
  };
  void check_model(const CommonFields& request) const;
  std::unique_ptr<Generation> submit(const CommonFields& request, const std::vector<PreparedPrompt>& prompts,
                                     const char* prompt_field, std::optional<int64_t> default_max_tokens);
  uint64_t random_seed();

  engine::Engine& engine_;
  const text::ModelText& text_;
  SamplingParams defaults_;
  std::string model_name_;
  int64_t max_model_len_;
  Metrics metrics_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;  // seeds of requests that give none, so that two such requests differ
};

}  // namespace adallm::server
