// NVFP4 linear benchmark on the real layer shapes of Qwen3-8B, Llama-3.1-8B, Gemma3-27B and Qwen3-30B-A3B:
// the decode GEMV (up to 64 tokens) and the sm_90a prefill GEMM (16 tokens and up) — time per call,
// effective bandwidth, TFLOP/s, and the ratios to the device-to-device copy bandwidth and to BF16 cuBLAS
// on the same shape, all measured in the same run. Weights rotate through enough copies (≥ 4× L2) that
// every call reads them from DRAM. Our kernels are timed as CUDA-graph replays of many calls (the engine
// replays graphs), cuBLAS as back-to-back stream launches (which favours us slightly on the shortest
// calls). For BF16 weights at up to 32 tokens the sweep column also times our BF16 GEMV against cuBLAS,
// both as plain stream launches.
//
// usage: nvfp4_linear_bench [--json FILE] [--tokens 1,2,4,8] [--only MODEL|MODEL:LAYER] [--moe]
//
// --moe times the MoE decode path of a Qwen3-30B-A3B layer instead (see run_moe_bench).
#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kernels/cuda_check.h"
#include "kernels/linear/bf16_gemv.h"
#include "kernels/linear/nvfp4_gemm.h"
#include "kernels/linear/nvfp4_gemv.h"
#include "kernels/linear/nvfp4_linear.h"
#include "kernels/linear/nvfp4_w4a8.h"
#include "kernels/moe/moe.h"

