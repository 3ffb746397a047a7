// Sampling on the GPU: repetition / frequency / presence penalties applied to rows of fp32 logits in
// place, then per row greedy, or temperature -> min_p -> top_k -> top_p -> one draw, so that a decode
// step reads back one id per sequence. The chain is the CPU reference's (backend/sampling.h), with the
// draw walking the kept tokens in token-id order so that the same uniform picks the same token.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

// One row's knobs (validated by the caller; see backend::SamplingRow).
struct SampleRowParams {
  double uniform = 0.0;  // [0, 1)
  float temperature = 1.0f;  // below greedy_temperature: argmax
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t top_k = 0;  // <= 0 or >= vocab: off
  // The row's penalty tokens in the shared token list: prompt_count prompt ids, then output_count output
  // ids, from `tokens_begin` (both counts 0 for a row without penalties).
  int32_t prompt_count = 0;
  int32_t output_count = 0;
  int64_t tokens_begin = 0;
};

// logits [rows, vocab] fp32, row stride `stride`, changed in place for rows with penalties: a token of
// the prompt or output is divided (positive) or multiplied by repetition_penalty once; an output token
// occurring c times loses frequency_penalty · c + presence_penalty. tokens: the rows' lists. counts
// [rows, vocab] int32 scratch that is zero on entry and left zero.
void apply_penalties(float* logits, int64_t stride, int64_t rows, int64_t vocab, const SampleRowParams* params,
                     const int32_t* tokens, int32_t* counts, cudaStream_t stream);

// ids[r] = the token row r samples; non_finite when the row holds NaN or +inf, no_finite when every
// value is -inf.
void sample_rows(const float* logits, int64_t stride, int64_t rows, int64_t vocab, const SampleRowParams* params,
                 float greedy_temperature, int32_t* ids, int32_t non_finite, int32_t no_finite, cudaStream_t stream);

}  // namespace adallm::kernels
