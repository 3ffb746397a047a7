// NVFP4 weights × BF16 activations for few tokens (decode): a GEMV on BF16 tensor-core MMA over exactly
// decoded weights, FP32 accumulation, reading the tiles of nvfp4_tiles.h. Choosing this kernel per (arch,
// tokens, N, K) is the caller's business.
#pragma once

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels {

// out = x W^T (or act(x Gᵀ) · x Uᵀ for a gate_up shape) for any token count, in passes of up to 32 tokens
// (decode: one pass; 8 tokens cost about what one does, 32 a little more). Needs sm_80 or newer. Throws
// adallm::Error for a bad shape, alignment or activation.
void nvfp4_gemv(const Nvfp4LinearParams& params, cudaStream_t stream);

}  // namespace adallm::kernels
