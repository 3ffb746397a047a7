// Structured output on the GPU: the logits of tokens a row's grammar forbids become -inf before the
// argmax or sampling kernels run (Backend::mask_logits; the CPU reference is in backend/cpu).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

// logits[r * stride + i] = -inf where bit i % 32 of bitmask[r * words + i / 32] is clear, words =
// (cols + 31) / 32. logits [rows, cols] fp32 in place; bitmask [rows, words] in device memory.
void mask_logits(float* logits, int64_t stride, int64_t rows, int64_t cols, const uint32_t* bitmask,
                 cudaStream_t stream);

}  // namespace adallm::kernels
