// NVFP4 weights × BF16 activations for many tokens (prefill) on sm_90a: warpgroup MMA (wgmma) with the
// weights decoded exactly into bf16 registers as the A operand and the activations staged through shared
// memory as B, FP32 accumulation (W4A16). Reads the tiles of nvfp4_tiles.h. Choosing this kernel over the
// GEMV per (arch, tokens, N, K) is the caller's business.
#pragma once

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels {

// Whether the current device can run nvfp4_gemm: compute capability 9.0 and this build holds sm_90a code.
bool nvfp4_gemm_supported();

// out = x W^T (or act(x Gᵀ) · x Uᵀ for a gate_up shape) for any token count. Activations must start
// 16-byte aligned with a row stride that is a multiple of 8. Throws adallm::Error for bad parameters or a
// device nvfp4_gemm_supported() refuses.
void nvfp4_gemm(const Nvfp4LinearParams& params, cudaStream_t stream);

}  // namespace adallm::kernels
