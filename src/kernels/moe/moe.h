// Qwen3-MoE on the GPU, the pieces around the expert GEMMs: routing (softmax over the experts in fp32,
// top-k, optional renormalization) and the weighted combine of the experts' outputs. Sorting the
// (token, k) pairs by expert and running each expert's linears is the caller's (backend/cuda).
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

// out[t, :] = Σ_k topk_weights[t, k] · y[position[t · top_k + k], :], summed in k order from zero in fp32.
// y [pairs, hidden] fp32 (the experts' outputs, row stride hidden); out [tokens, hidden] bf16. A null
// position is the identity (pair t · top_k + k in row t · top_k + k).
void moe_combine(const float* y, const int32_t* position, const float* topk_weights, int64_t tokens, int top_k,
                 int64_t hidden, __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream);

}  // namespace adallm::kernels
