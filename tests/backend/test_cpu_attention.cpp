// The attention path of the CPU backend: RoPE (NeoX rotate_half) and per-head q/k RMSNorm against fp64,
// the KV cache's stored bytes (bf16 round-to-nearest-even, e4m3 satfinite of x / scale), and paged causal
// attention against an fp64 restatement over a table of shapes: tokens 1, 7, 83; head_dim 16, 48, 80;
// GQA ratios 1, 4, 8; page_size 4 and 16 with shuffled (non-contiguous) page tables; sliding windows;
// a prefill then a decode step reading the keys the prefill wrote.
#include <algorithm>
#include <numeric>
#include <optional>

#include "backend/cpu/cpu_internal.h"
#include "core/float_codecs.h"
#include "cpu_test_util.h"

namespace adallm::backend::test {
namespace {

// Sequences with `context_lens`; this step holds each one's last `new_tokens[s]` positions. Pages are
// dealt from a shuffled list, so a sequence's pages are scattered; tables are padded with -1.
ForwardBatch make_batch(const std::vector<int>& context_lens, const std::vector<int>& new_tokens, int64_t page_size,
                        int64_t num_pages, uint32_t seed, const std::vector<std::vector<int32_t>>* fixed_pages = nullptr,
                        std::vector<std::vector<int32_t>>* pages_out = nullptr) {
  std::vector<int32_t> free_pages(static_cast<size_t>(num_pages));
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::mt19937 rng(seed);
  std::shuffle(free_pages.begin(), free_pages.end(), rng);
  ForwardBatch b;
  std::vector<std::vector<int32_t>> pages(context_lens.size());
  int32_t max_pages = 0;
  for (size_t s = 0; s < context_lens.size(); ++s) {
    const int needed = static_cast<int>((context_lens[s] + page_size - 1) / page_size);
    if (fixed_pages != nullptr) {
      pages[s] = (*fixed_pages)[s];
    } else {
      for (int p = 0; p < needed; ++p) {
        pages[s].push_back(free_pages.back());
        free_pages.pop_back();
      }
    }
    max_pages = std::max<int32_t>(max_pages, static_cast<int32_t>(pages[s].size()) + 1);
  }
  b.max_pages_per_seq = max_pages;
  for (size_t s = 0; s < context_lens.size(); ++s) {
    b.context_lens.push_back(context_lens[s]);
    for (int32_t p = 0; p < max_pages; ++p) {
      b.page_tables.push_back(p < static_cast<int32_t>(pages[s].size()) ? pages[s][static_cast<size_t>(p)] : -1);
    }
    for (int pos = context_lens[s] - new_tokens[s]; pos < context_lens[s]; ++pos) {
      b.token_ids.push_back(0);
      b.positions.push_back(pos);
      b.seq_index.push_back(static_cast<int32_t>(s));
      b.slot_mapping.push_back(int64_t{pages[s][static_cast<size_t>(pos / page_size)]} * page_size + pos % page_size);
      b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size() - 1));
    }
  }
  if (pages_out != nullptr) *pages_out = pages;
  return b;
}

float stored(float x, KvCacheDType dtype, float scale) {
  return dtype == KvCacheDType::bf16 ? bf16_to_f32(f32_to_bf16(x)) : e4m3_to_f32(f32_to_e4m3_satfinite(x / scale)) * scale;
}

KvCacheSpec spec_for(int64_t num_pages, int64_t page_size, int64_t kv_heads, int64_t head_dim, KvCacheDType dtype,
                     float k_scale = 1.0f, float v_scale = 1.0f) {
  KvCacheSpec spec;
  spec.num_layers = 2;
  spec.num_pages = num_pages;
  spec.page_size = page_size;
  spec.num_key_value_heads = kv_heads;
  spec.head_dim = head_dim;
  spec.dtype = dtype;
  spec.k_scales = {1.0f, k_scale};
  spec.v_scales = {1.0f, v_scale};
  return spec;
}

