// What a caller hands the serving engine and what comes back: token ids in, token ids out. Text (chat
// templates, detokenizing, stop strings) is the serving layer's; stop token ids are the engine's.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "adallm/sampling_params.h"

namespace adallm {

struct GenerateRequest {
  std::vector<int32_t> prompt;          // token ids, at least one
  SamplingParams sampling;
  int64_t max_tokens = 16;              // tokens to generate at most (>= 0); the context may end it sooner
  std::vector<int32_t> stop_token_ids;  // generation ends after emitting one of these
};

enum class FinishReason { none, stop, length, cancelled, error };
const char* finish_reason_name(FinishReason reason);  // "", "stop", "length", "cancelled", "error"

// One event of a request's stream: the tokens generated since the previous event and, on the last
// event, why it ended and its usage.
struct RequestOutput {
  int64_t request_id = 0;
  std::vector<int32_t> tokens;
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
