// The paged KV cache on the CPU and the attention path: q/k RMSNorm + NeoX RoPE + KV write in one pass
// over qkv, then causal (optionally sliding-window) GQA attention reading keys through page tables.
// KV rounding follows the cache dtype exactly (bf16 RNE, e4m3 satfinite of x / scale); page allocation
// and the batch's contents are the engine's.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"
#include "core/float_codecs.h"
#include "core/parallel.h"

namespace adallm::backend::cpu {
namespace {

void norm_head(float* x, const float* w, int64_t d, float eps, NormKind kind) {
  float sum = 0.0f;
  for (int64_t i = 0; i < d; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(d) + eps);
  for (int64_t i = 0; i < d; ++i) x[i] = kind == NormKind::llama ? x[i] * inv * w[i] : x[i] * inv * (1.0f + w[i]);
}

// NeoX rotate_half: dimension i pairs with i + d/2.
void rope_head(float* x, const float* cos_t, const float* sin_t, int64_t d) {
  const int64_t half = d / 2;
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i];
    const float b = x[i + half];
    x[i] = a * cos_t[i] - b * sin_t[i];
    x[i + half] = b * cos_t[i] + a * sin_t[i];
  }
}

// Reads cached K or V as fp32: bf16 upcast, or e4m3 decoded times the layer's scale (a 256-entry table
// holding exactly e4m3_to_f32(code) * scale).
struct KvReader {
  const std::byte* base = nullptr;
  bool bf16 = true;
  std::array<float, 256> table{};

  KvReader(const std::byte* data, KvCacheDType dtype, float scale) : base(data), bf16(dtype == KvCacheDType::bf16) {
    if (!bf16) {
      for (int c = 0; c < 256; ++c) table[static_cast<size_t>(c)] = e4m3_to_f32(static_cast<uint8_t>(c)) * scale;
    }
  }
  // `count` values starting at element `index`.
  void read(int64_t index, int64_t count, float* out) const {
    if (bf16) {
      const auto* p = reinterpret_cast<const uint16_t*>(base) + index;
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_f32(p[i]);
    } else {
      const auto* p = reinterpret_cast<const uint8_t*>(base) + index;
      for (int64_t i = 0; i < count; ++i) out[i] = table[p[i]];
    }
  }
};

void write_kv(std::byte* base, KvCacheDType dtype, float scale, int64_t index, const float* x, int64_t count) {
  if (dtype == KvCacheDType::bf16) {
    auto* p = reinterpret_cast<uint16_t*>(base) + index;
    for (int64_t i = 0; i < count; ++i) p[i] = f32_to_bf16(x[i]);
  } else {
    auto* p = reinterpret_cast<uint8_t*>(base) + index;
    for (int64_t i = 0; i < count; ++i) p[i] = f32_to_e4m3_satfinite(x[i] / scale);
  }
}

}  // namespace

CpuKvCache::CpuKvCache(const KvCacheSpec& spec) {
  spec.validate(/*head_dim_multiple=*/2);  // RoPE pairs dimensions
  spec_ = spec;
  const auto bytes = static_cast<size_t>(spec.bytes_per_token_per_layer() / 2 * spec.num_pages * spec.page_size);
  for (int64_t l = 0; l < spec.num_layers; ++l) {
    k_.emplace_back(new std::byte[bytes]());
    v_.emplace_back(new std::byte[bytes]());
  }
}

std::unique_ptr<KvCache> CpuBackend::alloc_kv_cache(const KvCacheSpec& spec) {
  return std::make_unique<CpuKvCache>(spec);
}

const CpuKvCache& CpuBackend::checked_cache(const KvCache& cache, int64_t layer, const char* op) const {
  const auto* c = dynamic_cast<const CpuKvCache*>(&cache);
  if (c == nullptr) throw Error(std::string(op) + ": the KV cache was not allocated by the CPU backend");
  check_cache_layer(*c, layer, batch(op), op);
  return *c;
}