TEST(CpuAttention, RopeAndQkNormAgainstFp64) {
  auto b = cpu();
  const int64_t heads = 4, kv_heads = 2, d = 48, layer = 1;
  const int64_t cols = (heads + 2 * kv_heads) * d;
  auto cache = b->alloc_kv_cache(spec_for(8, 16, kv_heads, d, KvCacheDType::bf16));
  ForwardBatch batch = make_batch({83}, {7}, 16, 8, 1);
  b->set_batch(batch);
  RopeTable rope;
  for (int64_t i = 0; i < d / 2; ++i) rope.inv_freq.push_back(std::pow(10000.0f, -2.0f * float(i) / float(d)));
  rope.attention_factor = 1.25f;
  const auto qn = random_floats(size_t(d), 3, 0.5f, 1.5f), kn = random_floats(size_t(d), 4, -0.5f, 0.5f);
  auto q_norm = upload_f32(*b, qn, 1, d), k_norm = upload_f32(*b, kn, 1, d);
  for (bool with_norm : {false, true}) {
    const auto xs = random_floats(size_t(7 * cols), 2, -2, 2);
    auto qkv = upload_f32(*b, xs, 7, cols);
    b->qk_norm_rope_kv_write(qkv->view(), heads, with_norm ? &q_norm->view() : nullptr,
                             with_norm ? &k_norm->view() : nullptr, 1e-6f, NormKind::gemma, rope, *cache, layer);
    const auto got = read(*b, qkv->view());
    const auto& c = dynamic_cast<const cpu::CpuKvCache&>(*cache);
    const auto* kbits = reinterpret_cast<const uint16_t*>(c.k(layer));
    const auto* vbits = reinterpret_cast<const uint16_t*>(c.v(layer));
    for (int64_t t = 0; t < 7; ++t) {
      for (int64_t h = 0; h < heads + kv_heads; ++h) {
        std::vector<double> x(xs.begin() + t * cols + h * d, xs.begin() + t * cols + (h + 1) * d);
        if (with_norm) {
          const auto& w = h < heads ? qn : kn;
          double ss = 0;
          for (double v : x) ss += v * v;
          const double inv = 1.0 / std::sqrt(ss / double(d) + 1e-6);
          for (int64_t i = 0; i < d; ++i) x[size_t(i)] *= inv * (1.0 + w[size_t(i)]);
        }
        std::vector<double> expected(x.size());
        for (int64_t i = 0; i < d / 2; ++i) {
          const double freq = static_cast<float>(batch.positions[size_t(t)]) * rope.inv_freq[size_t(i)];  // fp32 product
          const double cs = std::cos(freq) * 1.25, sn = std::sin(freq) * 1.25;
          expected[size_t(i)] = x[size_t(i)] * cs - x[size_t(i + d / 2)] * sn;
          expected[size_t(i + d / 2)] = x[size_t(i + d / 2)] * cs + x[size_t(i)] * sn;
        }
        const std::vector<float> row(got.begin() + t * cols + h * d, got.begin() + t * cols + (h + 1) * d);
        expect_near_all(row, expected, 1e-5, 1e-5, "head " + std::to_string(h));
        if (h >= heads) {  // k: stored is bf16 of what qkv now holds
          const int64_t base = (batch.slot_mapping[size_t(t)] * kv_heads + (h - heads)) * d;
          for (int64_t i = 0; i < d; ++i) ASSERT_EQ(kbits[base + i], f32_to_bf16(row[size_t(i)]));
        }
      }
      // v is neither normed nor rotated, and is stored as given.
      for (int64_t i = 0; i < kv_heads * d; ++i) {
        const float v = xs[size_t(t * cols + (heads + kv_heads) * d + i)];
        ASSERT_EQ(got[size_t(t * cols + (heads + kv_heads) * d + i)], v);
        ASSERT_EQ(vbits[batch.slot_mapping[size_t(t)] * kv_heads * d + i], f32_to_bf16(v));
      }
    }
  }
}

