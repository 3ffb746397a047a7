// NVFP4 weights × FP8 activations (W4A8) on mma.sync, the prefill path FP8 tensor cores make fast on Ada
// (sm_89: FP8 at twice the BF16 rate) and that also runs on Hopper for accuracy comparisons. Exact but
// for the activations' rounding:
// - activations quantized per token to e4m3 with scale max|x| / 448, rounding to nearest even — exactly
//   quant::fp8_e4m3_round_trip_row, the CPU oracle (an all-zero row gets scale 0, a row with a non-finite
//   value scale NaN, so its outputs are NaN as the CPU's are);
// - weights repacked in the w4a8 layout (nvfp4_tiles.h) and decoded exactly to e4m3 (e2m1 · 2^-6);
// - one m16n8k16 e4m3 MMA per 16-column block with fresh fp32 accumulators, its sum scaled by the block's
//   scale into the fp32 total (4 FFMA per MMA), token scale, 2^6 and weight_scale_2 in the epilogue.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels {

// codes [tokens, codes_stride] e4m3 (columns k … k rounded up to 64 written as zeros; codes_stride a
// multiple of 16 and at least that), scales [tokens] fp32. x as Nvfp4LinearParams::x (4-byte aligned,
// even stride >= k); k a positive multiple of 16.
void fp8_quantize_activations(const __nv_bfloat16* x, int64_t x_stride, int64_t tokens, int64_t k, uint8_t* codes,
                              int64_t codes_stride, float* scales, cudaStream_t stream);

// Whether the current GPU has FP8 tensor cores (sm_89 or newer), which nvfp4_gemm_w4a8 needs.
bool fp8_mma_supported();

// Workspace nvfp4_gemm_w4a8 needs: the quantized activations and their scales.
int64_t nvfp4_w4a8_workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens);

// out = x Wᵀ (or act(gate) · up for a gate_up shape) over weights repacked with Nvfp4Layout::w4a8, any token
// count; quantizes params.x into `workspace` first. Needs sm_89 or newer; throws adallm::Error otherwise,
// and for bad parameters (params.x_permuted and params.variant must be unset).
void nvfp4_gemm_w4a8(const Nvfp4LinearParams& params, void* workspace, cudaStream_t stream);

}  // namespace adallm::kernels
