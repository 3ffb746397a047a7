// The paged KV cache on the GPU and the attention path: q/k norm + RoPE + KV write in one kernel, then
// paged attention straight from the (bf16 or fp8) pages. Page allocation and the batch's contents are
// the engine's; the layout matches the CPU backend's, so the two can be compared page for page.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "kernels/attention/paged_attention.h"
#include "kernels/cuda_check.h"
#include "kernels/rope/qk_norm_rope_kv_write.h"

namespace adallm::backend::cuda_backend {

CudaKvCache::CudaKvCache(const KvCacheSpec& spec) {
  spec.validate(/*head_dim_multiple=*/16);  // the attention kernel reads rows in 16-value chunks
  spec_ = spec;
  layer_bytes_ = spec.bytes_per_token_per_layer() / 2 * spec.num_pages * spec.page_size;
  memory_ = DeviceMemory(static_cast<size_t>(layer_bytes_ * 2 * spec.num_layers));
  ADALLM_CUDA_CHECK(cudaMemset(memory_.get(), 0, memory_.bytes()));
}

void* CudaKvCache::k(int64_t layer) const { return memory_.as<std::byte>() + 2 * layer * layer_bytes_; }
void* CudaKvCache::v(int64_t layer) const { return memory_.as<std::byte>() + (2 * layer + 1) * layer_bytes_; }
std::unique_ptr<KvCache> CudaBackend::alloc_kv_cache(const KvCacheSpec& spec) {
  return std::make_unique<CudaKvCache>(spec);
}

const CudaKvCache& CudaBackend::checked_cache(const KvCache& cache, int64_t layer, const char* op) const {
  const auto* c = dynamic_cast<const CudaKvCache*>(&cache);
  if (c == nullptr) throw Error(std::string(op) + ": the KV cache was not allocated by the CUDA backend");
  check_cache_layer(*c, layer, batch(op), op);
  return *c;
}

const float* CudaBackend::device_inv_freq(const RopeTable& rope) {
  for (const auto& [values, memory] : inv_freq_) {
    if (values == rope.inv_freq) return memory.as<float>();
  }
  DeviceMemory memory(rope.inv_freq.size() * sizeof(float));
  ADALLM_CUDA_CHECK(cudaMemcpy(memory.get(), rope.inv_freq.data(), memory.bytes(), cudaMemcpyHostToDevice));
  inv_freq_.emplace_back(rope.inv_freq, std::move(memory));
  return inv_freq_.back().second.as<float>();
}

void CudaBackend::qk_norm_rope_kv_write(Tensor qkv, int64_t num_attention_heads, const Tensor* q_norm,
                                        const Tensor* k_norm, float eps, NormKind kind, const RopeTable& rope,
                                        KvCache& cache, int64_t layer) {
  const char* op = "qk_norm_rope_kv_write";
  const CudaKvCache& c = checked_cache(cache, layer, op);
  const ForwardBatch& b = batch(op);
  const int64_t kv_heads = c.spec().num_key_value_heads;
  const int64_t d = c.spec().head_dim;
  const int64_t heads = num_attention_heads;
  check_qk_norm_rope_kv_write(qkv, heads, q_norm, k_norm, rope, c.spec(), b, DType::BF16);
  if (d > kernels::kMaxHeadDim) throw Error(std::string(op) + ": head_dim " + std::to_string(d) + " is above the kernel's limit");
  kernels::QkNormRopeKvParams p;
  p.qkv = qkv.ptr<__nv_bfloat16>();
  p.qkv_stride = qkv.stride;
  p.tokens = b.num_tokens();
  p.heads = static_cast<int>(heads);
  p.kv_heads = static_cast<int>(kv_heads);
  p.head_dim = static_cast<int>(d);
  p.q_norm = q_norm ? q_norm->ptr<float>() : nullptr;
  p.k_norm = k_norm ? k_norm->ptr<float>() : nullptr;
  p.eps = eps;
  p.gemma_norm = kind == NormKind::gemma;
  p.inv_freq = device_inv_freq(rope);
  p.attention_factor = rope.attention_factor;
  p.positions = device_batch_.positions;
  p.slot_mapping = device_batch_.slot_mapping;
  p.k_cache = c.k(layer);
  p.v_cache = c.v(layer);
  p.fp8 = c.spec().dtype == KvCacheDType::fp8_e4m3;
  p.k_scale = c.spec().k_scale(layer);
  p.v_scale = c.spec().v_scale(layer);
  const OpScope scope(*this, "qk_norm_rope_kv_write");
  kernels::qk_norm_rope_kv_write(p, stream_);
}

void CudaBackend::attention(const Tensor& q, const KvCache& cache, int64_t layer, float scale,
                            std::optional<int64_t> sliding_window, Tensor out) {
  const char* op = "attention";
  const CudaKvCache& c = checked_cache(cache, layer, op);
  const ForwardBatch& b = batch(op);
  const int64_t kv_heads = c.spec().num_key_value_heads;
  const int64_t d = c.spec().head_dim;
  const int64_t heads = check_attention(q, c.spec(), sliding_window, out, b, DType::BF16);
  if (d > kernels::kAttentionMaxHeadDim) {
    throw Error(std::string(op) + ": head_dim " + std::to_string(d) + " is above the kernel's limit of " +
                std::to_string(kernels::kAttentionMaxHeadDim));
  }
  // A plan for longer contexts than this step's is correct too (see ForwardBatch::plan_keys).
  int64_t max_keys = sliding_window ? std::min<int64_t>(b.plan_keys, *sliding_window) : b.plan_keys;
  for (int32_t position : b.positions) {
    const int64_t keys = position + 1;
    max_keys = std::max(max_keys, sliding_window ? std::min(keys, *sliding_window) : keys);
  }
  kernels::PagedAttentionParams p;
  p.q = q.ptr<__nv_bfloat16>();
  p.q_stride = q.stride;
  p.tokens = b.num_tokens();
  p.heads = static_cast<int>(heads);
  p.kv_heads = static_cast<int>(kv_heads);
  p.head_dim = static_cast<int>(d);
  p.k_cache = c.k(layer);
  p.v_cache = c.v(layer);
  p.fp8 = c.spec().dtype == KvCacheDType::fp8_e4m3;
  p.k_scale = c.spec().k_scale(layer);
  p.v_scale = c.spec().v_scale(layer);
  p.page_size = static_cast<int>(c.spec().page_size);
  p.positions = device_batch_.positions;
  p.seq_index = device_batch_.seq_index;
  p.page_tables = device_batch_.page_tables;
  p.max_pages_per_seq = b.max_pages_per_seq;
  p.scale = scale;
  p.sliding_window = sliding_window ? static_cast<int>(*sliding_window) : 0;
  p.max_keys = static_cast<int>(max_keys);
  p.decode_warps = decode_attention_warps_;
  p.out = out.ptr<__nv_bfloat16>();
  p.out_stride = out.stride;
  // Steps where some sequence brings several tokens: those run the prefill kernel, the others decode.
  if (device_batch_.decode_blocks != nullptr) {
    p.decode_blocks = device_batch_.decode_blocks;
    p.num_decode_blocks = device_batch_.num_decode_blocks;
    const int per_block = kernels::paged_attention_prefill_tokens(p.heads, p.kv_heads, p.head_dim);
    for (int i = 0; i < DeviceBatch::kPrefillBlockSizes; ++i) {
      if (per_block == 4 << i) {
        p.prefill_blocks = device_batch_.prefill_blocks[i];
        p.num_prefill_blocks = device_batch_.num_prefill_blocks[i];
      }
    }
    if (p.prefill_blocks == nullptr) throw Error(std::string(op) + ": no prefill blocks of " + std::to_string(per_block) + " tokens");
  }
  const int64_t bytes = kernels::paged_attention_workspace_bytes(p, info_.multiprocessors);
  void* workspace = bytes > 0 ? attention_workspace_.get(static_cast<size_t>(bytes), stream_) : nullptr;
  if (bytes > 0) {
    const auto counters = static_cast<size_t>(kernels::paged_attention_counters(p)) * sizeof(int32_t);
    p.split_counters = static_cast<int32_t*>(attention_counters_.get_zeroed(counters, stream_));
  }
  const OpScope scope(*this, "attention");
  kernels::paged_attention(p, info_.multiprocessors, workspace, stream_);
}

}  // namespace adallm::backend::cuda_backend