namespace {

using adallm::kernels::Nvfp4LinearParams;
using adallm::kernels::Nvfp4TiledShape;

#define CUBLAS_CHECK(call)                                                                  \
  do {                                                                                      \
    cublasStatus_t s_ = (call);                                                             \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                      \
      std::fprintf(stderr, "cuBLAS error %d in %s (%s:%d)\n", int(s_), #call, __FILE__, __LINE__); \
      std::exit(1);                                                                         \
    }                                                                                       \
  } while (0)

struct Shape {
  const char* model;
  const char* layer;
  int64_t n, k;
};

const Shape kShapes[] = {
    {"qwen3-8b", "qkv", 6144, 4096},      {"qwen3-8b", "o", 4096, 4096},
    {"qwen3-8b", "gate_up", 24576, 4096}, {"qwen3-8b", "down", 4096, 12288},
    {"llama-3.1-8b", "qkv", 6144, 4096},  {"llama-3.1-8b", "o", 4096, 4096},
    {"llama-3.1-8b", "gate_up", 28672, 4096}, {"llama-3.1-8b", "down", 4096, 14336},
    {"gemma3-27b", "qkv", 8192, 5376},    {"gemma3-27b", "o", 5376, 4096},
    {"gemma3-27b", "gate_up", 43008, 5376}, {"gemma3-27b", "down", 5376, 21504},
    // Qwen3-30B-A3B: attention, and one expert (a decode step runs 8 of 128 per token; grouping them into
    // one launch is the MoE kernel's job, so a lone expert here shows the fixed cost of a small call).
    {"qwen3-30b-a3b", "qkv", 5120, 2048}, {"qwen3-30b-a3b", "o", 2048, 4096},
    {"qwen3-30b-a3b", "expert_gu", 1536, 2048}, {"qwen3-30b-a3b", "expert_dn", 2048, 768},
    // BF16 in the checkpoints: the MoE router and the lm_head, where the bf16 GEMV column compares our
    // kernel with cuBLAS (the NVFP4 columns only show what a 4-bit form of the shape would cost).
    {"qwen3-30b-a3b", "router", 128, 2048}, {"qwen3-30b-a3b", "lm_head", 151936, 2048},
    {"qwen3-8b", "lm_head", 151936, 4096},
};

uint64_t rng_state = 0x9E3779B97F4A7C15ull;
uint64_t next_random() {
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 7;
  rng_state ^= rng_state << 17;
  return rng_state;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Median over `reps` of the per-call time of `calls` back-to-back calls (ms → µs).
template <typename Fn>
double time_calls(cudaStream_t stream, int calls, int reps, Fn&& launch_all) {
  cudaEvent_t a, b;
  ADALLM_CUDA_CHECK(cudaEventCreate(&a));
  ADALLM_CUDA_CHECK(cudaEventCreate(&b));
  launch_all();  // warm-up
  ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> us;
  for (int r = 0; r < reps; ++r) {
    ADALLM_CUDA_CHECK(cudaEventRecord(a, stream));
    launch_all();
    ADALLM_CUDA_CHECK(cudaEventRecord(b, stream));
    ADALLM_CUDA_CHECK(cudaEventSynchronize(b));
    float ms = 0;
    ADALLM_CUDA_CHECK(cudaEventElapsedTime(&ms, a, b));
    us.push_back(1000.0 * ms / calls);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return median(us);
}

double copy_bandwidth_gbs(cudaStream_t stream) {
  const size_t bytes = size_t{1} << 30;
  void *src = nullptr, *dst = nullptr;
  ADALLM_CUDA_CHECK(cudaMalloc(&src, bytes));
  ADALLM_CUDA_CHECK(cudaMalloc(&dst, bytes));
  ADALLM_CUDA_CHECK(cudaMemset(src, 1, bytes));
  const double us = time_calls(stream, 1, 15, [&] {
    ADALLM_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream));
  });
  cudaFree(src);
  cudaFree(dst);
  return 2.0 * double(bytes) / (us * 1e-6) / 1e9;  // read + write
}

std::vector<int64_t> parse_list(const char* s) {
  std::vector<int64_t> v;
  for (const char* p = s; *p;) {
    v.push_back(std::strtoll(p, const_cast<char**>(&p), 10));
    if (*p == ',') ++p;
  }
  return v;
}

// --moe: the MoE decode path of a Qwen3-30B-A3B layer (128 experts, gate/up 1536 × 2048 with SiLU, down
// 2048 × 768, top-8) as the engine runs it — the device sort of the (token, k) pairs, the two expert GEMVs
// and the combine — for random routings (8 distinct experts per token, seeded). Two copies of all 128
// experts (680 MB) alternate, so the weights come from DRAM. Reported against the bytes of the distinct
// experts the routing touches (each should be read once): GB/s and the share of the copy bandwidth. Each
// expert-GEMV block shape (variant) is timed for each linear, the other one keeping the automatic choice.
void run_moe_bench(cudaStream_t stream, double copy_gbs, const std::vector<int64_t>& token_counts) {
  using namespace adallm::kernels;
  constexpr int kExperts = 128, kTopK = 8;
  constexpr int64_t kHidden = 2048, kInter = 768;
  const Nvfp4TiledShape gu_shape{2 * kInter, kHidden, /*gate_up=*/true}, dn_shape{kHidden, kInter};
  const auto repacked = [&](const Nvfp4TiledShape& shape) {
    std::vector<uint8_t> packed(static_cast<size_t>(shape.n * shape.k / 2)), scales(static_cast<size_t>(shape.n * shape.k / 16));
    for (auto& b : packed) b = static_cast<uint8_t>(next_random());
    for (auto& b : scales) b = static_cast<uint8_t>(0x28 + next_random() % 0x20);
    uint8_t *d_packed, *d_scales, *tiles;
    int* d_bad;
    ADALLM_CUDA_CHECK(cudaMalloc(&d_packed, packed.size()));
    ADALLM_CUDA_CHECK(cudaMalloc(&d_scales, scales.size()));
    ADALLM_CUDA_CHECK(cudaMalloc(&d_bad, sizeof(int)));
    ADALLM_CUDA_CHECK(cudaMalloc(&tiles, static_cast<size_t>(shape.tile_bytes())));
    ADALLM_CUDA_CHECK(cudaMemcpy(d_packed, packed.data(), packed.size(), cudaMemcpyHostToDevice));
    ADALLM_CUDA_CHECK(cudaMemcpy(d_scales, scales.data(), scales.size(), cudaMemcpyHostToDevice));
    nvfp4_repack(d_packed, d_scales, shape, tiles, d_bad, stream);
    ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream));
    cudaFree(d_packed);
    cudaFree(d_scales);
    cudaFree(d_bad);
    return tiles;
  };
  uint8_t* gu_one = repacked(gu_shape);
  uint8_t* dn_one = repacked(dn_shape);
  const size_t gu_bytes = static_cast<size_t>(gu_shape.tile_bytes()), dn_bytes = static_cast<size_t>(dn_shape.tile_bytes());
  float* row_scale;
  ADALLM_CUDA_CHECK(cudaMalloc(&row_scale, 2 * kInter * sizeof(float)));
  const std::vector<float> scale_values(2 * kInter, 1.0f / 4096.0f);
  ADALLM_CUDA_CHECK(cudaMemcpy(row_scale, scale_values.data(), scale_values.size() * sizeof(float), cudaMemcpyHostToDevice));
  constexpr int kCopies = 2;
  std::vector<uint8_t*> blobs;
  std::vector<const void**> tables(kCopies);
  for (int c = 0; c < kCopies; ++c) {
    uint8_t* blob;
    ADALLM_CUDA_CHECK(cudaMalloc(&blob, kExperts * (gu_bytes + dn_bytes)));
    blobs.push_back(blob);
    std::vector<const void*> t(4 * kExperts);
    for (int e = 0; e < kExperts; ++e) {
      uint8_t* gu = blob + e * (gu_bytes + dn_bytes);
      ADALLM_CUDA_CHECK(cudaMemcpy(gu, gu_one, gu_bytes, cudaMemcpyDeviceToDevice));
      ADALLM_CUDA_CHECK(cudaMemcpy(gu + gu_bytes, dn_one, dn_bytes, cudaMemcpyDeviceToDevice));
      t[e] = gu;
      t[kExperts + e] = row_scale;
      t[2 * kExperts + e] = gu + gu_bytes;
      t[3 * kExperts + e] = row_scale;
    }
    ADALLM_CUDA_CHECK(cudaMalloc(&tables[c], t.size() * sizeof(void*)));
    ADALLM_CUDA_CHECK(cudaMemcpy(tables[c], t.data(), t.size() * sizeof(void*), cudaMemcpyHostToDevice));
  }
  std::printf("\nMoE experts, Qwen3-30B-A3B layer (128 experts, top-8): sort + gate/up + down + combine, us per layer\n");
  std::printf("%5s %6s %8s | %9s %7s %6s | %s\n", "T", "pairs", "experts", "auto us", "GB/s", "%copy", "variants (us), the other linear automatic");
  for (const int64_t tokens : token_counts) {
    const int64_t pairs = tokens * kTopK;
    if (pairs > 1024) continue;  // the engine's device path
    std::vector<int32_t> ids(static_cast<size_t>(pairs));
    std::vector<bool> used(kExperts, false);
    for (int64_t t = 0; t < tokens; ++t) {
      for (int k = 0; k < kTopK; ++k) {
        int32_t e;
        bool repeat;
        do {
          e = static_cast<int32_t>(next_random() % kExperts);
          repeat = false;
          for (int j = 0; j < k; ++j) repeat |= ids[static_cast<size_t>(t * kTopK + j)] == e;
        } while (repeat);
        ids[static_cast<size_t>(t * kTopK + k)] = e;
        used[static_cast<size_t>(e)] = true;
      }
    }
    const int distinct = static_cast<int>(std::count(used.begin(), used.end(), true));
    const int slots = static_cast<int>(std::min<int64_t>(pairs, kExperts));
    int32_t *d_ids, *index;
    float *weights, *y;
    __nv_bfloat16 *x, *h, *out;
    ADALLM_CUDA_CHECK(cudaMalloc(&d_ids, pairs * 4));
    ADALLM_CUDA_CHECK(cudaMemcpy(d_ids, ids.data(), pairs * 4, cudaMemcpyHostToDevice));
    ADALLM_CUDA_CHECK(cudaMalloc(&index, (kExperts + 1 + slots + 2 * pairs) * 4));
    ADALLM_CUDA_CHECK(cudaMalloc(&weights, pairs * 4));
    ADALLM_CUDA_CHECK(cudaMemset(weights, 0, pairs * 4));
    ADALLM_CUDA_CHECK(cudaMalloc(&y, pairs * kHidden * 4));
    ADALLM_CUDA_CHECK(cudaMalloc(&x, tokens * kHidden * 2));
    ADALLM_CUDA_CHECK(cudaMemset(x, 0, tokens * kHidden * 2));
    ADALLM_CUDA_CHECK(cudaMalloc(&h, pairs * kInter * 2));
    ADALLM_CUDA_CHECK(cudaMalloc(&out, tokens * kHidden * 2));
    MoeSortedPairs sorted{index, index + kExperts + 1, index + kExperts + 1 + slots, index + kExperts + 1 + slots + pairs, slots};
    const auto layer = [&](int copy, int gu_variant, int dn_variant) {
      const auto* const* t = reinterpret_cast<const void* const*>(tables[static_cast<size_t>(copy)]);
      moe_sort_pairs(d_ids, pairs, kTopK, kExperts, sorted, stream);
      Nvfp4ExpertGemv g;
      g.active = sorted.active;
      g.offsets = sorted.offsets;
      g.slots = slots;
      g.num_experts = kExperts;
      Nvfp4LinearParams p;
      p.shape = gu_shape;
      p.tiles = gu_one;
      p.row_scale = row_scale;
      p.x = x;
      p.x_stride = kHidden;
      p.out_bf16 = h;
      p.out_stride = kInter;
      p.activation = Nvfp4Activation::silu;
      p.variant = gu_variant;
      g.tiles = reinterpret_cast<const uint8_t* const*>(t);
      g.row_scale = reinterpret_cast<const float* const*>(t + kExperts);
      g.x_rows = sorted.row_token;
      nvfp4_gemv_experts(p, g, stream);
      p = Nvfp4LinearParams{};
      p.shape = dn_shape;
      p.tiles = dn_one;
      p.row_scale = row_scale;
      p.x = h;
      p.x_stride = kInter;
      p.out = y;
      p.out_stride = kHidden;
      p.variant = dn_variant;
      g.tiles = reinterpret_cast<const uint8_t* const*>(t + 2 * kExperts);
      g.row_scale = reinterpret_cast<const float* const*>(t + 3 * kExperts);
      g.x_rows = nullptr;
      nvfp4_gemv_experts(p, g, stream);
      moe_combine(y, sorted.pair_row, weights, tokens, kTopK, kHidden, out, kHidden, stream);
    };
    const int calls = 32;
    const auto time_variants = [&](int gu_variant, int dn_variant) {
      return time_calls(stream, calls, 15, [&] {
        for (int i = 0; i < calls; ++i) layer(i % kCopies, gu_variant, dn_variant);
      });
    };
    const double auto_us = time_variants(0, 0);
    // Each linear's block shapes in turn, the other one automatic.
    std::string sweep = " gate/up:";
    for (int v = 1; v <= 7; ++v) {
      char cell[32];
      std::snprintf(cell, sizeof(cell), " v%d %.2f", v, time_variants(v, 0));
      sweep += cell;
    }
    sweep += " | down:";
    for (int v = 1; v <= 7; ++v) {
      char cell[32];
      std::snprintf(cell, sizeof(cell), " v%d %.2f", v, time_variants(0, v));
      sweep += cell;
    }
    const double gbs = double(distinct) * double(gu_bytes + dn_bytes) / (auto_us * 1e-6) / 1e9;
    std::printf("%5lld %6lld %8d | %9.2f %7.0f %5.1f%% |%s\n", static_cast<long long>(tokens), static_cast<long long>(pairs),
                distinct, auto_us, gbs, 100.0 * gbs / copy_gbs, sweep.c_str());
    std::fflush(stdout);
    for (void* ptr : std::initializer_list<void*>{d_ids, index, weights, y, x, h, out}) cudaFree(ptr);
  }
  for (uint8_t* blob : blobs) cudaFree(blob);
  for (const void** t : tables) cudaFree(t);
  cudaFree(gu_one);
  cudaFree(dn_one);
  cudaFree(row_scale);
}

}  // namespace

