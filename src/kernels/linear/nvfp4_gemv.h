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

// MoE experts at decode sizes, with the step's (token, k) pairs sorted by expert on the device
// (kernels::moe_sort_pairs): one launch runs every active expert's GEMV over all of its rows, so an expert
// chosen by several tokens is read once. Block (row tiles, y) takes expert active[y] (none when -1) and its
// sorted rows offsets[e] .. offsets[e + 1] - 1 in passes of up to 8: row r reads x row x_rows[r] (row r itself
// when x_rows is null) and writes out row r. The routing is read on the device after the previous kernel
// completes, so it never comes back to the host. params gives the shape, x, out and the activation, and one
// expert's tiles and row_scale for the checks (the kernel takes each expert's from the tables);
// params.variant 1-7 forces a block shape (listed in nvfp4_gemv.cu; 0 chooses by K).
struct Nvfp4ExpertGemv {
  const int32_t* active = nullptr;           // [slots] expert per slot, -1 for none, device
  const int32_t* offsets = nullptr;          // [num_experts + 1] each expert's first sorted row, device
  const int32_t* x_rows = nullptr;           // [rows] x row of each sorted row, device; null: the row itself
  const uint8_t* const* tiles = nullptr;     // [num_experts] device pointers, device
  const float* const* row_scale = nullptr;   // [num_experts] device pointers, device
  int slots = 0;                             // grid rows: at most num_experts (and 65,535)
  int num_experts = 0;
};
void nvfp4_gemv_experts(const Nvfp4LinearParams& params, const Nvfp4ExpertGemv& experts, cudaStream_t stream);

}  // namespace adallm::kernels