void CpuBackend::qk_norm_rope_kv_write(Tensor qkv, int64_t num_attention_heads, const Tensor* q_norm,
                                       const Tensor* k_norm, float eps, NormKind kind, const RopeTable& rope,
                                       KvCache& cache, int64_t layer) {
  const char* op = "qk_norm_rope_kv_write";
  auto& c = const_cast<CpuKvCache&>(checked_cache(cache, layer, op));
  const ForwardBatch& b = batch(op);
  const int64_t kv_heads = c.spec().num_key_value_heads;
  const int64_t d = c.spec().head_dim;
  const int64_t heads = num_attention_heads;
  check_qk_norm_rope_kv_write(qkv, heads, q_norm, k_norm, rope, c.spec(), b, DType::F32);
  const float k_scale = c.spec().k_scale(layer);
  const float v_scale = c.spec().v_scale(layer);
  const KvCacheDType dtype = c.spec().dtype;
  parallel_for(b.num_tokens(), 1, [&](int64_t begin, int64_t end) {
    std::vector<float> cos_t(static_cast<size_t>(d / 2)), sin_t(static_cast<size_t>(d / 2));
    for (int64_t t = begin; t < end; ++t) {
      const float position = static_cast<float>(b.positions[static_cast<size_t>(t)]);
      for (int64_t i = 0; i < d / 2; ++i) {
        const float freq = position * rope.inv_freq[static_cast<size_t>(i)];
        cos_t[static_cast<size_t>(i)] = std::cos(freq) * rope.attention_factor;
        sin_t[static_cast<size_t>(i)] = std::sin(freq) * rope.attention_factor;
      }
      float* row = qkv.row<float>(t);
      for (int64_t h = 0; h < heads + kv_heads; ++h) {
        float* x = row + h * d;
        const Tensor* w = h < heads ? q_norm : k_norm;
        if (w != nullptr) norm_head(x, w->ptr<float>(), d, eps, kind);
        rope_head(x, cos_t.data(), sin_t.data(), d);
      }
      // Slot s holds [num_key_value_heads, head_dim] contiguous, so a token's K (or V) is one run.
      const int64_t index = b.slot_mapping[static_cast<size_t>(t)] * kv_heads * d;
      write_kv(c.k(layer), dtype, k_scale, index, row + heads * d, kv_heads * d);
      write_kv(c.v(layer), dtype, v_scale, index, row + (heads + kv_heads) * d, kv_heads * d);
    }
  });
}

void CpuBackend::attention(const Tensor& q, const KvCache& cache, int64_t layer, float scale,
                           std::optional<int64_t> sliding_window, Tensor out) {
  const char* op = "attention";
  const CpuKvCache& c = checked_cache(cache, layer, op);
  const ForwardBatch& b = batch(op);
  const int64_t kv_heads = c.spec().num_key_value_heads;
  const int64_t d = c.spec().head_dim;
  const int64_t page_size = c.spec().page_size;
  const int64_t heads = check_attention(q, c.spec(), sliding_window, out, b, DType::F32);
  const int64_t group = heads / kv_heads;
  const KvReader k_reader(c.k(layer), c.spec().dtype, c.spec().k_scale(layer));
  const KvReader v_reader(c.v(layer), c.spec().dtype, c.spec().v_scale(layer));
  parallel_for(b.num_tokens() * heads, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> scores, key(static_cast<size_t>(d)), acc(static_cast<size_t>(d));
    for (int64_t task = begin; task < end; ++task) {
      const int64_t t = task / heads;
      const int64_t h = task % heads;
      const int64_t kvh = h / group;
      const int64_t s = b.seq_index[static_cast<size_t>(t)];
      const int64_t p = b.positions[static_cast<size_t>(t)];
      const int64_t first = sliding_window ? std::max<int64_t>(0, p - *sliding_window + 1) : 0;
      const int32_t* pages = b.page_tables.data() + s * b.max_pages_per_seq;
      const float* qh = q.row<float>(t) + h * d;
      const auto element = [&](int64_t j) {
        const int64_t slot = static_cast<int64_t>(pages[j / page_size]) * page_size + j % page_size;
        return (slot * kv_heads + kvh) * d;
      };
      scores.resize(static_cast<size_t>(p - first + 1));
      float max_score = -std::numeric_limits<float>::infinity();
      for (int64_t j = first; j <= p; ++j) {
        k_reader.read(element(j), d, key.data());
        float dotv = 0.0f;
        for (int64_t i = 0; i < d; ++i) dotv += qh[i] * key[static_cast<size_t>(i)];
        const float score = scale * dotv;
        scores[static_cast<size_t>(j - first)] = score;
        max_score = std::max(max_score, score);
      }
      float sum = 0.0f;
      for (float& sc : scores) {
        sc = std::exp(sc - max_score);
        sum += sc;
      }
      std::fill(acc.begin(), acc.end(), 0.0f);
      for (int64_t j = first; j <= p; ++j) {
        const float weight = scores[static_cast<size_t>(j - first)] / sum;
        v_reader.read(element(j), d, key.data());
        for (int64_t i = 0; i < d; ++i) acc[static_cast<size_t>(i)] += weight * key[static_cast<size_t>(i)];
      }
      std::memcpy(out.row<float>(t) + h * d, acc.data(), static_cast<size_t>(d) * sizeof(float));
    }
  });
}

}  // namespace adallm::backend::cpu
