// What a caller hands the serving engine and what comes back: token ids in, token ids out. Text (chat
// templates, detokenizing, stop strings) is the serving layer's; stop token ids are the engine's.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adallm/sampling_params.h"
#include "adallm/token_constraint.h"

namespace adallm {

struct GenerateRequest {
  std::vector<int32_t> prompt;          // token ids, at least one
  SamplingParams sampling;
  int64_t max_tokens = 16;              // tokens to generate at most (>= 0); the context may end it sooner
  std::vector<int32_t> stop_token_ids;  // generation ends after emitting one of these
  // Unset: no log-probabilities. n (0 to 20): each generated token's log-probability under the model (the
  // raw distribution, before temperature and penalties) and the n most likely tokens' at its position.
  std::optional<int32_t> logprobs;
  // Structured output: each generated token is one the constraint allows (the logits of the others are
  // masked before greedy or sampled picking; logprobs stay those of the unmasked distribution), and the
  // request finishes with FinishReason::stop once the constraint is finished. One per request: it holds
  // that request's parse state. Unset: unconstrained.
  std::shared_ptr<TokenConstraint> constraint;
};

// One generated token's log-probability and its position's most likely tokens (most likely first).
struct TokenLogprobs {
  float logprob = 0.0f;
  std::vector<std::pair<int32_t, float>> top;  // (token id, logprob)
};

enum class FinishReason { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason reason);  // "", "stop", "length", "cancelled", "error"

// One event of a request's stream: the tokens generated since the previous event and, on the last
// event, why it ended and its usage.
struct RequestOutput {
  int64_t request_id = 0;
  std::vector<int32_t> tokens;
  std::vector<TokenLogprobs> logprobs;  // one per token when the request asked for them, else empty
  FinishReason finish_reason = FinishReason::none;  // none until the last event
  std::string error;                                // finish_reason error: what went wrong
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;  // generated so far
  int64_t cached_tokens = 0;      // prompt tokens whose KV came from the prefix cache at admission
  // Seconds since the engine took the request: to its first token (0 until there is one), and to this event.
  double time_to_first_token = 0.0;
  double elapsed = 0.0;
  bool finished() const { return finish_reason != FinishReason::none; }
};

}  // namespace adallm
