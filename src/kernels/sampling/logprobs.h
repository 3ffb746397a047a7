// Log-probabilities of rows of fp32 logits on the GPU (Backend::logprobs_rows; the reference is the CPU
// backend's): the chosen token's log_softmax and the row's most likely tokens, so that a step that asks for
// logprobs still reads back only a few numbers per sequence.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

inline constexpr int kMaxLogprobsTopN = 20;

// logits [rows, vocab] fp32 (row stride `stride`); ids [rows]; chosen [rows]; top_ids / top_logprobs
// [rows, top_n] (row stride top_stride), 0 <= top_n <= kMaxLogprobsTopN. A row with NaN or +inf, or with
// every logit -inf, gets NaN and id -1 throughout; an id outside [0, vocab) a NaN chosen logprob.
void logprobs_rows(const float* logits, int64_t stride, int64_t rows, int64_t vocab, const int32_t* ids, int top_n,
                   float* chosen, int32_t* top_ids, float* top_logprobs, int64_t top_stride, cudaStream_t stream);

}  // namespace adallm::kernels
