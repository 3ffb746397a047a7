// Sampling one row of logits: the knobs of one row (SamplingRow, what Backend::sample_rows takes) and the
// host reference of the chain that the CPU backend runs and the CUDA kernels are tested against. The
// request's RNG lives in the engine: a row carries the one uniform its draw uses.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace adallm::backend {

// Temperatures below this are greedy (vLLM's _SAMPLING_EPS).
inline constexpr float kGreedyTemperature = 1e-5f;

// The most alternatives Backend::logprobs_rows reports per row (OpenAI's top_logprobs limit).
inline constexpr int64_t kMaxTopLogprobs = 20;

// One row of Backend::sample_rows; fields mean what adallm::SamplingParams's do, already validated.
struct SamplingRow {
  float temperature = 1.0f;  // below kGreedyTemperature: the argmax of the penalized logits
  int32_t top_k = 0;         // <= 0 or >= vocab_size: off
  float top_p = 1.0f;        // (0, 1]
  float min_p = 0.0f;        // [0, 1]
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  double uniform = 0.0;                     // [0, 1): where the draw falls (unused when greedy)
  std::span<const int32_t> prompt_tokens;   // repetition penalty only
  std::span<const int32_t> output_tokens;   // all three penalties

  bool greedy() const { return temperature < kGreedyTemperature; }
  bool penalized() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

// Why no token can be drawn from a row of logits: NaN or +inf anywhere, or every logit -inf. The raw row
// decides: penalties keep -inf at -inf and finite logits finite (they work in double).
enum class RowFault { none, non_finite, no_finite };
RowFault row_fault(std::span<const float> logits);

// The host reference of one row's chain (Backend::sample_rows's contract): penalties in double, then
// greedy or temperature -> min_p -> top_k -> top_p -> the draw at row.uniform over the kept tokens in
// token-id order. Scratch is kept between calls, so that a decode step allocates nothing once warm.
class RowSampler {
 public:
  // logits: [vocab_size] fp32. Throws adallm::Error on NaN or +inf logits, when every logit is -inf, and
  // on a token id in row.prompt_tokens or row.output_tokens outside [0, vocab_size).
  int32_t sample(std::span<const float> logits, const SamplingRow& row);

  // Argmax, lowest index on ties; O(vocab_size). Same errors as sample().
  static int32_t greedy(std::span<const float> logits);

  // [vocab_size]: the logits with the penalties applied, as the last sample() of a row with penalized()
  // left them (what other calls leave here is unspecified).
  std::span<const double> penalized_logits() const { return work_; }

 private:
  void load_logits(std::span<const float> logits);
  void apply_penalties(const SamplingRow& row);
  int32_t argmax_work() const;
  int32_t sample_random(const SamplingRow& row);
  void select_top_k(size_t k);
  void select_top_p(float top_p);

  std::vector<double> work_;              // [vocab_size] penalized logits
  std::vector<int32_t> output_counts_;    // [vocab_size] zero between calls
  std::vector<uint8_t> penalized_;        // [vocab_size] zero between calls
  // Tokens still in the running, in token-id order, with exp((logit - max_logit) / temperature): the most
  // likely token has weight 1. fp32 weights halve the exp cost and the memory traffic of top_p's
  // selection; a token whose weight underflows fp32 (probability below 1e-38 of the top one) could not be
  // drawn by a 53-bit uniform anyway.
  struct Candidate {
    float weight;
    int32_t token;
  };
  std::vector<Candidate> candidates_;
  std::vector<Candidate> ranked_;       // top_p: the candidates the cutoff is searched among, reordered
  std::vector<double> bucket_mass_;     // top_p: mass per fp32-bits bucket
  std::vector<double> select_scratch_;  // top_k: the heap of the k largest logits, or a copy for nth_element
};

}  // namespace adallm::backend
