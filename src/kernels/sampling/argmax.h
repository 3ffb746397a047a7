// Greedy sampling on the GPU: the argmax of each row of fp32 logits, so that a decode step reads back one
// id per sequence instead of its vocabulary of logits.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

// ids[r] = the lowest index of row r's largest value; non_finite when the row holds NaN or +inf,
// no_finite when every value is -inf. logits [rows, cols] fp32, row stride `stride`.
void argmax_rows(const float* logits, int64_t stride, int64_t rows, int64_t cols, int32_t* ids, int32_t non_finite,
                 int32_t no_finite, cudaStream_t stream);

}  // namespace adallm::kernels