int main(int argc, char** argv) {
  std::string json_path, only;
  std::vector<int64_t> token_counts = {1, 2, 4, 8};
  bool moe = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json_path = argv[++i];
    else if (!std::strcmp(argv[i], "--tokens") && i + 1 < argc) token_counts = parse_list(argv[++i]);
    else if (!std::strcmp(argv[i], "--only") && i + 1 < argc) only = argv[++i];
    else if (!std::strcmp(argv[i], "--moe")) moe = true;
    else {
      std::fprintf(stderr, "usage: %s [--json FILE] [--tokens 1,2,4,8] [--only MODEL|MODEL:LAYER] [--moe]\n", argv[0]);
      return 2;
    }
  }
  cudaDeviceProp prop{};
  ADALLM_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  ADALLM_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cublasHandle_t cublas;
  CUBLAS_CHECK(cublasCreate(&cublas));
  CUBLAS_CHECK(cublasSetStream(cublas, stream));
  const double copy_gbs = copy_bandwidth_gbs(stream);
  std::printf("GPU %s, %d SMs, L2 %d MB; device-to-device copy %.0f GB/s (read + write)\n", prop.name,
              prop.multiProcessorCount, prop.l2CacheSize >> 20, copy_gbs);
  if (moe) {
    run_moe_bench(stream, copy_gbs, token_counts);
    return 0;
  }
  const bool gemm_ok = adallm::kernels::nvfp4_gemm_supported();
  const bool fp8_mma = adallm::kernels::fp8_mma_supported();
  std::printf("%s (the engine's choice; both kernels are timed below)\n",
              adallm::kernels::plan_nvfp4_linear(adallm::kernels::current_nvfp4_device(), adallm::kernels::LinearPath::automatic)
                  .describe()
                  .c_str());
  std::printf("%-13s %-8s %6s %6s %4s | %8s %8s %8s | %7s %6s %6s | %9s %6s %6s %6s | %s\n", "model", "layer", "N", "K",
              "T", "gemv us", "gemm us", "gemm-p", "GB/s", "%copy", "TF/s", "cublas us", "TF/s", "x bf16", "p x bf16",
              "GEMV: repeat, no PDL, forced variants (us)");
  std::string json = "{\"gpu\": \"" + std::string(prop.name) + "\", \"copy_gbs\": " + std::to_string(copy_gbs) +
                     ", \"rows\": [";
  bool first_row = true;
  const size_t rotate_bytes = std::max<size_t>(size_t{4} * prop.l2CacheSize, size_t{256} << 20);

  for (const Shape& s : kShapes) {
    if (!only.empty() && only != "all" && only != s.model && only != std::string(s.model) + ":" + s.layer) continue;
    const Nvfp4TiledShape shape{s.n, s.k};
    // One random checkpoint-layout weight, repacked, then copied until the copies outgrow L2 four times.
    std::vector<uint8_t> packed(static_cast<size_t>(s.n * s.k / 2)), scales(static_cast<size_t>(s.n * s.k / 16));
    for (auto& b : packed) b = static_cast<uint8_t>(next_random());
    for (auto& b : scales) b = static_cast<uint8_t>(0x28 + next_random() % 0x20);  // 2^-2 … 2^2: finite, non-zero
    uint8_t *d_packed, *d_scales;
    int* d_bad;
    ADALLM_CUDA_CHECK(cudaMalloc(&d_packed, packed.size()));
    ADALLM_CUDA_CHECK(cudaMalloc(&d_scales, scales.size()));
    ADALLM_CUDA_CHECK(cudaMalloc(&d_bad, sizeof(int)));
    ADALLM_CUDA_CHECK(cudaMemcpy(d_packed, packed.data(), packed.size(), cudaMemcpyHostToDevice));
    ADALLM_CUDA_CHECK(cudaMemcpy(d_scales, scales.data(), scales.size(), cudaMemcpyHostToDevice));
    ADALLM_CUDA_CHECK(cudaMemset(d_bad, 0, sizeof(int)));
    const size_t tile_bytes = static_cast<size_t>(shape.tile_bytes());
    const int copies = static_cast<int>(std::max<size_t>(2, (rotate_bytes + tile_bytes - 1) / tile_bytes));
    std::vector<uint8_t*> tiles(copies), tiles_w4a8(copies);  // the W4A8 GEMM's layout, rotated alike
    for (int c = 0; c < copies; ++c) {
      ADALLM_CUDA_CHECK(cudaMalloc(&tiles[c], tile_bytes));
    }
    for (int c = 0; c < copies; ++c) ADALLM_CUDA_CHECK(cudaMalloc(&tiles_w4a8[c], tile_bytes));
    adallm::kernels::nvfp4_repack(d_packed, d_scales, shape, tiles[0], d_bad, stream);
    adallm::kernels::nvfp4_repack(d_packed, d_scales, shape, tiles_w4a8[0], d_bad, stream,
                                  adallm::kernels::Nvfp4Layout::w4a8);
    for (int c = 1; c < copies; ++c) {
      ADALLM_CUDA_CHECK(cudaMemcpyAsync(tiles_w4a8[c], tiles_w4a8[0], tile_bytes, cudaMemcpyDeviceToDevice, stream));
    }
    for (int c = 1; c < copies; ++c) {
      ADALLM_CUDA_CHECK(cudaMemcpyAsync(tiles[c], tiles[0], tile_bytes, cudaMemcpyDeviceToDevice, stream));
    }
    cudaFree(d_packed);
    cudaFree(d_scales);
    float* row_scale;
    ADALLM_CUDA_CHECK(cudaMalloc(&row_scale, s.n * sizeof(float)));
    std::vector<float> ones(static_cast<size_t>(s.n), 1.0f / 4096.0f);
    ADALLM_CUDA_CHECK(cudaMemcpy(row_scale, ones.data(), ones.size() * sizeof(float), cudaMemcpyHostToDevice));

    // BF16 weights for cuBLAS, rotated the same way.
    const size_t bf16_bytes = static_cast<size_t>(s.n * s.k * 2);
    const int bf16_copies = static_cast<int>(std::max<size_t>(2, (rotate_bytes + bf16_bytes - 1) / bf16_bytes));
    std::vector<__nv_bfloat16*> wbf(bf16_copies);
    {
      std::vector<uint16_t> host(static_cast<size_t>(s.n * s.k));
      for (auto& h : host) h = static_cast<uint16_t>(0x3C00 + next_random() % 0x400);  // small normal values
      for (int c = 0; c < bf16_copies; ++c) {
        ADALLM_CUDA_CHECK(cudaMalloc(&wbf[c], bf16_bytes));
        ADALLM_CUDA_CHECK(cudaMemcpy(wbf[c], host.data(), bf16_bytes, cudaMemcpyHostToDevice));
      }
    }

    for (int64_t tokens : token_counts) {
      __nv_bfloat16* x;
      float* out;
      __nv_bfloat16* out_bf16;
      ADALLM_CUDA_CHECK(cudaMalloc(&x, tokens * s.k * 2));
      ADALLM_CUDA_CHECK(cudaMalloc(&out, tokens * s.n * sizeof(float)));
      ADALLM_CUDA_CHECK(cudaMalloc(&out_bf16, tokens * s.n * 2));
      {
        std::vector<uint16_t> hx(static_cast<size_t>(tokens * s.k));
        for (auto& h : hx) h = static_cast<uint16_t>(0x3E00 + next_random() % 0x200);
        ADALLM_CUDA_CHECK(cudaMemcpy(x, hx.data(), hx.size() * 2, cudaMemcpyHostToDevice));
      }
      const int calls = copies * std::max(1, 64 / copies);
      // The GEMM either permutes the activations itself (into `workspace`) or takes them permuted, as a
      // producer kernel can write them (into `permuted`, once, outside the timing).
      enum class Path { gemv, gemm, gemm_permuted, gemm_mma, w4a8 } path = Path::gemv;
      void* workspace_w4a8 = nullptr;
      if (tokens >= 16 && fp8_mma) {
        ADALLM_CUDA_CHECK(cudaMalloc(&workspace_w4a8, adallm::kernels::nvfp4_w4a8_workspace_bytes(shape, tokens)));
      }
      void* workspace = nullptr;
      __nv_bfloat16* permuted = nullptr;
      const int64_t padded_k = shape.k_tiles() * 64;
      if (gemm_ok && tokens >= 16) {
        ADALLM_CUDA_CHECK(cudaMalloc(&workspace, adallm::kernels::nvfp4_gemm_workspace_bytes(shape, tokens)));
        ADALLM_CUDA_CHECK(cudaMalloc(&permuted, tokens * padded_k * 2));
        adallm::kernels::nvfp4_permute_activations(x, s.k, tokens, s.k, permuted, stream);
      }
      int variant = 0;
      bool dependent = true;
      auto launch_ours = [&] {
        for (int i = 0; i < calls; ++i) {
          Nvfp4LinearParams p;
          p.shape = shape;
          p.tiles = tiles[i % copies];
          p.row_scale = row_scale;
          p.x = x;
          p.x_stride = s.k;
          p.tokens = tokens;
          // The GEMM writes bf16, as cuBLAS does here and as the next layer reads; the GEMV fp32.
          if (path == Path::gemv) {
            p.out = out;
          } else {
            p.out_bf16 = out_bf16;
          }
          p.out_stride = s.n;
          p.variant = variant;
          p.dependent_launch = dependent;
          if (path == Path::gemv) {
            adallm::kernels::nvfp4_gemv(p, stream);
          } else if (path == Path::gemm) {
            adallm::kernels::nvfp4_gemm(p, workspace, stream);
          } else if (path == Path::gemm_mma) {
            adallm::kernels::nvfp4_gemm_mma(p, stream);
          } else if (path == Path::w4a8) {
            p.tiles = tiles_w4a8[i % copies];
            adallm::kernels::nvfp4_gemm_w4a8(p, workspace_w4a8, stream);
          } else {
            p.x = permuted;
            p.x_stride = padded_k;
            p.x_permuted = true;
            adallm::kernels::nvfp4_gemm(p, nullptr, stream);
          }
        }
      };
      // Graph of `calls` launches: what the engine replays.
      auto time_graph = [&](Path which, int v) {
        path = which;
        variant = v;
        cudaGraph_t graph;
        cudaGraphExec_t exec;
        ADALLM_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
        launch_ours();
        ADALLM_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
        ADALLM_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
        const double us = time_calls(stream, calls, 15, [&] { ADALLM_CUDA_CHECK(cudaGraphLaunch(exec, stream)); });
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);
        return us;
      };
      // The GEMV up to 64 tokens (past that it is 8-token passes: never the right kernel), the GEMM from 16.
      const bool run_gemv = tokens <= 64, run_gemm = gemm_ok && tokens >= 16;
      double gemv_us = -1, gemm_us = -1, gemm_permuted_us = -1, mma_us = -1, again_us = -1, independent_us = -1,
             w4a8_us = -1;
      std::string sweep;
      if (run_gemv) {
        gemv_us = time_graph(Path::gemv, 0);
        again_us = time_graph(Path::gemv, 0);  // the run-to-run spread
        dependent = false;
        independent_us = time_graph(Path::gemv, 0);
        dependent = true;
        for (int v : {1, 2, 3, 4, 5}) {
          char cell[32];
          std::snprintf(cell, sizeof(cell), " v%d %.2f", v, time_graph(Path::gemv, v));
          sweep += cell;
        }
      }
      if (run_gemm) {
        gemm_us = time_graph(Path::gemm, 0);
        gemm_permuted_us = time_graph(Path::gemm_permuted, 0);
      }
      // The wgmma GEMM's two block shapes, forced.
      std::string gemm_variants;
      if (run_gemm) {
        char cell[64];
        std::snprintf(cell, sizeof(cell), " 256 tokens %.2f, 128 tokens %.2f |", time_graph(Path::gemm_permuted, 1),
                      time_graph(Path::gemm_permuted, 2));
        gemm_variants = cell;
      }
      // The mma.sync GEMM (Ampere and Ada's prefill path), for comparison on any GPU.
      if (tokens >= 16) mma_us = time_graph(Path::gemm_mma, 0);
      // The W4A8 GEMM (Ada's FP8 prefill path; on Hopper for comparison), activation quantization included.
      if (workspace_w4a8 != nullptr) w4a8_us = time_graph(Path::w4a8, 0);
      // The best complete path: the GEMV or the GEMM with its own permutation.
      const double ours_us = gemm_us < 0 ? gemv_us : (gemv_us < 0 ? gemm_us : std::min(gemv_us, gemm_us));

      const int cublas_calls = bf16_copies * std::max(1, 32 / bf16_copies);
      const float alpha = 1.0f, beta = 0.0f;
      auto launch_cublas = [&] {
        for (int i = 0; i < cublas_calls; ++i) {
          CUBLAS_CHECK(cublasGemmEx(cublas, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(s.n), static_cast<int>(tokens),
                                    static_cast<int>(s.k), &alpha, wbf[i % bf16_copies], CUDA_R_16BF,
                                    static_cast<int>(s.k), x, CUDA_R_16BF, static_cast<int>(s.k), &beta, out_bf16,
                                    CUDA_R_16BF, static_cast<int>(s.n), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
        }
      };
      const double cublas_us = time_calls(stream, cublas_calls, 15, launch_cublas);
      // Our BF16 GEMV on the same rotated weights (as the engine would run it for these few tokens).
      double bf16_gemv_us = -1;
      if (tokens <= adallm::kernels::kBf16GemvMaxTokens) {
        adallm::kernels::Bf16GemvParams bp;
        bp.x = x;
        bp.x_stride = s.k;
        bp.n = s.n;
        bp.k = s.k;
        bp.tokens = tokens;
        bp.out_bf16 = out_bf16;
        bp.out_stride = s.n;
        bp.dependent_launch = false;  // launched like cuBLAS: no overlap with the previous call
        bf16_gemv_us = time_calls(stream, cublas_calls, 15, [&] {
          for (int i = 0; i < cublas_calls; ++i) {
            bp.w = wbf[i % bf16_copies];
            adallm::kernels::bf16_gemv(bp, stream);
          }
        });
      }

      const double bytes = double(tile_bytes) + double(s.n) * 4 + double(tokens * s.k) * 2 +
                           double(tokens * s.n) * 4;
      const double gbs = bytes / (ours_us * 1e-6) / 1e9;
      const double flop = 2.0 * double(s.n) * double(s.k) * double(tokens);
      const auto cell = [](double us) {
        char c[16];
        if (us < 0) return std::string("       -");
        std::snprintf(c, sizeof(c), "%8.2f", us);
        return std::string(c);
      };
      sweep = gemm_variants + sweep;
      if (w4a8_us > 0) {
        char extra[64];
        std::snprintf(extra, sizeof(extra), " W4A8 GEMM %.2f (%.2fx) |", w4a8_us, cublas_us / w4a8_us);
        sweep = extra + sweep;
      }
      if (bf16_gemv_us > 0) {
        char extra[64];
        std::snprintf(extra, sizeof(extra), " bf16 GEMV %.2f (%.2fx cuBLAS) |", bf16_gemv_us, cublas_us / bf16_gemv_us);
        sweep = extra + sweep;
      }
      if (mma_us > 0) {
        char extra[64];
        std::snprintf(extra, sizeof(extra), " mma GEMM %.2f (%.2fx) |", mma_us, cublas_us / mma_us);
        sweep = extra + sweep;
      }
      if (run_gemv) {
        char extra[96];
        std::snprintf(extra, sizeof(extra), " again %.2f no-PDL %.2f |", again_us, independent_us);
        sweep = extra + sweep;
      }
      std::printf("%-13s %-8s %6lld %6lld %4lld | %s %s %s | %7.0f %5.1f%% %6.1f | %9.2f %6.1f %5.2fx %5.2fx |%s\n",
                  s.model, s.layer, static_cast<long long>(s.n), static_cast<long long>(s.k), static_cast<long long>(tokens),
                  cell(gemv_us).c_str(), cell(gemm_us).c_str(), cell(gemm_permuted_us).c_str(), gbs, 100.0 * gbs / copy_gbs,
                  flop / (ours_us * 1e6), cublas_us, flop / (cublas_us * 1e6), cublas_us / ours_us,
                  gemm_permuted_us < 0 ? 0.0 : cublas_us / gemm_permuted_us, sweep.c_str());
      std::fflush(stdout);
      char row[1024];
      std::snprintf(row, sizeof(row),
                    "%s{\"model\": \"%s\", \"layer\": \"%s\", \"n\": %lld, \"k\": %lld, \"tokens\": %lld, "
                    "\"us\": %.3f, \"gemv_us\": %.3f, \"gemv_us_repeat\": %.3f, \"gemm_us\": %.3f, \"gemm_permuted_us\": %.3f, \"gemm_mma_us\": %.3f, \"gemm_w4a8_us\": %.3f, \"bytes\": %.0f, "
                    "\"gbs\": %.1f, \"ratio_copy\": %.4f, \"tflops\": %.1f, \"cublas_bf16_us\": %.3f, \"speedup_vs_cublas\": %.3f, \"bf16_gemv_us\": %.3f}",
                    first_row ? "" : ", ", s.model, s.layer, static_cast<long long>(s.n), static_cast<long long>(s.k),
                    static_cast<long long>(tokens), ours_us, gemv_us, again_us, gemm_us, gemm_permuted_us, mma_us, w4a8_us, bytes, gbs, gbs / copy_gbs,
                    flop / (ours_us * 1e6), cublas_us, cublas_us / ours_us, bf16_gemv_us);
      json += row;
      first_row = false;
      cudaFree(workspace);
      cudaFree(workspace_w4a8);
      cudaFree(permuted);
      cudaFree(x);
      cudaFree(out);
      cudaFree(out_bf16);
    }
    int bad = 0;
    ADALLM_CUDA_CHECK(cudaMemcpy(&bad, d_bad, sizeof(int), cudaMemcpyDeviceToHost));
    if (bad != 0) std::fprintf(stderr, "repack reported %d bad scales\n", bad);
    cudaFree(d_bad);
    cudaFree(row_scale);
    for (int c = 0; c < copies; ++c) {
      cudaFree(tiles[c]);
      cudaFree(tiles_w4a8[c]);
    }
    for (auto* w : wbf) cudaFree(w);
  }
  json += "]}\n";
  if (!json_path.empty()) std::ofstream(json_path) << json;
  cublasDestroy(cublas);
  return 0;
}