TEST(CpuAttention, Fp8CacheStoresSatfiniteOfXOverScale) {
  auto b = cpu();
  const int64_t heads = 1, kv_heads = 1, d = 16, layer = 1;
  auto cache = b->alloc_kv_cache(spec_for(2, 4, kv_heads, d, KvCacheDType::fp8_e4m3, 0.5f, 2.0f));
  ForwardBatch batch = make_batch({1}, {1}, 4, 2, 1);  // position 0: RoPE is the identity
  b->set_batch(batch);
  RopeTable rope;
  rope.inv_freq.assign(d / 2, 1.0f);
  // k / 0.5: 1 -> 2 (0x40), 300 -> 600 saturates to 448 (0x7E), -0.1 -> -0.2 rounds to e4m3 -0.203125 (0xA5)
  std::vector<float> row(size_t(3 * d), 0.0f);
  row[size_t(d + 0)] = 1.0f;
  row[size_t(d + 1)] = 300.0f;
  row[size_t(d + 2)] = -0.1f;
  row[size_t(2 * d + 0)] = 3.0f;  // v / 2 = 1.5 -> 0x3C
  row[size_t(2 * d + 1)] = std::numeric_limits<float>::quiet_NaN();
  auto qkv = upload_f32(*b, row, 1, 3 * d);
  b->qk_norm_rope_kv_write(qkv->view(), heads, nullptr, nullptr, 1e-6f, NormKind::llama, rope, *cache, layer);
  const auto& c = dynamic_cast<const cpu::CpuKvCache&>(*cache);
  const auto* k = reinterpret_cast<const uint8_t*>(c.k(layer)) + batch.slot_mapping[0] * d;
  const auto* v = reinterpret_cast<const uint8_t*>(c.v(layer)) + batch.slot_mapping[0] * d;
  EXPECT_EQ(k[0], 0x40);
  EXPECT_EQ(k[1], 0x7E);
  EXPECT_EQ(k[2], 0xA5);
  EXPECT_EQ(k[3], 0x00);
  EXPECT_EQ(v[0], 0x3C);
  EXPECT_EQ(v[1] & 0x7F, 0x7F);  // NaN stays NaN
}

TEST(CpuAttention, KvCacheSpecIsValidated) {
  auto b = cpu();
  KvCacheSpec spec = spec_for(4, 16, 2, 16, KvCacheDType::fp8_e4m3);
  spec.k_scales = {1.0f};
  expect_error([&] { b->alloc_kv_cache(spec); }, "k_scales has 1 entries, expected 2");
  spec.k_scales = {1.0f, 0.0f};
  expect_error([&] { b->alloc_kv_cache(spec); }, "k_scales[1]");
  spec.k_scales = {1.0f, 1.0f};
  spec.head_dim = 15;
  expect_error([&] { b->alloc_kv_cache(spec); }, "head_dim 15");
}

// Keeps what the cache should hold per sequence position (as read back) and checks attention in fp64.
struct Reference {
  int64_t kv_heads, d;
  std::vector<std::vector<double>> k, v;  // per sequence: [positions, kv_heads, d]

  void record(const ForwardBatch& batch, const std::vector<float>& qkv_after, int64_t heads, KvCacheDType dtype,
              float k_scale, float v_scale) {
    const int64_t cols = (heads + 2 * kv_heads) * d;
    k.resize(batch.context_lens.size());
    v.resize(batch.context_lens.size());
    for (size_t t = 0; t < batch.token_ids.size(); ++t) {
      const auto s = static_cast<size_t>(batch.seq_index[t]);
      const size_t need = static_cast<size_t>(batch.context_lens[s] * kv_heads * d);
      if (k[s].size() < need) k[s].resize(need), v[s].resize(need);
      for (int64_t i = 0; i < kv_heads * d; ++i) {
        const size_t at = static_cast<size_t>(batch.positions[t] * kv_heads * d + i);
        k[s][at] = stored(qkv_after[t * cols + heads * d + i], dtype, k_scale);
        v[s][at] = stored(qkv_after[t * cols + (heads + kv_heads) * d + i], dtype, v_scale);
      }
    }
  }

