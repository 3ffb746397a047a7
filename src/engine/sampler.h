// One request's sampling: its SamplingParams and its RNG, turned into the SamplingRow of each step
// (Backend::sample_rows takes a batch of them) or applied to one row of host fp32 logits through the
// backend's reference, backend::RowSampler (vLLM v1 semantics: penalties, then greedy or temperature ->
// min_p -> top_k -> top_p -> draw). It owns no sequence state: the caller passes the prompt and the
// tokens generated so far each step.
#pragma once

#include <cstdint>
#include <random>
#include <span>

#include "adallm/sampling_params.h"
#include "backend/sampling.h"

namespace adallm::engine {

class Sampler {
 public:
  // Validates `params` (adallm::Error on a bad field). The RNG is seeded with params.seed when set, else
  // with `default_seed`, so that a seeded request reproduces its tokens exactly.
  Sampler(const SamplingParams& params, uint64_t default_seed);

  // This step's row: the params, the two token lists (which must outlive the row), and the next uniform
  // of the RNG when the row is not greedy (greedy rows draw nothing, so a seeded request's stream does not
  // depend on how many greedy steps it had).
  backend::SamplingRow row(std::span<const int32_t> prompt_tokens, std::span<const int32_t> output_tokens);

  // logits: [vocab_size] fp32, the last position's row. Token ids in prompt_tokens and output_tokens must
  // lie in [0, vocab_size). Throws adallm::Error on NaN or +inf logits and when every logit is -inf.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> prompt_tokens,
                 std::span<const int32_t> output_tokens);

  // Argmax, lowest index on ties; O(vocab_size). Same errors as sample().
  static int32_t greedy(std::span<const float> logits) { return backend::RowSampler::greedy(logits); }

  const SamplingParams& params() const { return params_; }
  // Greedy without penalties: the token is the logits' argmax, which the backend can compute itself
  // (Backend::argmax_rows) so that the logits need not come back to the host.
  bool plain_greedy() const;

 private:
  backend::SamplingRow knobs() const;  // the params as a row, without token lists or uniform
  double next_uniform();

  SamplingParams params_;
  std::mt19937_64 rng_;
  backend::RowSampler row_sampler_;
};

}  // namespace adallm::engine
