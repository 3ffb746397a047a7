// The CUDA backend's attention path against the CPU backend's (label `gpu`): q/k norm + RoPE + KV write,
// then paged attention, over steps that mix sequences (prefill chunks next to single decode tokens),
// contexts of up to 3,000 keys over shuffled pages (so the split-K path and its merge run), GQA ratios
// 1, 2, 3, 4, 8 and 16, head_dim 16, 48, 64, 128 and 256, sliding windows, and both cache dtypes.
//
// Both backends get the same bf16-rounded qkv. Tolerance: the GPU rounds q (after RoPE) and the output to
// bf16 (2^-9 relative each, NMSE ~1e-6) and sums in another order; with an FP8 cache a key whose fp32
// value differs in the last bit may round to the neighbouring e4m3 code (2^-4 relative, rare). NMSE ≤ 1e-4
// (bf16) and ≤ 1e-3 (fp8) over the whole output leave room for those and catch any indexing error, which
// gives NMSE of order 1.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/error.h"
#include "core/float_codecs.h"
#include "kernels/attention/paged_attention.h"
#include "logits_compare.h"

namespace adallm::backend {
namespace {

struct Shape {
  int heads, kv_heads, head_dim;
  std::vector<int> context;   // per sequence: keys once the step has run
  std::vector<int> new_tokens;  // per sequence: tokens this step brings (the last ones of its context)
  int sliding_window = 0;
  bool qk_norm = false;
};

struct Result {
  std::vector<float> out;  // [tokens, heads * head_dim]
  std::vector<float> qkv;  // after norm + rope
};

std::unique_ptr<Buffer> upload_f32(Backend& b, const std::vector<float>& v, int64_t rows, int64_t cols, DType dtype,
                                   const char* name) {
  return b.upload(HostArray{name, v.data(), DType::F32, rows, cols}, dtype);
}

Result run(Backend& b, const Shape& s, KvCacheDType kv, const std::vector<float>& qkv_host,
           const std::vector<float>& norm_w, const RopeTable& rope, int page_size, int num_pages,
           const ForwardBatch& history, const ForwardBatch& step) {
  const int64_t d = s.head_dim, cols = (s.heads + 2 * s.kv_heads) * d;
  KvCacheSpec spec;
  spec.num_layers = 1;
  spec.num_pages = num_pages;
  spec.page_size = page_size;
  spec.num_key_value_heads = s.kv_heads;
  spec.head_dim = d;
  spec.dtype = kv;
  spec.k_scales = {0.75f};
  spec.v_scales = {1.25f};
  auto cache = b.alloc_kv_cache(spec);
  const DType dt = b.activation_dtype();
  auto q_norm = upload_f32(b, norm_w, 1, d, DType::F32, "q_norm");
  auto k_norm = upload_f32(b, std::vector<float>(norm_w.rbegin(), norm_w.rend()), 1, d, DType::F32, "k_norm");
  const Tensor qn = q_norm->view(), kn = k_norm->view();
  Result r;
  // The history (earlier keys) goes in first, then the step whose attention is compared.
  int64_t row0 = 0;
  for (const ForwardBatch* batch : {&history, &step}) {
    const int64_t n = batch->num_tokens();
    if (n == 0) continue;
    std::vector<float> rows(qkv_host.begin() + row0 * cols, qkv_host.begin() + (row0 + n) * cols);
    row0 += n;
    auto qkv = upload_f32(b, rows, n, cols, dt, "qkv");
    auto out = b.alloc(n, s.heads * d, dt);
    b.set_batch(*batch);
    b.qk_norm_rope_kv_write(qkv->view(), s.heads, s.qk_norm ? &qn : nullptr, s.qk_norm ? &kn : nullptr, 1e-6f,
                            NormKind::llama, rope, *cache, 0);
    const Tensor q = qkv->view().col_slice(0, s.heads * d);
    b.attention(q, *cache, 0, 1.0f / std::sqrt(static_cast<float>(d)),
                s.sliding_window > 0 ? std::optional<int64_t>(s.sliding_window) : std::nullopt, out->view());
    if (batch == &step) {
      r.out.resize(static_cast<size_t>(n * s.heads * d));
      b.to_host(out->view(), r.out);
      r.qkv.resize(static_cast<size_t>(n * cols));
      b.to_host(qkv->view(), r.qkv);
    }
  }
  return r;
}

using test::nmse;

// warps: CudaOptions::decode_attention_warps (0: chosen per launch — 16 for these few-sequence steps where
// they exist —, 4 or 16 forced); steps with decode tokens run all three, the others (prefill kernel only)
// warps 0.
class CudaAttention : public ::testing::TestWithParam<std::tuple<Shape, KvCacheDType, int>> {};

// The CPU backend's result per (shape, cache dtype), computed once for the three block shapes (the CPU
// prefill of a long history takes seconds).
const Result& cpu_result(const std::string& key, const std::function<Result()>& compute) {
  static std::map<std::string, Result> results;
  auto it = results.find(key);
  if (it == results.end()) it = results.emplace(key, compute()).first;
  return it->second;
}

TEST_P(CudaAttention, MatchesTheCpuBackend) {
  const auto& [s, kv, warps] = GetParam();
  std::mt19937 rng(1234);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int page_size = 16;
  const int64_t d = s.head_dim, cols = (s.heads + 2 * s.kv_heads) * d;
  const auto num_seqs = static_cast<int>(s.context.size());
  int total_pages = 0;
  for (int c : s.context) total_pages += (c + page_size - 1) / page_size;
  const int num_pages = total_pages + 5;
  // Pages dealt out shuffled, so that no sequence's keys are contiguous.
  std::vector<int32_t> free_pages(static_cast<size_t>(num_pages));
  std::iota(free_pages.begin(), free_pages.end(), 0);
  std::shuffle(free_pages.begin(), free_pages.end(), rng);
  int max_pages = 0;
  for (int c : s.context) max_pages = std::max(max_pages, (c + page_size - 1) / page_size);
  ForwardBatch history, step;
  for (ForwardBatch* batch : {&history, &step}) {
    batch->max_pages_per_seq = max_pages;
    batch->page_tables.assign(static_cast<size_t>(num_seqs * max_pages), -1);
  }
  size_t next_page = 0;
  for (int q = 0; q < num_seqs; ++q) {
    for (int p = 0; p < (s.context[q] + page_size - 1) / page_size; ++p) {
      const int32_t page = free_pages[next_page++];
      history.page_tables[static_cast<size_t>(q * max_pages + p)] = page;
      step.page_tables[static_cast<size_t>(q * max_pages + p)] = page;
    }
  }
  const auto add_tokens = [&](ForwardBatch& batch, int q, int first, int last) {
    for (int t = first; t < last; ++t) {
      batch.token_ids.push_back(0);
      batch.positions.push_back(t);
      batch.seq_index.push_back(q);
      batch.slot_mapping.push_back(int64_t{batch.page_tables[static_cast<size_t>(q * max_pages + t / page_size)]} * page_size +
                                   t % page_size);
    }
  };
  for (int q = 0; q < num_seqs; ++q) {
    const int before = s.context[q] - s.new_tokens[q];
    history.context_lens.push_back(before);
    step.context_lens.push_back(s.context[q]);
    add_tokens(history, q, 0, before);
    add_tokens(step, q, before, s.context[q]);
  }
  // A history-less sequence still needs a (zero-length) context entry that validates; none are used here.
  const int64_t tokens = history.num_tokens() + step.num_tokens();
  std::vector<float> qkv(static_cast<size_t>(tokens * cols));
  for (float& v : qkv) v = bf16_to_f32(f32_to_bf16(normal(rng) * 2.0f));
  std::vector<float> norm_w(static_cast<size_t>(d));
  for (float& v : norm_w) v = 1.0f + 0.2f * normal(rng);
  RopeTable rope;
  for (int64_t i = 0; i < d / 2; ++i) rope.inv_freq.push_back(std::pow(10000.0f, -2.0f * static_cast<float>(i) / static_cast<float>(d)));
  rope.attention_factor = 1.0f;

  std::string key = std::to_string(s.heads) + "/" + std::to_string(s.kv_heads) + "/" + std::to_string(s.head_dim) + "/" +
                    std::to_string(s.sliding_window) + "/" + std::to_string(s.qk_norm) + "/" + kv_cache_dtype_name(kv);
  for (size_t q = 0; q < s.context.size(); ++q) key += "/" + std::to_string(s.context[q]) + "+" + std::to_string(s.new_tokens[q]);
  const Result& want = cpu_result(key, [&] {
    auto cpu = make_cpu_backend(2);
    return run(*cpu, s, kv, qkv, norm_w, rope, page_size, num_pages, history, step);
  });
  auto cuda = make_cuda_backend(CudaOptions{.decode_attention_warps = warps});
  const bool fp8 = kv == KvCacheDType::fp8_e4m3;
  if (warps == 16 && !kernels::paged_attention_wide_blocks(s.head_dim, fp8, s.heads / s.kv_heads)) {
    // Asking for a block shape that does not exist is an error naming it, not another shape.
    try {
      run(*cuda, s, kv, qkv, norm_w, rope, page_size, num_pages, history, step);
      ADD_FAILURE() << "forced 16-warp blocks ran where they do not exist";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("no 16-warp decode blocks"), std::string::npos) << e.what();
    }
    return;
  }
  const Result got = run(*cuda, s, kv, qkv, norm_w, rope, page_size, num_pages, history, step);
  const double e_qkv = nmse(got.qkv, want.qkv), e_out = nmse(got.out, want.out);
  std::printf("[cuda attention] heads %d/%d d %d window %d kv %s warps %d: qkv NMSE %.2e, out NMSE %.2e\n", s.heads,
              s.kv_heads, s.head_dim, s.sliding_window, kv_cache_dtype_name(kv), warps, e_qkv, e_out);
  EXPECT_LE(e_qkv, 1e-5);  // q and k rounded to bf16 once more than on the CPU
  EXPECT_LE(e_out, kv == KvCacheDType::bf16 ? 1e-4 : 1e-3);
}

std::vector<std::tuple<Shape, KvCacheDType, int>> cases() {
  const std::vector<Shape> shapes = {
      // Qwen3-8B heads: one long decode, a decode next to a prefill chunk that starts mid-page.
      {32, 8, 128, {2000}, {1}, 0, true},
      {32, 8, 128, {700, 83}, {1, 45}, 0, true},
      // Llama-like GQA 4 at head_dim 64, several decodes and a fresh prompt of 7 tokens.
      {8, 2, 64, {129, 16, 17, 7}, {1, 1, 1, 7}, 0, false},
      // Gemma3-like sliding window over a long context, head_dim 256, GQA 2; and GQA 1.
      {8, 4, 256, {1500, 40}, {3, 40}, 512, true},
      {4, 4, 128, {300}, {300}, 0, false},
      {16, 2, 128, {1024, 1}, {1, 1}, 100, false},
      // 16 query heads per KV head at head_dim 256 (two n8 tiles of queries even when decoding).
      {16, 1, 256, {600, 20}, {2, 20}, 0, false},
      // The fixtures' head_dim 16 with a short window; GQA 3 at head_dim 48 (a 32-dim group and a last
      // 16 dims of fp8 V); a long prefill chunk over a long context (blocks of 4 tokens, split).
      {4, 2, 16, {90, 33}, {1, 33}, 8, true},
      {6, 2, 48, {200}, {37}, 0, false},
      {32, 8, 128, {3000}, {500}, 0, true},
  };
  std::vector<std::tuple<Shape, KvCacheDType, int>> all;
  for (const Shape& s : shapes) {
    const bool decodes = std::find(s.new_tokens.begin(), s.new_tokens.end(), 1) != s.new_tokens.end();
    for (KvCacheDType kv : {KvCacheDType::bf16, KvCacheDType::fp8_e4m3}) {
      for (int warps : {0, 4, 16}) {
        if (warps == 0 || decodes) all.emplace_back(s, kv, warps);
      }
    }
  }
  return all;
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaAttention, ::testing::ValuesIn(cases()));

// The forced-16 cases above run the wide kernel only where it exists: on a GPU with the shared memory of
// an A100 or H100 it must exist for the shapes that matter (Qwen3 / Llama fp8 at head_dim 128, head_dim 64
// either dtype), so that those cases cannot pass by refusing.
TEST(CudaAttentionWideBlocks, ExistWhereTheSharedMemoryAllows) {
  auto cuda = make_cuda_backend();  // selects and initializes the device
  int device = 0, optin = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  ASSERT_EQ(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device), cudaSuccess);
  EXPECT_FALSE(kernels::paged_attention_wide_blocks(256, true, 2));  // head_dim 256: narrow blocks only
  EXPECT_FALSE(kernels::paged_attention_wide_blocks(128, false, 4));  // bf16 rings of 16 warps: > 227 KB
  EXPECT_TRUE(kernels::paged_attention_wide_blocks(64, true, 4));
  if (optin >= 160 * 1024) {
    EXPECT_TRUE(kernels::paged_attention_wide_blocks(128, true, 4));
    EXPECT_TRUE(kernels::paged_attention_wide_blocks(128, true, 16));
    EXPECT_TRUE(kernels::paged_attention_wide_blocks(64, false, 2));
  }
}

}  // namespace
}  // namespace adallm::backend