  std::vector<double> attend(const ForwardBatch& batch, const std::vector<float>& q, int64_t heads, double scale,
                             std::optional<int64_t> window) const {
    const int64_t cols = (heads + 2 * kv_heads) * d;
    std::vector<double> out(size_t(batch.num_tokens() * heads * d));
    for (size_t t = 0; t < batch.token_ids.size(); ++t) {
      const auto& ks = k[size_t(batch.seq_index[t])];
      const auto& vs = v[size_t(batch.seq_index[t])];
      const int64_t p = batch.positions[t];
      for (int64_t h = 0; h < heads; ++h) {
        const int64_t kvh = h * kv_heads / heads;
        std::vector<double> scores;
        for (int64_t j = 0; j <= p; ++j) {
          if (window && j <= p - *window) continue;
          double dot = 0;
          for (int64_t i = 0; i < d; ++i) dot += double(q[t * cols + h * d + i]) * ks[size_t((j * kv_heads + kvh) * d + i)];
          scores.push_back(scale * dot);
        }
        const double m = *std::max_element(scores.begin(), scores.end());
        double sum = 0;
        for (double& sc : scores) sum += (sc = std::exp(sc - m));
        size_t n = 0;
        for (int64_t j = 0; j <= p; ++j) {
          if (window && j <= p - *window) continue;
          for (int64_t i = 0; i < d; ++i) {
            out[size_t((int64_t(t) * heads + h) * d + i)] += scores[n] / sum * vs[size_t((j * kv_heads + kvh) * d + i)];
          }
          ++n;
        }
      }
    }
    return out;
  }
};

struct Shape {
  int64_t heads, kv_heads, d, page_size;
  std::vector<int> context_lens;
  std::optional<int64_t> window;
  KvCacheDType dtype;
};

TEST(CpuAttention, PrefillThenDecodeAgainstFp64) {
  const std::vector<Shape> shapes = {
      {2, 2, 16, 4, {1}, std::nullopt, KvCacheDType::bf16},
      {8, 2, 48, 4, {7}, std::nullopt, KvCacheDType::bf16},
      {8, 1, 80, 16, {83}, std::nullopt, KvCacheDType::fp8_e4m3},
      {4, 1, 16, 4, {7, 1, 83}, 3, KvCacheDType::bf16},
      {8, 2, 48, 16, {83, 7}, 1, KvCacheDType::fp8_e4m3},
      {8, 8, 16, 16, {40, 17, 33}, 16, KvCacheDType::bf16},
      {4, 4, 48, 4, {9}, 100, KvCacheDType::fp8_e4m3},
  };
  auto b = cpu();
  uint32_t seed = 1;
  for (const Shape& sh : shapes) {
    SCOPED_TRACE("heads " + std::to_string(sh.heads) + " kv " + std::to_string(sh.kv_heads) + " d " +
                 std::to_string(sh.d) + " page " + std::to_string(sh.page_size) + " window " +
                 std::to_string(sh.window.value_or(0)));
    const int64_t num_pages = 64;
    const float k_scale = 0.05f, v_scale = 0.02f;
    auto cache = b->alloc_kv_cache(spec_for(num_pages, sh.page_size, sh.kv_heads, sh.d, sh.dtype, k_scale, v_scale));
    const int64_t layer = 1;
    const int64_t cols = (sh.heads + 2 * sh.kv_heads) * sh.d;
    const double scale = 1.0 / std::sqrt(double(sh.d));
    RopeTable rope;
    for (int64_t i = 0; i < sh.d / 2; ++i) rope.inv_freq.push_back(std::pow(10000.0f, -2.0f * float(i) / float(sh.d)));
    Reference ref{sh.kv_heads, sh.d, {}, {}};
    std::vector<std::vector<int32_t>> pages;
    // Prefill all but the last token of each sequence (sequences of length 1 prefill nothing but a decode).
    std::vector<int> pre_lens, pre_new, dec_new(sh.context_lens.size(), 1);
    for (int len : sh.context_lens) pre_lens.push_back(len), pre_new.push_back(len - 1);
    std::vector<int> page_lens = sh.context_lens;
    make_batch(page_lens, page_lens, sh.page_size, num_pages, seed, nullptr, &pages);
    for (int step = 0; step < 2; ++step) {
      std::vector<int> lens = sh.context_lens, news = step == 0 ? pre_new : dec_new;
      if (step == 0) {
        for (int& l : lens) l -= 1;
      }
      // Sequences with nothing in this step still need a valid context of >= 0; drop empty ones.
      std::vector<int> lens_kept, news_kept;
      std::vector<std::vector<int32_t>> pages_kept;
      for (size_t s = 0; s < lens.size(); ++s) {
        if (news[s] == 0) continue;
        lens_kept.push_back(lens[s]);
        news_kept.push_back(news[s]);
        pages_kept.push_back(pages[s]);
      }
      if (lens_kept.empty()) continue;
      ForwardBatch batch = make_batch(lens_kept, news_kept, sh.page_size, num_pages, seed, &pages_kept);
      b->set_batch(batch);
      const auto xs = random_floats(size_t(batch.num_tokens() * cols), seed++, -3, 3);
      auto qkv = upload_f32(*b, xs, batch.num_tokens(), cols);
      b->qk_norm_rope_kv_write(qkv->view(), sh.heads, nullptr, nullptr, 1e-6f, NormKind::llama, rope, *cache, layer);
      const auto after = read(*b, qkv->view());
      // Reference keeps per-kept-sequence state: map kept index back to the original sequence.
      Reference* r = &ref;
      std::vector<size_t> origin;
      for (size_t s = 0; s < lens.size(); ++s) {
        if (news[s] != 0) origin.push_back(s);
      }
      Reference view{sh.kv_heads, sh.d, {}, {}};
      view.k.resize(origin.size());
      view.v.resize(origin.size());
      r->k.resize(sh.context_lens.size());
      r->v.resize(sh.context_lens.size());
      for (size_t i = 0; i < origin.size(); ++i) view.k[i] = r->k[origin[i]], view.v[i] = r->v[origin[i]];
      view.record(batch, after, sh.heads, sh.dtype, k_scale, v_scale);
      for (size_t i = 0; i < origin.size(); ++i) r->k[origin[i]] = view.k[i], r->v[origin[i]] = view.v[i];
      auto out = b->alloc(batch.num_tokens(), sh.heads * sh.d, DType::F32);
      b->attention(qkv->view().col_slice(0, sh.heads * sh.d), *cache, layer, float(scale), sh.window, out->view());
      expect_near_all(read(*b, out->view()), view.attend(batch, after, sh.heads, scale, sh.window), 1e-4, 1e-5,
                      "attention step " + std::to_string(step));
    }
  }
}

