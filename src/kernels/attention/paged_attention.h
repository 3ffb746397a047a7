// Attention of each token of a step over its sequence's keys in the paged KV cache (bf16 or fp8 e4m3
// pages, dequantized in the kernel), for decode and prefill alike: causal through each token's position,
// an optional sliding window, GQA. Long key ranges are split across warps (flash-decoding) and merged by a
// second kernel, so that a batch of one sequence still fills the GPU.
//
// One block per (token, KV head, split): the query heads of a KV head (GQA) share every K/V tile, brought
// into shared memory by cp.async in two stages; online softmax in fp32 on CUDA cores. Decode is what it is
// built for; prefill tokens run the same way (one block per token and KV head, no tensor cores), which
// is correct but not yet fast (issue 6's prefill attention).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

inline constexpr int kAttentionMaxHeadDim = 256;

struct PagedAttentionParams {
  const __nv_bfloat16* q = nullptr;  // [tokens, heads * head_dim], row stride q_stride
  int64_t q_stride = 0;
  int64_t tokens = 0;
  int heads = 0;
  int kv_heads = 0;  // heads is a multiple; query head h reads KV head h / (heads / kv_heads)
  int head_dim = 0;  // a multiple of 16, ≤ kAttentionMaxHeadDim
  // The layer's K and V: [num_pages * page_size, kv_heads, head_dim] bf16 or e4m3 (read as fp8 · scale).
  const void* k_cache = nullptr;
  const void* v_cache = nullptr;
  bool fp8 = false;
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  int page_size = 0;
  const int32_t* positions = nullptr;    // [tokens]: the token sees keys 0..position of its sequence
  const int32_t* seq_index = nullptr;    // [tokens]
  const int32_t* page_tables = nullptr;  // [num_seqs, max_pages_per_seq]
  int max_pages_per_seq = 0;
  float scale = 1.0f;       // softmax(scale · q·k)
  int sliding_window = 0;   // 0: none; else keys at positions > position - sliding_window
  int max_keys = 0;         // the most keys any token of the step sees (chooses the number of splits)
  __nv_bfloat16* out = nullptr;  // [tokens, heads * head_dim], row stride out_stride
  int64_t out_stride = 0;
};

// Bytes of workspace paged_attention needs for these params on a GPU with `multiprocessors` SMs.
int64_t paged_attention_workspace_bytes(const PagedAttentionParams& params, int multiprocessors);

// workspace: paged_attention_workspace_bytes() bytes, 16-byte aligned (may be null when that is 0).
void paged_attention(const PagedAttentionParams& params, int multiprocessors, void* workspace, cudaStream_t stream);

}  // namespace adallm::kernels
