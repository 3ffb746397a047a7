// The serving layer between HTTP and the engine: text in, text out. It checks a parsed request against
// the model (its name, the context length, whether it can take tools), renders the chat template,
// tokenizes, submits one engine request per choice (n per prompt, with distinct seeds), and turns each
// choice's tokens back into text (server/choice_text.h: detokenization, stop strings, tool calls), finish
// reasons and usage. It knows nothing of HTTP or JSON responses (server/http_server.cpp shapes those).
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
#include "server/choice_text.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "structured/token_mask.h"
#include "text/model_text.h"
#include "text/reasoning.h"
#include "text/tool_calls.h"

namespace adallm::server {

// Tokens a completion request generates when it names no max_tokens (OpenAI's default), at most what the
// context has left. A chat request without max_tokens may fill the context.
inline constexpr int64_t kDefaultCompletionMaxTokens = 16;

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
  // The engine's clock for choice i: seconds from submission to its first token (0 until there is one)
  // and to its latest event.
  struct Timing {
    double time_to_first_token = 0.0;
    double elapsed = 0.0;
  };
  Timing timing(size_t i) const { return choices_[i].timing; }
  // The text to put before choice i's output: its prompt when the completion request asked for echo.
  const std::string& echo_text(size_t i) const { return choices_[i].echo; }

 private:
  friend class Serving;
  struct Choice {
    std::shared_ptr<engine::RequestStream> stream;  // null once finished
    std::optional<ChoiceText> text;
    std::string echo;
    bool logprobs = false;
    int64_t prompt_tokens = 0;
    bool first_of_prompt = false;  // counts the prompt in usage
    int64_t completion_tokens = 0;
    int64_t cached_tokens = 0;
    bool had_token = false;
    double last_token_at = 0.0;  // the engine's elapsed seconds at this choice's latest token
    Timing timing;
    std::string finish_reason;
  };
  explicit Generation(Serving& serving) : serving_(serving) {}
  // `reason` is the engine's (stop, length, cancelled, error): metrics count it; the answer's may be
  // "tool_calls" instead (ChoiceText::finish_reason).
  void finish(Choice& c, const std::string& reason);

  Serving& serving_;
  std::vector<Choice> choices_;
};

// The chat template's variables for a request, as vLLM hands an OpenAI conversation to transformers'
// apply_chat_template: messages {role, content, tool_calls? [{id, type, function: {name, arguments (the
// decoded object)}}], tool_call_id? (tool messages)}, tools (as the request wrote them; null when none, as
// transformers passes it), add_generation_prompt, the special tokens, then chat_template_kwargs.
nlohmann::ordered_json chat_template_context(const ChatRequest& request, const text::ModelText& text);

class Serving {
 public:
  // `defaults` are the model's generation_config.json sampling values; `max_model_len` the engine's.
  // `reasoning`: --reasoning-parser (checked against the model here: adallm::Error when it has no tags).
  Serving(engine::Engine& engine, const text::ModelText& text, SamplingParams defaults, std::string served_model_name,
          text::ReasoningFormat reasoning = text::ReasoningFormat::none);

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

  // What the model does with tools (decided at construction).
  const text::ToolCallSupport& tool_calls() const { return tool_calls_; }
  // --reasoning-parser: chat answers carry reasoning_content (null when a choice has none).
  text::ReasoningFormat reasoning() const { return reasoning_; }
  // One log line on what tool requests get: the server's, at start (`adallm run` takes no tools).
  void log_tool_support() const;

 private:
  friend class Generation;
  struct PreparedPrompt {
    std::vector<int32_t> tokens;
    std::string echo;
  };
  void check_model(const CommonFields& request) const;
  void check_tools(const ChatRequest& request) const;
  // `parsing`: the tool and reasoning parsing of every choice (its stop, logprobs and echo are set here).
  std::unique_ptr<Generation> submit(const CommonFields& request, const std::vector<PreparedPrompt>& prompts,
                                     const char* prompt_field, std::optional<int64_t> default_max_tokens,
                                     const ChoiceText::Options& parsing = {},
                                     std::shared_ptr<const structured::Grammar> grammar = nullptr);
  uint64_t random_seed();

  engine::Engine& engine_;
  const text::ModelText& text_;
  text::ToolCallSupport tool_calls_;
  text::ReasoningFormat reasoning_ = text::ReasoningFormat::none;
  // Every token's bytes (special tokens never allowed) for response_format's token masks, built once.
  std::shared_ptr<const structured::Vocabulary> vocabulary_;
  SamplingParams defaults_;
  std::string model_name_;
  int64_t max_model_len_;
  Metrics metrics_;
  std::mutex rng_mutex_;
  std::mt19937_64 rng_;  // seeds of requests that give none, so that two such requests differ
};

}  // namespace adallm::server