TEST(CpuAttention, MalformedBatchAndShapesAreRefused) {
  auto b = cpu();
  const int64_t d = 16;
  auto cache = b->alloc_kv_cache(spec_for(4, 4, 1, d, KvCacheDType::bf16));
  ForwardBatch batch = make_batch({5}, {5}, 4, 4, 1);
  batch.slot_mapping[2] += 1;
  b->set_batch(batch);
  RopeTable rope;
  rope.inv_freq.assign(d / 2, 0.0f);
  auto qkv = b->alloc(5, 3 * d, DType::F32);
  expect_error([&] { b->qk_norm_rope_kv_write(qkv->view(), 1, nullptr, nullptr, 1e-6f, NormKind::llama, rope, *cache, 0); },
               "slot_mapping disagrees");
  batch.slot_mapping[2] -= 1;
  expect_error([&] { b->qk_norm_rope_kv_write(qkv->view(), 2, nullptr, nullptr, 1e-6f, NormKind::llama, rope, *cache, 0); },
               "qkv expected F32 [5, 64]");
  expect_error([&] { b->qk_norm_rope_kv_write(qkv->view(), 1, nullptr, nullptr, 1e-6f, NormKind::llama, rope, *cache, 2); },
               "layer 2");
  rope.inv_freq.pop_back();
  expect_error([&] { b->qk_norm_rope_kv_write(qkv->view(), 1, nullptr, nullptr, 1e-6f, NormKind::llama, rope, *cache, 0); },
               "inv_freq has 7 entries");
  auto out = b->alloc(5, d, DType::F32);
  expect_error([&] { b->attention(qkv->view().col_slice(0, d), *cache, 0, 1.0f, int64_t{0}, out->view()); },
               "sliding_window");
}

}  // namespace
}  // namespace adallm::backend::test
