// The CPU token sampler: one request's SamplingParams and RNG applied to one row of host fp32 logits,
// with vLLM v1 semantics (penalties, then greedy or temperature -> min_p -> top_k -> top_p -> draw).
// It owns no sequence state: the caller passes the prompt and the tokens generated so far each step.
// GPU-side sampling and batching rows belong to the model runner.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "adallm/sampling_params.h"

namespace adallm::engine {

class Sampler {
 public:
  // Validates `params` (adallm::Error on a bad field). The RNG is seeded with params.seed when set, else
  // with `default_seed`, so that a seeded request reproduces its tokens exactly.
  Sampler(const SamplingParams& params, uint64_t default_seed);

  // logits: [vocab_size] fp32, the last position's row. Token ids in prompt_tokens and output_tokens must
  // lie in [0, vocab_size). Throws adallm::Error on NaN or +inf logits and when every logit is -inf.
  int32_t sample(std::span<const float> logits, std::span<const int32_t> prompt_tokens,
                 std::span<const int32_t> output_tokens);

  // Argmax, lowest index on ties; O(vocab_size). Same errors as sample().
  static int32_t greedy(std::span<const float> logits);

  const SamplingParams& params() const { return params_; }
  // Greedy without penalties: the token is the logits' argmax, which the backend can compute itself
  // (Backend::argmax_rows) so that the logits need not come back to the host.
  bool plain_greedy() const;

 private:
  void load_logits(std::span<const float> logits);
  void apply_penalties(std::span<const int32_t> prompt_tokens, std::span<const int32_t> output_tokens);
  int32_t argmax_work() const;
  int32_t sample_random();
  void select_top_k();
  void select_top_p();
  double next_uniform();

  SamplingParams params_;
  std::mt19937_64 rng_;

  // Scratch reused across calls so that a decode step allocates nothing once warm.
  std::vector<double> work_;              // [vocab_size] penalized logits
  std::vector<int32_t> output_counts_;    // [vocab_size] zero between calls
  std::vector<uint8_t> penalized_;        // [vocab_size] zero between calls
  // Tokens still in the running, with exp((logit - max_logit) / temperature): the most likely token has
  // weight 1. fp32 weights halve the exp cost and the memory traffic of top_p's selection; a token whose
  // weight underflows fp32 (probability below 1e-38 of the top one) could not be drawn by a 53-bit
  // uniform anyway.
  struct Candidate {
    float weight;
    int32_t token;
  };
  std::vector<Candidate> candidates_;
  std::vector<Candidate> boundary_scratch_;  // top_p: the tokens of the bucket where the mass crosses top_p
  std::vector<double> bucket_mass_;          // top_p: mass per fp32-bits bucket
  std::vector<double> select_scratch_;    // top_k: the heap of the k largest logits, or a copy for nth_element
};

}  // namespace adallm::engine
