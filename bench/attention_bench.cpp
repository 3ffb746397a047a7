// Decode attention from the paged KV cache on the GPU: `seqs` sequences of `context` keys each decode one
// token (Qwen3-8B heads by default: 32 query heads over 8 KV heads, head_dim 128), reading K and V from
// fp8 or bf16 pages. Reports µs per call and GB/s over the KV bytes read, and the ratio to the
// device-to-device copy bandwidth measured in the same run. The cache holds enough layers (> 256 MB) that
// cycling through them keeps K/V out of the L2. With --prefill N each sequence instead brings its last N
// tokens as one causal chunk (prefill attention), reported in TFLOP/s.
//
//   attention_bench [--seqs 1,8,32,64] [--context 1024,8192,32768] [--kv-cache-dtype fp8] [--heads 32]
//                   [--kv-heads 8] [--head-dim 128] [--prefill N] [--warps 0|4|16]
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#include "core/error.h"
#include "decode_batch.h"

using namespace adallm;

namespace {

int run(int argc, char** argv) {
  CLI::App app{"decode attention from the paged KV cache: GB/s over the KV bytes read"};
  std::vector<int64_t> seqs_list{1, 8, 32, 64}, contexts{1024, 8192, 32768};
  std::string kv = "fp8";
  int64_t heads = 32, kv_heads = 8, head_dim = 128, calls = 20;
  app.add_option("--seqs", seqs_list, "sequences decoding together")->delimiter(',');
  app.add_option("--context", contexts, "keys per sequence")->delimiter(',');
  app.add_option("--kv-cache-dtype", kv, "fp8 or bf16")->check(CLI::IsMember({"fp8", "bf16"}));
  app.add_option("--heads", heads, "query heads");
  app.add_option("--kv-heads", kv_heads, "KV heads");
  app.add_option("--head-dim", head_dim, "head_dim");
  app.add_option("--calls", calls, "timed calls per configuration");
  int warps = 0;
  app.add_option("--warps", warps, "warps per decode block: 0 (chosen per launch), 4 or 16")->check(CLI::IsMember({0, 4, 16}));
  int64_t prefill = 0;
  app.add_option("--prefill", prefill,
                 "instead of decoding, each sequence brings its last N tokens (a causal prefill chunk): TFLOP/s");
  CLI11_PARSE(app, argc, argv);

  const double copy = cuda::measure_copy_bandwidth();
  auto b = backend::make_cuda_backend(backend::CudaOptions{.decode_attention_warps = warps});
  const backend::KvCacheDType dtype = backend::parse_kv_cache_dtype(kv);
  const int64_t page_size = 16;
  std::printf("decode attention on %s: %lld query heads over %lld KV heads, head_dim %lld, KV %s; copy %.0f GB/s\n",
              b->name().c_str(), static_cast<long long>(heads), static_cast<long long>(kv_heads),
              static_cast<long long>(head_dim), kv.c_str(), copy / 1e9);
  if (prefill > 0) {
    std::printf("prefill: each sequence's last %lld tokens attend causally; TFLOP/s counts 4 · head_dim flops per "
                "(query head, key) pair\n", static_cast<long long>(prefill));
    std::printf("%6s %8s %10s %10s\n", "seqs", "context", "us/call", "TFLOP/s");
  } else {
    std::printf("%6s %8s %10s %10s %8s\n", "seqs", "context", "us/call", "GB/s", "of copy");
  }
  for (int64_t seqs : seqs_list) {
    for (int64_t context : contexts) {
      const int64_t pages_per_seq = (context + page_size - 1) / page_size;
      backend::KvCacheSpec spec;
      spec.num_pages = seqs * pages_per_seq;
      spec.page_size = page_size;
      spec.num_key_value_heads = kv_heads;
      spec.head_dim = head_dim;
      spec.dtype = dtype;
      const double layer_bytes = double(spec.bytes_per_token_per_layer()) * double(spec.num_pages * page_size);
      spec.num_layers = std::max<int64_t>(2, static_cast<int64_t>(256e6 / layer_bytes) + 1);
      spec.k_scales.assign(static_cast<size_t>(spec.num_layers), 1.0f);
      spec.v_scales.assign(static_cast<size_t>(spec.num_layers), 1.0f);
      std::unique_ptr<backend::KvCache> cache;
      try {
        cache = b->alloc_kv_cache(spec);
      } catch (const Error& e) {
        std::printf("%6lld %8lld   skipped: %s\n", static_cast<long long>(seqs), static_cast<long long>(context), e.what());
        continue;
      }
      const int64_t new_tokens = prefill > 0 ? std::min(prefill, context) : 1;
      const backend::ForwardBatch batch = bench::decode_batch(seqs, context, page_size, new_tokens);
      const int64_t tokens = batch.num_tokens();
      // Random queries (zeros would make every score equal).
      std::vector<float> q_host(static_cast<size_t>(tokens * heads * head_dim));
      std::mt19937 rng(7);
      std::normal_distribution<float> normal(0.0f, 1.0f);
      for (float& v : q_host) v = normal(rng);
      auto q = b->upload(backend::HostArray{"q", q_host.data(), DType::F32, tokens, heads * head_dim}, DType::BF16);
      auto out = b->alloc(tokens, heads * head_dim, DType::BF16);
      b->set_batch(batch);
      const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
      for (int64_t l = 0; l < spec.num_layers; ++l) b->attention(q->view(), *cache, l, scale, std::nullopt, out->view());
      backend::set_op_profiling(*b, true);
      for (int64_t i = 0; i < calls; ++i) {
        b->attention(q->view(), *cache, i % spec.num_layers, scale, std::nullopt, out->view());
      }
      const std::vector<backend::OpTime> times = backend::take_op_profile(*b);
      backend::set_op_profiling(*b, false);
      const double us = times.at(0).gpu_ms * 1e3 / double(calls);
      if (prefill > 0) {
        // Token i of the chunk sees context - new_tokens + i + 1 keys.
        const double pairs = double(seqs) * (double(new_tokens) * double(context - new_tokens) +
                                             double(new_tokens) * double(new_tokens + 1) / 2.0);
        const double flops = 4.0 * double(heads) * double(head_dim) * pairs;
        std::printf("%6lld %8lld %10.1f %10.1f\n", static_cast<long long>(seqs), static_cast<long long>(context), us,
                    flops / us / 1e6);
        continue;
      }
      const double bytes = layer_bytes * double(seqs * context) / double(spec.num_pages * page_size);
      std::printf("%6lld %8lld %10.1f %10.0f %7.1f%%\n", static_cast<long long>(seqs), static_cast<long long>(context), us,
                  bytes / us / 1e3, 100.0 * bytes / (us / 1e6) / copy);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "attention_bench: %s\n", e.what());
    return 1;
  }
}
