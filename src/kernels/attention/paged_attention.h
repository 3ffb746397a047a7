// Attention of each token of a step over its sequence's keys in the paged KV cache (bf16 or fp8 e4m3
// pages, dequantized in the kernel), for decode and prefill alike: causal through each token's position,
// an optional sliding window, GQA. A decode token's long key range is split across blocks (flash-decoding),
// merged by the last of them to finish (up to 8 splits) or by a second kernel, so that a batch of one
// sequence still fills the GPU. A block has 4 warps, or 16 in a launch of few blocks (a small batch).
//
// Tensor cores (mma.sync m16n8k16, fp32 accumulation) do both products in two kernels. Decode (tokens
// that are alone of their sequence in the step): keys along M and queries along N, S^T = K · Q^T and
// O^T = V^T · P^T, a block's queries the query heads of one KV head (GQA) for one token, so a decode
// step's 4 query heads per KV head fill one n8 tile; each of the block's warps streams its own 16-key
// chunks through a private cp.async ring and keeps its own online softmax, the warps merge at the end.
// Prefill (several tokens of a sequence): flash attention with queries along M, 128 (token, head) rows per
// block (prefill_attention.cu). fp8 pages are converted to f16 two values per instruction and multiplied
// in f16 (the K and V scales are folded into the softmax scale and the output); bf16 pages are
// multiplied in bf16.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

inline constexpr int kAttentionMaxHeadDim = 256;
inline constexpr int kAttentionMaxGroup = 16;  // query heads per KV head

// A block's tokens: `count` consecutive tokens of one sequence starting at token `first`.
struct AttentionQueryBlock {
  int32_t first = 0;
  int32_t count = 0;
};

struct PagedAttentionParams {
  const __nv_bfloat16* q = nullptr;  // [tokens, heads * head_dim], row stride q_stride
  int64_t q_stride = 0;
  int64_t tokens = 0;
  int heads = 0;
  int kv_heads = 0;  // heads is a multiple, at most kAttentionMaxGroup times; head h reads KV head h / group
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
  // At least the most keys any token of the step sees: chooses the launch's number of splits, of which each
  // token takes what its own keys want. Larger than needed is correct (a CUDA graph planned for longer
  // contexts), at the cost of blocks that return at once.
  int max_keys = 0;
  // The step's tokens in two lists that together hold each token once. Decode blocks (one token each;
  // null: every token of the step, one block each) run the split-K decode kernel; prefill blocks (up to
  // paged_attention_prefill_tokens() consecutive tokens of one sequence) run the flash-attention kernel.
  const AttentionQueryBlock* decode_blocks = nullptr;
  int64_t num_decode_blocks = 0;
  const AttentionQueryBlock* prefill_blocks = nullptr;
  int64_t num_prefill_blocks = 0;
  __nv_bfloat16* out = nullptr;  // [tokens, heads * head_dim], row stride out_stride
  int64_t out_stride = 0;
  // Optional: paged_attention_counters() ints, zero on entry (the kernel leaves them zero). With them a
  // call of few splits merges them in its last block instead of launching a second kernel.
  int32_t* split_counters = nullptr;
  // Warps per decode block: 0 chooses per launch (16 where 4-warp blocks would not fill the SMs once and
  // the head_dim and shared memory allow, else 4); 4 or 16 force one shape (benchmarks, tests; 16 is an
  // error where it does not exist).
  int decode_warps = 0;
};

// How many consecutive tokens of one sequence a prefill block takes (a power of two, 4 to 128: 128 query
// rows of (token, query head of the KV head), 64 above head_dim 128).
int paged_attention_prefill_tokens(int heads, int kv_heads, int head_dim);

// Whether 16-warp decode blocks exist on the current GPU for this head_dim, page dtype and number of query
// heads per KV head (head_dim ≤ 128 and their shared memory within the GPU's limit).
bool paged_attention_wide_blocks(int head_dim, bool fp8, int group);

// How many split counters paged_attention may use for these params.
int64_t paged_attention_counters(const PagedAttentionParams& params);

// Bytes of workspace paged_attention needs for these params on a GPU with `multiprocessors` SMs.
int64_t paged_attention_workspace_bytes(const PagedAttentionParams& params, int multiprocessors);

// workspace: paged_attention_workspace_bytes() bytes, 16-byte aligned (may be null when that is 0).
void paged_attention(const PagedAttentionParams& params, int multiprocessors, void* workspace, cudaStream_t stream);

}  // namespace adallm::kernels
