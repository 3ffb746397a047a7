// Qwen3-MoE on the GPU, the pieces around the expert GEMMs: routing (softmax over the experts in fp32,
// top-k, optional renormalization), sorting the (token, k) pairs by expert on the device, and the weighted
// combine of the experts' outputs. Running each expert's linears is the caller's (backend/cuda).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

inline constexpr int kMoeMaxExperts = 512;

// router_logits [tokens, num_experts] fp32 (row stride logits_stride) → topk_ids [tokens, top_k] (descending
// probability, the lower index first on ties) and topk_weights [tokens, top_k], contiguous.
void moe_route(const float* router_logits, int64_t logits_stride, int64_t tokens, int num_experts, int top_k,
               bool renormalize, int32_t* topk_ids, float* topk_weights, cudaStream_t stream);

// The (token, k) pairs of a step grouped by expert, for kernels that read each expert's weights once for
// all of its pairs. Pair i = t · top_k + k (token t's k-th choice) lands in sorted row pair_row[i]; expert
// e's rows are offsets[e] .. offsets[e + 1] - 1; row_token[r] is the token of sorted row r; active[0 .. a)
// lists the a experts that have rows, ascending, and active[a .. slots) is -1. The order of the rows
// within one expert is unspecified (the sort uses atomics): consumers compute each row on its own, so
// their results do not depend on it. A pair routed outside 0 .. num_experts - 1 gets pair_row -1 and no
// row. All arrays are device int32: offsets [num_experts + 1], active [slots], row_token and pair_row
// [pairs].
struct MoeSortedPairs {
  int32_t* offsets = nullptr;
  int32_t* active = nullptr;
  int32_t* row_token = nullptr;
  int32_t* pair_row = nullptr;
  int slots = 0;  // entries of `active` to fill; min(pairs, num_experts) covers every case
};

// One block, launched as a programmatic dependent (it reads the routing written by the previous kernel).
void moe_sort_pairs(const int32_t* topk_ids, int64_t pairs, int top_k, int num_experts, const MoeSortedPairs& out,
                    cudaStream_t stream);

// out[t, :] = Σ_k topk_weights[t, k] · y[position[t · top_k + k], :], summed in k order from zero in fp32.
// y [pairs, hidden] fp32 (the experts' outputs, row stride hidden); out [tokens, hidden] bf16. A null
// position is the identity (pair t · top_k + k in row t · top_k + k); a negative position (a pair with no
// row, see MoeSortedPairs) adds nothing.
void moe_combine(const float* y, const int32_t* position, const float* topk_weights, int64_t tokens, int top_k,
                 int64_t hidden, __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream);

}  // namespace adallm::kernels
