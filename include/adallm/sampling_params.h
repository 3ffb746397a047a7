// How one request picks its next token: the OpenAI / vLLM sampling knobs, with their allowed ranges.
// This header only holds and validates the numbers; engine/sampler.h turns them into each step's
// backend::SamplingRow (the backend applies them to logits, backend/sampling.h holds the reference), and the
// server maps OpenAI JSON fields onto this struct (turning validate()'s adallm::Error into a 400).
#pragma once

#include <cstdint>
#include <optional>

namespace adallm {

struct SamplingParams {
  float temperature = 1.0f;           // 0 (or below 1e-5) means greedy
  int32_t top_k = 0;                  // -1 and 0 disable; larger than vocab_size keeps every token
  float top_p = 1.0f;                 // (0, 1]
  float min_p = 0.0f;                 // [0, 1], relative to the most likely token's probability
  float repetition_penalty = 1.0f;    // > 0; over prompt and output tokens
  float presence_penalty = 0.0f;      // [-2, 2]; over output tokens only
  float frequency_penalty = 0.0f;     // [-2, 2]; over output tokens only
  std::optional<uint64_t> seed;       // unset: the engine's default seed

  // Throws adallm::Error naming the first field outside its range, the range, and the value found.
  void validate() const;
};

}  // namespace adallm
