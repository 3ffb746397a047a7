// The step between the qkv projection and attention, fused into one pass over each token's heads: per-head
// q/k RMSNorm (Qwen3, Gemma3), NeoX RoPE of q and k, and the write of k and v into the layer's paged KV
// cache (bf16, or fp8 e4m3 of x / scale). q and k are written back into qkv (bf16) for attention.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

struct QkNormRopeKvParams {
  __nv_bfloat16* qkv = nullptr;  // [tokens, (heads + 2 * kv_heads) * head_dim], row stride qkv_stride
  int64_t qkv_stride = 0;
  int64_t tokens = 0;
  int heads = 0;
  int kv_heads = 0;
  int head_dim = 0;  // even, ≤ kMaxHeadDim
  const float* q_norm = nullptr;  // [head_dim] or null: no q norm
  const float* k_norm = nullptr;  // [head_dim] or null
  float eps = 1e-6f;
  bool gemma_norm = false;  // x · inv · (1 + w)
  const float* inv_freq = nullptr;  // [head_dim / 2]
  float attention_factor = 1.0f;    // yarn's; multiplies cos and sin
  const int32_t* positions = nullptr;     // [tokens]
  const int64_t* slot_mapping = nullptr;  // [tokens]: page_id * page_size + offset
  // The layer's K and V: [num_slots, kv_heads, head_dim] of bf16 or e4m3 bytes.
  void* k_cache = nullptr;
  void* v_cache = nullptr;
  bool fp8 = false;
  float k_scale = 1.0f;
  float v_scale = 1.0f;
};

inline constexpr int kMaxHeadDim = 512;

void qk_norm_rope_kv_write(const QkNormRopeKvParams& params, cudaStream_t stream);

}  // namespace adallm::kernels
