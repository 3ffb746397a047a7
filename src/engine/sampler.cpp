// Sampler: a request's params and RNG as SamplingRows; the chain itself is backend::RowSampler's.
#include "engine/sampler.h"

namespace adallm::engine {

Sampler::Sampler(const SamplingParams& params, uint64_t default_seed)
    : params_(params), rng_(params.seed.value_or(default_seed)) {
  params_.validate();
}

backend::SamplingRow Sampler::knobs() const {
  backend::SamplingRow row;
  row.temperature = params_.temperature;
  row.top_k = params_.top_k;
  row.top_p = params_.top_p;
  row.min_p = params_.min_p;
  row.repetition_penalty = params_.repetition_penalty;
  row.presence_penalty = params_.presence_penalty;
  row.frequency_penalty = params_.frequency_penalty;
  return row;
}

bool Sampler::plain_greedy() const {
  const backend::SamplingRow row = knobs();
  return row.greedy() && !row.penalized();
}

backend::SamplingRow Sampler::row(std::span<const int32_t> prompt_tokens, std::span<const int32_t> output_tokens) {
  backend::SamplingRow row = knobs();
  row.prompt_tokens = prompt_tokens;
  row.output_tokens = output_tokens;
  if (!row.greedy()) row.uniform = next_uniform();
  return row;
}

int32_t Sampler::sample(std::span<const float> logits, std::span<const int32_t> prompt_tokens,
                        std::span<const int32_t> output_tokens) {
  return row_sampler_.sample(logits, row(prompt_tokens, output_tokens));
}

double Sampler::next_uniform() {
  // 53 random bits scaled by 2^-53: uniform in [0, 1) and identical on every standard library, unlike
  // std::uniform_real_distribution.
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

}  // namespace adallm::engine
