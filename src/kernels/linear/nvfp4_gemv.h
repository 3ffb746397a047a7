// NVFP4 weights × BF16 activations for few tokens (decode): a GEMV on BF16 tensor-core MMA over exactly
// decoded weights, FP32 accumulation, reading the tiles of nvfp4_tiles.h. Choosing this kernel per (arch,
// tokens, N, K) is the caller's business.
#pragma once

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels {

// out = x W^T (or act(x Gᵀ) · x Uᵀ for a gate_up shape) for any token count, in passes of up to 32 tokens
// (decode: one pass; 8 tokens cost about what one does, 32 a little more). Needs sm_80 or newer. With
// params.x_partials it applies the input's RMSNorm scale per token, with params.residual it adds into the
// residual and leaves the next norm's inputs (nvfp4_tiles.h). Throws adallm::Error for a bad shape,
// alignment or activation.
void nvfp4_gemv(const Nvfp4LinearParams& params, cudaStream_t stream);

// MoE decode: `pairs` one-token GEMVs in one launch, pair i with the weights of expert experts[i] (its
// tiles and row scales from the device tables; every expert of params.shape), reading x row
// i / x_rows_per_pair_divisor and writing out row i. The experts are read on the device after the previous
// kernel completes, so the routing never comes back to the host. params gives the shape, x, out and the
// activation, and one expert's tiles and row_scale for the checks (the kernel takes each pair's from the
// tables).
struct Nvfp4GroupedGemv {
  const int32_t* experts = nullptr;          // [pairs], device
  const uint8_t* const* tiles = nullptr;     // [num_experts] device pointers, device
  const float* const* row_scale = nullptr;   // [num_experts] device pointers, device
  int64_t pairs = 0;
  int num_experts = 0;
  int x_row_divisor = 1;  // top_k to read each pair's token from the tokens' rows, 1 to read row i
};
void nvfp4_gemv_grouped(const Nvfp4LinearParams& params, const Nvfp4GroupedGemv& group, cudaStream_t stream);

}  // namespace adallm::kernels
