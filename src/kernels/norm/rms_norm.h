// RMSNorm on the GPU, optionally after adding a block's output into the fp32 residual stream (the fused
// "add + norm" every decoder layer starts its blocks with). Raw pointers, one launcher; the Backend op
// and its checks live in backend/cuda.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace adallm::kernels {

struct RmsNormParams {
  int64_t rows = 0;
  int64_t cols = 0;
  const void* x = nullptr;  // [rows, cols] x_dtype (BF16 or F32), row stride x_stride
  DType x_dtype = DType::BF16;
  int64_t x_stride = 0;
  // With a residual: residual += x first (fp32), and the norm reads the updated residual; without, the
  // norm reads x.
  float* residual = nullptr;  // [rows, cols] F32, row stride residual_stride
  int64_t residual_stride = 0;
  const float* weight = nullptr;  // [cols]
  float eps = 1e-6f;
  bool gemma = false;  // x · inv · (1 + w) instead of x · inv · w
  // [rows, cols] out_dtype (BF16 or F32), row stride out_stride. May alias x (each thread rereads only the
  // columns it writes).
  void* out = nullptr;
  DType out_dtype = DType::BF16;
  int64_t out_stride = 0;
};

// One block per row, all arithmetic in fp32: inv = 1 / sqrt(mean(x²) + eps) as the CPU reference does.
void rms_norm(const RmsNormParams& params, cudaStream_t stream);

// A NormedRows in its second form (backend.h) made plain, for a consumer that cannot apply the norm itself:
// out[t, c] = values[t, c] · 1 / sqrt(Σ_j partials[t, j] / cols + eps), the partials summed in the order the
// NVFP4 GEMV sums them. values, out BF16 with row strides; out may alias values.
struct NormalizeRowsParams {
  int64_t rows = 0;
  int64_t cols = 0;
  const void* values = nullptr;
  int64_t values_stride = 0;
  const float* partials = nullptr;  // [rows, count], row stride partials_stride
  int64_t partials_stride = 0;
  int partials_count = 0;
  float eps = 0.0f;
  void* out = nullptr;
  int64_t out_stride = 0;
};
void normalize_rows(const NormalizeRowsParams& params, cudaStream_t stream);

}  // namespace adallm::kernels
