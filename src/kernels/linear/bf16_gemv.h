// BF16 weights × BF16 activations for few tokens: the small BF16 linears of a decode step that cuBLAS
// serves poorly (an MoE router, 2048 → 128, 0.5 MB: 9.0 µs through cublasGemmEx, 4.0 µs here on the
// H100). BF16 tensor-core MMA, FP32 accumulation; each lane reads 16 contiguous columns of its rows and of
// its token (the k order inside one MMA is free when weights and activations follow the same one), so all
// loads are 16 bytes wide. Choosing it over cuBLAS is the caller's business.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

// The most tokens one launch serves (four groups of 8 share each weight load).
inline constexpr int64_t kBf16GemvMaxTokens = 32;

struct Bf16GemvParams {
  const __nv_bfloat16* w = nullptr;  // [n, k] row-major, row stride k; 16-byte aligned
  const __nv_bfloat16* x = nullptr;  // [tokens, k], row stride x_stride; 16-byte aligned rows
  int64_t x_stride = 0;
  int64_t n = 0;
  int64_t k = 0;  // a multiple of 8
  int64_t tokens = 0;
  // [tokens, n], row stride out_stride: exactly one of fp32 `out` or bf16 `out_bf16` (round to nearest even).
  float* out = nullptr;
  __nv_bfloat16* out_bf16 = nullptr;
  int64_t out_stride = 0;
  // sm_90: launch as a programmatic dependent of the previous kernel (weights are prefetched before it ends).
  bool dependent_launch = true;
};

// Whether bf16_gemv takes these pointers and sizes (alignment, k % 8, 1 ≤ tokens ≤ kBf16GemvMaxTokens).
bool bf16_gemv_supported(const Bf16GemvParams& params);

// out = x Wᵀ. Throws adallm::Error naming what bf16_gemv_supported() refuses.
void bf16_gemv(const Bf16GemvParams& params, cudaStream_t stream);

}  // namespace adallm::kernels
