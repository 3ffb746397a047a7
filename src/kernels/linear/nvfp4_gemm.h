// NVFP4 weights × BF16 activations for many tokens (prefill). nvfp4_gemm, on sm_90a: warpgroup MMA (wgmma) with the
// weights decoded exactly into bf16 registers as the A operand and the activations brought by TMA into
// shared memory as B, FP32 accumulation (W4A16). Reads the tiles of nvfp4_tiles.h, and the activations in
// the tiles' k order (nvfp4_permute_activations, or a producer kernel that writes that order itself).
// Choosing this kernel over the GEMV per (arch, tokens, N, K) is the caller's business.
#pragma once

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels {

// Whether the current device can run nvfp4_gemm: compute capability 9.0 and this build holds sm_90a code.
bool nvfp4_gemm_supported();

// Writes x ([tokens, k], row stride x_stride, 4-byte aligned) as [tokens, k rounded up to 64] (16-byte
// aligned) in the k order of the tiles: within each 64-column group, 16-byte chunk c holds the column
// pairs 8t + c (t = 0..3), i.e. pair p = 8t + c moves to 4c + t; columns past k are zeros.
void nvfp4_permute_activations(const __nv_bfloat16* x, int64_t x_stride, int64_t tokens, int64_t k,
                               __nv_bfloat16* out, cudaStream_t stream);

// Workspace nvfp4_gemm needs to permute `tokens` activation rows of this shape (none if x_permuted).
int64_t nvfp4_gemm_workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens);

// out = x W^T (or act(x Gᵀ) · x Uᵀ for a gate_up shape) for any token count. Unless params.x_permuted,
// first permutes x into `workspace` (16-byte aligned, nvfp4_gemm_workspace_bytes()). Throws adallm::Error
// for bad parameters or a device nvfp4_gemm_supported() refuses.
void nvfp4_gemm(const Nvfp4LinearParams& params, void* workspace, cudaStream_t stream);

// The same product on mma.sync for sm_80 and newer (the prefill path of Ampere and Ada; slower than
// nvfp4_gemm on Hopper). Activations in natural order, 16-byte aligned rows with a stride that is a
// multiple of 8. Throws adallm::Error for bad parameters or an older GPU.
void nvfp4_gemm_mma(const Nvfp4LinearParams& params, cudaStream_t stream);

}  // namespace adallm::kernels
