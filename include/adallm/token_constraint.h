// A per-request constraint on which tokens may come next (structured output: a JSON schema's grammar).
// The serving layer builds one per request and hands it over in GenerateRequest; the engine asks it for a
// mask before each sampled token of that request, applies the mask to the logits on the backend, and
// reports the token picked. The engine knows no text or grammar: only ids and bits.
#pragma once

#include <cstdint>
#include <span>

namespace adallm {

class TokenConstraint {
 public:
  virtual ~TokenConstraint() = default;
  // Sets bit t (word t / 32, bit t % 32) of `bitmask` iff token t may come next, for t below the model's
  // vocab_size; bitmask holds (vocab_size + 31) / 32 words and arrives zeroed.
  virtual void allowed(std::span<uint32_t> bitmask) = 0;
  // The token the engine picked (always one allowed() set); false if the constraint refuses it, which the
  // engine treats as an internal error of that request.
  virtual bool accept(int32_t token) = 0;
  // Nothing may follow what was accepted: the engine finishes the request with finish_reason stop.
  virtual bool finished() const = 0;
};

}  // namespace adallm
