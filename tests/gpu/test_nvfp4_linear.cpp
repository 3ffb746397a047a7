// NVFP4 linear kernels on the GPU (label `gpu`) — the decode GEMV, the sm_90a prefill GEMM, the
// mma.sync GEMM of Ampere and Ada and the W4A8 GEMM (FP8 activations, against the CPU's FP8 oracle) —
// against an exact fp64 reference on the host: repack + kernel over a
// table of shapes (K = 16·odd, N not a multiple of 16, tokens 1…4099), with the encoder's awkward cases
// forced in: all-zero blocks, zero scales over non-zero codes, e4m3-subnormal and maximum block scales,
// negative-zero codes, per-row weight_scale_2 of fused parts.
//
// Tolerance: the kernels' products are exact (e2m1 · e4m3 in bf16, times bf16 activations, in the MMA's
// fp32); only fp32 accumulation rounds. GEMV: a warp adds ≤ K/128 MMA results in sequence, the MMA adds 16
// products, the block adds 8 warp partials: fewer than K/128 + 32 roundings of 2^-24 relative to Σ|w·x|.
// GEMMs: one accumulator takes all K/16 MMA steps in sequence, and the tensor core may truncate rather
// than round (2^-23 per step): (K/16 + 32) · 2^-23. Both are bounds, not fudges (≈ 1e-4 at K = 14336).
#include <gtest/gtest.h>

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/float_codecs.h"
#include "gpu/device_array.h"
#include "kernels/cuda_check.h"
#include "kernels/linear/nvfp4_gemm.h"
#include "kernels/linear/nvfp4_gemv.h"
#include "kernels/linear/nvfp4_linear.h"
#include "kernels/linear/nvfp4_w4a8.h"
#include "kernels/moe/moe.h"
#include "quant/fp8_activations.h"
#include "quant/nvfp4.h"
#include "test_util.h"

namespace adallm::kernels {
namespace {

using test::DeviceArray;

struct Weight {
  int64_t n = 0, k = 0;
  std::vector<uint8_t> packed, scales;  // checkpoint layout
  std::vector<float> row_scale;         // [n]
};

// Random weights through ModelOpt's encoder, in two stacked parts with different weight_scale_2 (as a fused
// q/k/v), then the hard cases written over some blocks.
Weight make_weight(int64_t n, int64_t k, std::mt19937& rng) {
  Weight w;
  w.n = n;
  w.k = k;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const int64_t split = n / 2;
  for (const auto& [rows, spread] : {std::pair<int64_t, float>{split, 0.02f}, std::pair<int64_t, float>{n - split, 3.0f}}) {
    if (rows == 0) continue;
    std::vector<float> values(static_cast<size_t>(rows * k));
    for (float& v : values) v = normal(rng) * spread;
    const float ws2 = quant::modelopt_weight_scale_2(quant::abs_max(values));
    const quant::Nvfp4Tensor q = quant::nvfp4_quantize_modelopt(values, rows, k, ws2);
    w.packed.insert(w.packed.end(), q.packed.begin(), q.packed.end());
    w.scales.insert(w.scales.end(), q.scales.begin(), q.scales.end());
    w.row_scale.insert(w.row_scale.end(), static_cast<size_t>(rows), q.weight_scale_2);
  }
  const int64_t blocks = k / 16;
  std::uniform_int_distribution<int64_t> any_block(0, n * blocks - 1);
  for (int i = 0; i < std::max<int64_t>(4, n * blocks / 20); ++i) {
    const int64_t b = any_block(rng);
    const int64_t row = b / blocks, block = b % blocks;
    uint8_t* codes = &w.packed[static_cast<size_t>(row * (k / 2) + block * 8)];
    uint8_t& scale = w.scales[static_cast<size_t>(b)];
    switch (i % 5) {
      case 0: std::memset(codes, 0, 8); break;                          // all-zero block
      case 1: scale = 0; break;                                         // zero scale over non-zero codes
      case 2: scale = static_cast<uint8_t>(1 + i % 7); break;           // e4m3 subnormal 2^-9 … 7·2^-9
      case 3: scale = 0x7E; break;                                      // 448, the largest
      case 4: std::memset(codes, 0x88, 8); break;                       // negative zeros
    }
  }
  return w;
}

// Exact value of element (row, col): e2m1 · e4m3 (the per-row weight_scale_2 is applied by the caller).
double element(const Weight& w, int64_t row, int64_t col) {
  const uint8_t byte = w.packed[static_cast<size_t>(row * (w.k / 2) + col / 2)];
  const uint8_t code = (col % 2) ? (byte >> 4) : (byte & 0x0F);
  return double(e2m1_to_f32(code)) * double(e4m3_to_f32(w.scales[static_cast<size_t>(row * (w.k / 16) + col / 16)]));
}

struct Repacked {
  Nvfp4TiledShape shape;
  DeviceArray<uint8_t> tiles;
  DeviceArray<float> row_scale;
  int bad_scales = 0;

  explicit Repacked(const Weight& w, bool gate_up = false, Nvfp4Layout layout = Nvfp4Layout::w4a16)
      : shape{w.n, w.k, gate_up},
        tiles(static_cast<size_t>(shape.tile_bytes())),
        row_scale(w.row_scale) {
    DeviceArray<uint8_t> packed(w.packed), scales(w.scales);
    DeviceArray<int> bad(std::vector<int>{0});
    nvfp4_repack(packed.ptr, scales.ptr, shape, tiles.ptr, bad.ptr, nullptr, layout);
    ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
    bad_scales = bad.to_host()[0];
  }

  // Params for this weight over bf16 activations `x` ([tokens, ·], row stride x_stride); the caller sets
  // the output.
  Nvfp4LinearParams params(const void* x, int64_t x_stride, int64_t tokens) const {
    Nvfp4LinearParams p;
    p.shape = shape;
    p.tiles = tiles.ptr;
    p.row_scale = row_scale.ptr;
    p.x = static_cast<const __nv_bfloat16*>(x);
    p.x_stride = x_stride;
    p.tokens = tokens;
    return p;
  }
};

enum class Kernel { gemv, gemm, gemm_mma, w4a8 };

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::gemv: return "GEMV";
    case Kernel::gemm: return "GEMM";
    case Kernel::gemm_mma: return "mma GEMM";
    case Kernel::w4a8: return "W4A8 GEMM";
  }
  return "?";
}

Nvfp4Layout layout_of(Kernel kernel) { return kernel == Kernel::w4a8 ? Nvfp4Layout::w4a8 : Nvfp4Layout::w4a16; }

// The activations a kernel multiplies: bf16 values as they are, or for W4A8 each token's row through the
// FP8 round trip of the CPU oracle.
std::vector<double> effective_x(Kernel kernel, const std::vector<double>& x, int64_t tokens, int64_t k) {
  if (kernel != Kernel::w4a8) return x;
  std::vector<double> out(x.size());
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t c = 0; c < k; ++c) row[static_cast<size_t>(c)] = static_cast<float>(x[static_cast<size_t>(t * k + c)]);
    quant::fp8_e4m3_round_trip_row(row.data(), k, row.data());
    for (int64_t c = 0; c < k; ++c) out[static_cast<size_t>(t * k + c)] = row[static_cast<size_t>(c)];
  }
  return out;
}

void launch(Kernel kernel, const Nvfp4LinearParams& p) {
  if (kernel == Kernel::gemv) {
    nvfp4_gemv(p, nullptr);
  } else if (kernel == Kernel::gemm_mma) {
    nvfp4_gemm_mma(p, nullptr);
  } else if (kernel == Kernel::w4a8) {
    DeviceArray<uint8_t> workspace(static_cast<size_t>(nvfp4_w4a8_workspace_bytes(p.shape, p.tokens)));
    nvfp4_gemm_w4a8(p, workspace.ptr, nullptr);
    ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  } else {
    DeviceArray<uint8_t> workspace(static_cast<size_t>(nvfp4_gemm_workspace_bytes(p.shape, p.tokens)));
    nvfp4_gemm(p, workspace.ptr, nullptr);
    ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  }
}

// The accumulation bound of the header comment, relative to Σ|w·x|.
double relative_bound(Kernel kernel, int64_t k) {
  return kernel == Kernel::gemv ? (double(k) / 128.0 + 32.0) * std::ldexp(1.0, -24)
                                : (double(k) / 16.0 + 32.0) * std::ldexp(1.0, -23);
}

// The GEMM runs where the build has sm_90a code and the GPU is an sm_90; elsewhere it must refuse.
bool gemm_here() {
  if (nvfp4_gemm_supported()) return true;
  int device = 0, major = 0, minor = 0;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  EXPECT_FALSE(major == 9 && minor == 0) << "an sm_90 GPU, but this build has no sm_90a code";
  return false;
}

// out_pad 3 gives misaligned output rows; a pad that makes rows 16-byte multiples allows vector stores.
void check_linear(Kernel kernel, int64_t n, int64_t k, int64_t tokens, uint32_t seed, int variant, int64_t x_pad,
                  int64_t out_pad = 3) {
  SCOPED_TRACE(std::string(kernel_name(kernel)) + ", n " + std::to_string(n) + ", k " + std::to_string(k) +
               ", tokens " + std::to_string(tokens) + ", variant " + std::to_string(variant) + ", x row padding " +
               std::to_string(x_pad) + ", output row padding " + std::to_string(out_pad));
  std::mt19937 rng(seed);
  const Weight w = make_weight(n, k, rng);
  const Repacked r(w, false, layout_of(kernel));
  ASSERT_EQ(r.bad_scales, 0);

  // Activations: bf16 rows with padding after K that must never be read: k + 2 (4-byte loads) or k + 8
  // (16-byte aligned rows, 16-byte loads).
  const int64_t x_stride = k + x_pad;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> x_bits(static_cast<size_t>(tokens * x_stride), 0x7FC0);  // NaN padding: must be unread
  std::vector<double> x(static_cast<size_t>(tokens * k));
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t c = 0; c < k; ++c) {
      const uint16_t b = f32_to_bf16(normal(rng) * (c % 7 == 0 ? 8.0f : 1.0f));
      x_bits[static_cast<size_t>(t * x_stride + c)] = b;
      x[static_cast<size_t>(t * k + c)] = bf16_to_f32(b);
    }
  }
  DeviceArray<uint16_t> x_dev(x_bits);
  x = effective_x(kernel, x, tokens, k);
  const int64_t out_stride = n + out_pad;
  std::vector<float> poison(static_cast<size_t>(tokens * out_stride), std::numeric_limits<float>::quiet_NaN());
  DeviceArray<float> out(poison);

  Nvfp4LinearParams p = r.params(x_dev.ptr, x_stride, tokens);
  p.variant = variant;
  p.out = out.ptr;
  p.out_stride = out_stride;
  launch(kernel, p);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got = out.to_host();
  // A second call gives the same bits.
  launch(kernel, p);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> again = out.to_host();
  ASSERT_EQ(std::memcmp(got.data(), again.data(), got.size() * sizeof(float)), 0) << "not deterministic";

  // Dequantized rows once, then exact dot products.
  std::vector<double> deq(static_cast<size_t>(n * k));
  for (int64_t row = 0; row < n; ++row) {
    for (int64_t c = 0; c < k; ++c) deq[static_cast<size_t>(row * k + c)] = element(w, row, c);
  }
  const double bound = relative_bound(kernel, k);
  int failures = 0;
  for (int64_t t = 0; t < tokens && failures < 10; ++t) {
    for (int64_t row = 0; row < n && failures < 10; ++row) {
      double ref = 0.0, mag = 0.0;
      for (int64_t c = 0; c < k; ++c) {
        const double prod = deq[static_cast<size_t>(row * k + c)] * x[static_cast<size_t>(t * k + c)];
        ref += prod;
        mag += std::fabs(prod);
      }
      const double ws2 = w.row_scale[static_cast<size_t>(row)];
      const double value = got[static_cast<size_t>(t * out_stride + row)];
      const double tol = bound * mag * ws2 + 1e-37;
      if (!(std::fabs(value - ref * ws2) <= tol)) {
        ADD_FAILURE() << "token " << t << " row " << row << ": got " << value << ", expected " << ref * ws2
                      << " (tolerance " << tol << ")";
        ++failures;
      }
    }
    // Padding columns of the output row stay untouched.
    for (int64_t row = n; row < out_stride; ++row) {
      EXPECT_TRUE(std::isnan(got[static_cast<size_t>(t * out_stride + row)])) << "wrote past N at token " << t;
    }
  }
}

TEST(Nvfp4Gemv, MatchesTheExactReferenceOverOddShapes) {
  int devices = 0;
  ASSERT_EQ(cudaGetDeviceCount(&devices), cudaSuccess);
  ASSERT_GT(devices, 0);
  struct Shape {
    int64_t n, k, tokens;
  };
  const Shape shapes[] = {
      {1, 16, 1},     {7, 48, 2},     {16, 64, 3},    {33, 80, 7},     {100, 208, 8},   {130, 1040, 16},
      {257, 4112, 1}, {64, 2048, 33}, {1000, 4096, 2}, {48, 272, 512}, {24, 80, 4099}, {4096, 14336, 4},
      {512, 14336, 8},
  };
  uint32_t seed = 1;
  for (const Shape& s : shapes) {
    for (int variant : {1, 2, 3, 4, 5}) {  // every block shape (1, 2 or 4 row tiles), both activation load widths
      for (int64_t x_pad : {2, 8}) check_linear(Kernel::gemv, s.n, s.k, s.tokens, seed, variant, x_pad);
    }
    ++seed;
  }
}

TEST(Nvfp4Gemm, MatchesTheExactReferenceOverOddShapes) {
  if (!gemm_here()) GTEST_SKIP() << "no sm_90a GPU: the GEMM is refused here (checked above)";
  struct Shape {
    int64_t n, k, tokens;
  };
  // Tokens around the block's 128, rows around its 256, K past one and two k tiles and 16·odd.
  const Shape shapes[] = {
      {1, 16, 1},     {7, 48, 2},      {16, 64, 3},     {33, 80, 7},     {100, 208, 16},  {130, 1040, 33},
      {257, 4112, 128}, {255, 2048, 129}, {1000, 4096, 300}, {48, 272, 512}, {24, 80, 4099}, {4096, 14336, 64},
      {512, 3072, 1000},
  };
  uint32_t seed = 200;
  for (const Shape& s : shapes) {
    for (int variant : {1, 2}) {  // 256 and 128 tokens per block
      check_linear(Kernel::gemm, s.n, s.k, s.tokens, seed, variant, 8);
      check_linear(Kernel::gemm, s.n, s.k, s.tokens, seed, variant, 8, (4 - s.n % 4) % 4 + 4);  // 16-byte rows
    }
    ++seed;
  }
}

// Against the CPU's W4A8 oracle: the same exact reference over activations put through
// quant::fp8_e4m3_round_trip_row. The products are exact as before (e2m1 · 2^-6 and e4m3 in the MMA);
// the oracle's rounding of each q · s to fp32 adds at most 2^-24 of Σ|w·x| to the GEMM bound.
TEST(Nvfp4GemmW4a8, MatchesTheFp8OracleOverOddShapes) {
  if (!fp8_mma_supported()) GTEST_SKIP() << "no FP8 tensor cores (sm_89 or newer)";
  struct Shape {
    int64_t n, k, tokens;
  };
  // Tokens around the block's 64, rows around its 128, K past one and two k tiles and 16·odd.
  const Shape shapes[] = {
      {1, 16, 1},    {7, 48, 2},     {16, 64, 3},      {33, 80, 7},     {100, 208, 16},  {130, 1040, 33},
      {257, 4112, 64}, {255, 2048, 65}, {1000, 4096, 300}, {48, 272, 512}, {24, 80, 4099}, {4096, 14336, 64},
  };
  uint32_t seed = 400;
  for (const Shape& s : shapes) {
    for (int64_t x_pad : {2, 8}) check_linear(Kernel::w4a8, s.n, s.k, s.tokens, seed, 0, x_pad);
    ++seed;
  }
}

// The quantizer against the oracle bit for bit: each code times the token's scale is the oracle's value,
// the scale is max|x| / 448, the padding up to 64 columns is zero; a zero row gets scale 0 and zero codes,
// a row holding an infinity or NaN a NaN scale.
TEST(Fp8Activations, QuantizeMatchesTheCpuRoundTripBitForBit) {
  const int64_t k = 1040, tokens = 6, stride = 1044, padded = 1088;
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> bits(static_cast<size_t>(tokens * stride), 0x7FC0);  // NaN padding: must be unread
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t c = 0; c < k; ++c) {
      // Magnitudes over 2^±20 so that many codes are e4m3 subnormals; token 2 all zero.
      const float v = t == 2 ? 0.0f : normal(rng) * std::ldexp(1.0f, static_cast<int>(rng() % 41) - 20);
      bits[static_cast<size_t>(t * stride + c)] = f32_to_bf16(v);
    }
  }
  bits[static_cast<size_t>(3 * stride + 17)] = 0x7F80;  // +inf
  bits[static_cast<size_t>(4 * stride + 1000)] = 0xFFC1;  // NaN
  DeviceArray<uint16_t> x(bits);
  DeviceArray<uint8_t> codes(static_cast<size_t>(tokens * padded));
  DeviceArray<float> scales(static_cast<size_t>(tokens));
  fp8_quantize_activations(reinterpret_cast<const __nv_bfloat16*>(x.ptr), stride, tokens, k, codes.ptr, padded,
                           scales.ptr, nullptr);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint8_t> q = codes.to_host();
  const std::vector<float> s = scales.to_host();
  for (int64_t t = 0; t < tokens; ++t) {
    SCOPED_TRACE("token " + std::to_string(t));
    std::vector<float> row(static_cast<size_t>(k)), oracle(static_cast<size_t>(k));
    float amax = 0.0f;
    for (int64_t c = 0; c < k; ++c) {
      row[static_cast<size_t>(c)] = bf16_to_f32(bits[static_cast<size_t>(t * stride + c)]);
      amax = std::max(amax, std::fabs(row[static_cast<size_t>(c)]));
    }
    for (int64_t c = k; c < padded; ++c) EXPECT_EQ(q[static_cast<size_t>(t * padded + c)], 0) << "padding column " << c;
    if (t == 3 || t == 4) {
      EXPECT_TRUE(std::isnan(s[static_cast<size_t>(t)])) << "a row with a non-finite value";
      continue;
    }
    quant::fp8_e4m3_round_trip_row(row.data(), k, oracle.data());
    if (t == 2) {
      EXPECT_EQ(s[static_cast<size_t>(t)], 0.0f);
    } else {
      EXPECT_EQ(s[static_cast<size_t>(t)], amax / quant::kFp8E4m3Max);
    }
    int subnormal = 0, failures = 0;
    for (int64_t c = 0; c < k && failures < 10; ++c) {
      const uint8_t code = q[static_cast<size_t>(t * padded + c)];
      subnormal += (code & 0x78) == 0 && (code & 7) != 0;
      const float got = e4m3_to_f32(code) * s[static_cast<size_t>(t)];
      if (std::memcmp(&got, &oracle[static_cast<size_t>(c)], sizeof(float)) != 0) {
        ADD_FAILURE() << "column " << c << ": code " << int(code) << " gives " << got << ", oracle "
                      << oracle[static_cast<size_t>(c)];
        ++failures;
      }
    }
    if (t != 2) {
      EXPECT_GT(subnormal, 0) << "no e4m3 subnormal exercised";
    }
  }
}

// Activations permuted beforehand (as a producer kernel may write them) give the same bits; the GEMM
// refuses permuted rows it cannot load, and unpermuted ones without a workspace.
TEST(Nvfp4Gemm, TakesActivationsPermutedBeforehand) {
  if (!gemm_here()) GTEST_SKIP() << "no sm_90a GPU";
  std::mt19937 rng(5);
  const int64_t n = 300, k = 1040, tokens = 150, padded = 1088;  // K rounded up to 64
  const Weight w = make_weight(n, k, rng);
  const Repacked r(w);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> x_bits(static_cast<size_t>(tokens * k));
  for (uint16_t& b : x_bits) b = f32_to_bf16(normal(rng));
  DeviceArray<uint16_t> x(x_bits), permuted(static_cast<size_t>(tokens * padded));
  DeviceArray<float> out(static_cast<size_t>(tokens * n)), out_permuted(static_cast<size_t>(tokens * n));
  Nvfp4LinearParams p = r.params(x.ptr, k, tokens);
  p.out = out.ptr;
  p.out_stride = n;
  launch(Kernel::gemm, p);
  nvfp4_permute_activations(reinterpret_cast<const __nv_bfloat16*>(x.ptr), k, tokens, k,
                            reinterpret_cast<__nv_bfloat16*>(permuted.ptr), nullptr);
  // The permutation itself: pair 8t + c of each 64-column group lands at 4c + t, zeros past K.
  const std::vector<uint16_t> perm = permuted.to_host();
  for (int64_t tok = 0; tok < tokens; tok += 37) {
    for (int64_t col = 0; col < padded; col += 2) {
      const int64_t group = col / 64, pair = (col % 64) / 2, t = pair / 8, c = pair % 8;
      const int64_t dst = tok * padded + group * 64 + 2 * (4 * c + t);
      const uint16_t want0 = col < k ? x_bits[static_cast<size_t>(tok * k + col)] : 0;
      const uint16_t want1 = col < k ? x_bits[static_cast<size_t>(tok * k + col + 1)] : 0;
      ASSERT_EQ(perm[static_cast<size_t>(dst)], want0) << "token " << tok << " column " << col;
      ASSERT_EQ(perm[static_cast<size_t>(dst + 1)], want1) << "token " << tok << " column " << col + 1;
    }
  }
  Nvfp4LinearParams q = r.params(permuted.ptr, padded, tokens);
  q.x_permuted = true;
  q.out = out_permuted.ptr;
  q.out_stride = n;
  nvfp4_gemm(q, nullptr, nullptr);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> a = out.to_host(), b = out_permuted.to_host();
  ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);

  q.x_stride = k;  // below K rounded up to 64
  test::expect_error([&] { nvfp4_gemm(q, nullptr, nullptr); }, "at least K rounded up to 64");
  test::expect_error([&] { nvfp4_gemm(p, nullptr, nullptr); }, "needs a workspace");
}

// The fused gate/up weight repacked with gate and up rows interleaved per tile: out = act(gate) · up.
// Tolerance: each of gate and up within the bound above; act' stays below 1.2 for SiLU and tanh-GELU, and
// the epilogue's few fp32 operations add a few ulps of the product.
void check_gate_up(Kernel kernel, int variant = 0) {
  struct Case {
    int64_t half, k, tokens;
    Nvfp4Activation act;
  };
  const Case cases[] = {{7, 48, 3, Nvfp4Activation::silu},
                        {100, 208, 8, Nvfp4Activation::gelu_tanh},
                        {1000, 2048, 1, Nvfp4Activation::silu},
                        {37, 4112, 11, Nvfp4Activation::gelu_tanh},
                        {300, 1024, 200, Nvfp4Activation::silu}};
  uint32_t seed = 100;
  for (const Case& c : cases) {
    SCOPED_TRACE("half " + std::to_string(c.half) + ", k " + std::to_string(c.k) + ", tokens " + std::to_string(c.tokens));
    std::mt19937 rng(seed++);
    const int64_t n = 2 * c.half, k = c.k;
    const Weight w = make_weight(n, k, rng);  // rows [0, half) gate, [half, n) up, each part its own scale
    const Repacked r(w, true, layout_of(kernel));
    ASSERT_EQ(r.bad_scales, 0);
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> x_bits(static_cast<size_t>(c.tokens * k));
    std::vector<double> x(x_bits.size());
    for (size_t i = 0; i < x_bits.size(); ++i) {
      x_bits[i] = f32_to_bf16(normal(rng));
      x[i] = bf16_to_f32(x_bits[i]);
    }
    DeviceArray<uint16_t> x_dev(x_bits);
    x = effective_x(kernel, x, c.tokens, k);
    std::vector<float> poison(static_cast<size_t>(c.tokens * c.half), std::numeric_limits<float>::quiet_NaN());
    DeviceArray<float> out(poison);
    Nvfp4LinearParams p = r.params(x_dev.ptr, k, c.tokens);
    p.out = out.ptr;
    p.out_stride = c.half;
    p.activation = c.act;
    p.variant = variant;
    launch(kernel, p);
    ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> got = out.to_host();
    const double bound = relative_bound(kernel, k);
    int failures = 0;
    for (int64_t t = 0; t < c.tokens && failures < 10; ++t) {
      for (int64_t j = 0; j < c.half && failures < 10; ++j) {
        double ref[2], tol[2];
        for (int part = 0; part < 2; ++part) {
          const int64_t row = j + part * c.half;
          double sum = 0.0, mag = 0.0;
          for (int64_t col = 0; col < k; ++col) {
            const double prod = element(w, row, col) * x[static_cast<size_t>(t * k + col)];
            sum += prod;
            mag += std::fabs(prod);
          }
          ref[part] = sum * w.row_scale[static_cast<size_t>(row)];
          tol[part] = bound * mag * w.row_scale[static_cast<size_t>(row)];
        }
        const double g = ref[0], u = ref[1];
        const double act = c.act == Nvfp4Activation::silu
                               ? g / (1.0 + std::exp(-g))
                               : 0.5 * g * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g)));
        const double want = act * u;
        const double allowed = 1.2 * tol[0] * std::fabs(u) + std::fabs(act) * tol[1] + tol[0] * tol[1] +
                               8 * std::ldexp(std::fabs(want), -24) + 1e-30;
        const double value = got[static_cast<size_t>(t * c.half + j)];
        if (!(std::fabs(value - want) <= allowed)) {
          ADD_FAILURE() << "token " << t << " output " << j << ": got " << value << ", expected " << want
                        << " (tolerance " << allowed << ")";
          ++failures;
        }
      }
    }
  }
}

TEST(Nvfp4Gemv, FusedGateUpActivationMatchesTheReference) {
  check_gate_up(Kernel::gemv, 1);  // every block shape
  check_gate_up(Kernel::gemv, 2);
  check_gate_up(Kernel::gemv, 3);
  check_gate_up(Kernel::gemv, 4);
  check_gate_up(Kernel::gemv, 5);
}

TEST(Nvfp4Gemm, FusedGateUpActivationMatchesTheReference) {
  if (!gemm_here()) GTEST_SKIP() << "no sm_90a GPU";
  check_gate_up(Kernel::gemm, 1);  // 256 tokens per block
  check_gate_up(Kernel::gemm, 2);  // 128
}

TEST(Nvfp4GemmW4a8, FusedGateUpActivationMatchesTheOracle) {
  if (!fp8_mma_supported()) GTEST_SKIP() << "no FP8 tensor cores (sm_89 or newer)";
  check_gate_up(Kernel::w4a8);
}

TEST(Nvfp4Gemv, RefusesAnActivationWithoutAGateUpWeight) {
  Nvfp4LinearParams p;
  p.shape = {16, 64};
  alignas(16) uint8_t dummy[64] = {};
  float f[16] = {};
  p.x_stride = 64;
  p.tiles = dummy;
  p.row_scale = f;
  p.out = f;
  p.out_stride = 16;
  p.activation = Nvfp4Activation::silu;
  test::expect_error([&] { nvfp4_gemv(p, nullptr); }, "activation goes with a gate_up weight");
}

// The bf16 output is the fp32 output rounded to nearest even, bit for bit.
void check_bf16_output(Kernel kernel, int64_t tokens, int64_t out_stride) {
  SCOPED_TRACE(std::string(kernel_name(kernel)) + ", out stride " + std::to_string(out_stride));
  std::mt19937 rng(77);
  const int64_t n = 300, k = 1040;
  const Weight w = make_weight(n, k, rng);
  const Repacked r(w);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> x_bits(static_cast<size_t>(tokens * k));
  for (uint16_t& b : x_bits) b = f32_to_bf16(normal(rng));
  DeviceArray<uint16_t> x(x_bits);
  DeviceArray<float> out32(static_cast<size_t>(tokens * out_stride));
  DeviceArray<uint16_t> out16(std::vector<uint16_t>(static_cast<size_t>(tokens * out_stride), 0x7FC0));
  Nvfp4LinearParams p = r.params(x.ptr, k, tokens);
  p.out_stride = out_stride;
  p.out = out32.ptr;
  launch(kernel, p);
  p.out = nullptr;
  p.out_bf16 = reinterpret_cast<__nv_bfloat16*>(out16.ptr);
  launch(kernel, p);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> f = out32.to_host();
  const std::vector<uint16_t> h = out16.to_host();
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t c = 0; c < out_stride; ++c) {
      const size_t i = static_cast<size_t>(t * out_stride + c);
      if (c < n) {
        ASSERT_EQ(h[i], f32_to_bf16(f[i])) << "token " << t << " output " << c;
      } else {
        ASSERT_EQ(h[i], 0x7FC0) << "wrote past N at token " << t;
      }
    }
  }
  p.out = out32.ptr;  // both given: refused
  test::expect_error([&] { launch(kernel, p); }, "exactly one of out and out_bf16");
}

TEST(Nvfp4Gemv, Bf16OutputIsTheRoundedFp32Output) { check_bf16_output(Kernel::gemv, 5, 300); }

// The MoE decode path's two kernels: moe_sort_pairs groups the (token, k) pairs by expert, and the expert
// GEMV runs each active expert over its rows. The sorted layout is checked for what it promises (offsets
// are the counts' prefix sums, the active list is the used experts ascending then -1, every pair has its
// own row inside its expert's range, row_token names the pair's token); then each pair's output row must
// equal the dense GEMV of its expert over its x row — bit for bit where both run the same block shape (the
// kernels share the GEMV body; only the pointers differ). Both forms the MoE block uses: gate_up with the
// fused activation reading each row's token through row_token (K = 1040, 17 tiles: the automatic shape is
// 8 warps), and a plain weight reading sorted row r of its input (K = 768: 4 warps). Expert 3 gets 10 rows
// (two passes of 8), expert 2 none, and one pair an id outside the table (no row, nothing written).
void check_experts(bool gate_up) {
  SCOPED_TRACE(gate_up ? "gate_up" : "plain");
  std::mt19937 rng(gate_up ? 91 : 92);
  const int64_t experts = 5, k = gate_up ? 1040 : 768, n = gate_up ? 2 * 200 : 2048, tokens = 9, top_k = 2;
  const int64_t width = gate_up ? n / 2 : n, pairs = tokens * top_k;
  std::vector<std::unique_ptr<Repacked>> weights;
  std::vector<const uint8_t*> tiles;
  std::vector<const float*> scales;
  for (int64_t e = 0; e < experts; ++e) {
    weights.push_back(std::make_unique<Repacked>(make_weight(n, k, rng), gate_up));
    ASSERT_EQ(weights.back()->bad_scales, 0);
    tiles.push_back(weights.back()->tiles.ptr);
    scales.push_back(weights.back()->row_scale.ptr);
  }
  const std::vector<int32_t> ids = {3, 0, 3, 4, 3, 1, 3, 0, 3, 4, 3, -1, 3, 1, 3, 0, 3, 3};
  ASSERT_EQ(static_cast<int64_t>(ids.size()), pairs);
  const int slots = static_cast<int>(experts);

  // The sort.
  DeviceArray<int32_t> d_ids(ids), offsets(static_cast<size_t>(experts + 1)), active(static_cast<size_t>(slots)),
      row_token(static_cast<size_t>(pairs)), pair_row(static_cast<size_t>(pairs));
  MoeSortedPairs sorted{offsets.ptr, active.ptr, row_token.ptr, pair_row.ptr, slots};
  moe_sort_pairs(d_ids.ptr, pairs, static_cast<int>(top_k), static_cast<int>(experts), sorted, nullptr);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<int32_t> off = offsets.to_host(), act = active.to_host(), tok = row_token.to_host(), at = pair_row.to_host();
  std::vector<int32_t> count(static_cast<size_t>(experts), 0);
  for (const int32_t e : ids) {
    if (e >= 0) ++count[static_cast<size_t>(e)];
  }
  ASSERT_EQ(count[3], 10);
  EXPECT_EQ(off[0], 0);
  for (int64_t e = 0; e < experts; ++e) EXPECT_EQ(off[e + 1] - off[e], count[e]) << "expert " << e;
  EXPECT_EQ(act, (std::vector<int32_t>{0, 1, 3, 4, -1}));
  std::vector<bool> taken(static_cast<size_t>(pairs), false);
  for (int64_t i = 0; i < pairs; ++i) {
    const int32_t e = ids[static_cast<size_t>(i)], r = at[static_cast<size_t>(i)];
    if (e < 0) {
      EXPECT_EQ(r, -1) << "pair " << i;
      continue;
    }
    ASSERT_GE(r, off[e]) << "pair " << i;
    ASSERT_LT(r, off[e + 1]) << "pair " << i;
    EXPECT_FALSE(taken[static_cast<size_t>(r)]) << "row " << r << " given twice";
    taken[static_cast<size_t>(r)] = true;
    EXPECT_EQ(tok[static_cast<size_t>(r)], i / top_k) << "row " << r;
  }

  // The GEMVs: x rows are tokens (gate_up, read through row_token) or sorted rows (plain).
  const int64_t rows = off[experts];
  const int64_t x_rows = gate_up ? tokens : rows;
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> x_bits(static_cast<size_t>(x_rows * k));
  for (uint16_t& b : x_bits) b = f32_to_bf16(normal(rng));
  DeviceArray<uint16_t> x(x_bits);
  DeviceArray<const uint8_t*> d_tiles(tiles);
  DeviceArray<const float*> d_scales(scales);
  const std::vector<float> poison(static_cast<size_t>(pairs * width), std::numeric_limits<float>::quiet_NaN());
  const Nvfp4Activation activation = gate_up ? Nvfp4Activation::silu : Nvfp4Activation::none;
  // The dense GEMV with a given block shape, one pair at a time, into the pair's sorted row.
  const auto dense = [&](int variant) {
    DeviceArray<float> out(poison);
    for (int64_t i = 0; i < pairs; ++i) {
      const int32_t e = ids[static_cast<size_t>(i)], r = at[static_cast<size_t>(i)];
      if (e < 0) continue;
      Nvfp4LinearParams q = weights[static_cast<size_t>(e)]->params(x.ptr + (gate_up ? i / top_k : r) * k, k, 1);
      q.out = out.ptr + r * width;
      q.out_stride = width;
      q.activation = activation;
      q.variant = variant;
      nvfp4_gemv(q, nullptr);
    }
    return out.to_host();
  };
  Nvfp4LinearParams p = weights[0]->params(x.ptr, k, 1);
  p.out_stride = width;
  p.activation = activation;
  Nvfp4ExpertGemv g;
  g.active = active.ptr;
  g.offsets = offsets.ptr;
  g.x_rows = gate_up ? row_token.ptr : nullptr;
  g.tiles = d_tiles.ptr;
  g.row_scale = d_scales.ptr;
  g.slots = slots;
  g.num_experts = static_cast<int>(experts);
  // Every block shape. Those of the dense GEMV's shapes (1-4: the same warps, row tiles and tiles in flight,
  // so the same summation order) must equal the dense reference bit for bit; the others (5-7: 4 warps, or 4
  // tiles in flight) split K differently, so they match within fp32 reordering: the outputs are O(1) sums of
  // hundreds of O(1) products, so 1e-4 · (|want| + 1) (measured: 1.6e-5 at K = 768), while a wrong tile, row
  // or scale moves them by O(1).
  const int automatic = (k + 63) / 64 <= 16 ? 5 : 2;  // nvfp4_gemv_experts' own choice for this K
  for (int variant = 0; variant <= 7; ++variant) {
    SCOPED_TRACE("variant " + std::to_string(variant));
    const int shape = variant == 0 ? automatic : variant;
    const std::vector<float> b = dense(shape <= 4 ? shape : 2);
    DeviceArray<float> got(poison);
    p.out = got.ptr;
    p.variant = variant;
    nvfp4_gemv_experts(p, g, nullptr);
    ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> a = got.to_host();
    for (int64_t r = 0; r < pairs; ++r) {
      for (int64_t j = 0; j < width; ++j) {
        const size_t i = static_cast<size_t>(r * width + j);
        if (r >= rows) {
          ASSERT_TRUE(std::isnan(a[i])) << "row " << r << " (no pair) was written at " << j;
        } else if (shape <= 4) {
          ASSERT_EQ(std::memcmp(&a[i], &b[i], sizeof(float)), 0) << "row " << r << " output " << j << ": grouped " << a[i]
                                                                 << ", dense " << b[i];
        } else {
          ASSERT_NEAR(a[i], b[i], 1e-4 * (std::fabs(b[i]) + 1.0f)) << "row " << r << " output " << j;
        }
      }
    }
  }
  g.slots = static_cast<int>(experts) + 1;
  test::expect_error([&] { nvfp4_gemv_experts(p, g, nullptr); }, "slots outside");
}

TEST(Nvfp4GemvExperts, EachSortedRowEqualsTheDenseGemvOfItsExpert) {
  check_experts(/*gate_up=*/true);
  check_experts(/*gate_up=*/false);
}

TEST(Nvfp4Gemm, Bf16OutputIsTheRoundedFp32Output) {
  if (!gemm_here()) GTEST_SKIP() << "no sm_90a GPU";
  check_bf16_output(Kernel::gemm, 300, 301);  // element stores
  check_bf16_output(Kernel::gemm, 300, 304);  // 16-byte stores
}

// out_permuted: the GEMM's bf16 output in the tiles' k order must be, bit for bit, its natural output put
// through nvfp4_permute_activations — what the next layer's GEMM reads with x_permuted (gate_up → down).
void check_permuted_output(int64_t n, bool gate_up, int64_t tokens) {
  SCOPED_TRACE("n " + std::to_string(n) + (gate_up ? " gate_up" : "") + ", tokens " + std::to_string(tokens));
  std::mt19937 rng(31);
  const int64_t k = 1040, width = gate_up ? n / 2 : n;
  const Weight w = make_weight(n, k, rng);
  const Repacked r(w, gate_up);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> x_bits(static_cast<size_t>(tokens * k));
  for (uint16_t& b : x_bits) b = f32_to_bf16(normal(rng));
  DeviceArray<uint16_t> x(x_bits), natural(static_cast<size_t>(tokens * width)), want(static_cast<size_t>(tokens * width)),
      got(static_cast<size_t>(tokens * width));
  DeviceArray<uint8_t> workspace(static_cast<size_t>(nvfp4_gemm_workspace_bytes(r.shape, tokens)));
  Nvfp4LinearParams p = r.params(x.ptr, k, tokens);
  p.out_bf16 = reinterpret_cast<__nv_bfloat16*>(natural.ptr);
  p.out_stride = width;
  if (gate_up) p.activation = Nvfp4Activation::silu;
  nvfp4_gemm(p, workspace.ptr, nullptr);
  nvfp4_permute_activations(reinterpret_cast<const __nv_bfloat16*>(natural.ptr), width, tokens, width,
                            reinterpret_cast<__nv_bfloat16*>(want.ptr), nullptr);
  p.out_bf16 = reinterpret_cast<__nv_bfloat16*>(got.ptr);
  p.out_permuted = true;
  nvfp4_gemm(p, workspace.ptr, nullptr);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<uint16_t> a = want.to_host(), b = got.to_host();
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "element " << i;
}

TEST(Nvfp4Gemm, WritesItsOutputInTheNextGemmsOrder) {
  if (!gemm_here()) GTEST_SKIP() << "no sm_90a GPU";
  check_permuted_output(320, false, 300);   // 128-feature blocks, the last one partly outside the width
  check_permuted_output(384, true, 530);    // gate_up: 64-feature blocks
  check_permuted_output(256, false, 4099);  // several token tiles, a partial last one
  std::mt19937 rng(3);
  const Weight w = make_weight(96, 64, rng);  // width 96: not a multiple of 64
  const Repacked r(w);
  DeviceArray<uint16_t> x(static_cast<size_t>(64 * 8)), out(static_cast<size_t>(96 * 8));
  DeviceArray<uint8_t> workspace(static_cast<size_t>(nvfp4_gemm_workspace_bytes(r.shape, 8)));
  Nvfp4LinearParams p = r.params(x.ptr, 64, 8);
  p.out_bf16 = reinterpret_cast<__nv_bfloat16*>(out.ptr);
  p.out_stride = 96;
  p.out_permuted = true;
  test::expect_error([&] { nvfp4_gemm(p, workspace.ptr, nullptr); }, "multiple of 64");
  test::expect_error([&] { nvfp4_gemv(p, nullptr); }, "natural order only");
}

TEST(Nvfp4Gemv, RepackCountsNanAndNegativeScales) {
  std::mt19937 rng(7);
  Weight w = make_weight(16, 64, rng);
  w.scales[3] = 0x7F;   // NaN
  w.scales[9] = 0xB0;   // negative
  w.scales[10] = 0x80;  // negative zero: a zero scale, allowed
  const Repacked r(w);
  EXPECT_EQ(r.bad_scales, 2);
}

TEST(Nvfp4Gemv, RefusesBadShapes) {
  Nvfp4LinearParams p;
  p.shape = {16, 24};  // K not a multiple of 16
  EXPECT_THROW(nvfp4_gemv(p, nullptr), Error);
}

// The mma.sync GEMM (Ampere and Ada's prefill path) runs on every sm_80+ GPU, this one included.
TEST(Nvfp4GemmMma, MatchesTheExactReferenceOverOddShapes) {
  struct Shape {
    int64_t n, k, tokens;
  };
  const Shape shapes[] = {
      {1, 16, 1},     {7, 48, 2},       {16, 64, 3},       {33, 80, 7},    {100, 208, 16}, {130, 1040, 33},
      {257, 4112, 128}, {255, 2048, 129}, {1000, 4096, 300}, {48, 272, 512}, {24, 80, 4099}, {4096, 14336, 64},
  };
  uint32_t seed = 300;
  for (const Shape& s : shapes) {
    check_linear(Kernel::gemm_mma, s.n, s.k, s.tokens, seed, 0, 8);
    check_linear(Kernel::gemm_mma, s.n, s.k, s.tokens, seed, 0, 8, (4 - s.n % 4) % 4 + 4);
    ++seed;
  }
}

TEST(Nvfp4GemmMma, FusedGateUpAndBf16Output) {
  check_gate_up(Kernel::gemm_mma);
  check_bf16_output(Kernel::gemm_mma, 300, 301);
}

// The plan's dispatch gives exactly the bits of the kernel it names for each batch size.
// nvfp4_linear under `plan` gives the same bits as `expected(tokens)`, the kernel the plan should pick, run
// directly, for each token count.
template <typename Expected>
void expect_dispatch(const Nvfp4LinearPlan& plan, uint32_t seed, std::initializer_list<int64_t> token_counts,
                     Expected expected) {
  std::mt19937 rng(seed);
  const int64_t n = 200, k = 1040;
  const Weight w = make_weight(n, k, rng);
  const Repacked r(w, false, plan.layout());
  for (const int64_t tokens : token_counts) {
    SCOPED_TRACE("tokens " + std::to_string(tokens));
    std::normal_distribution<float> normal(0.0f, 1.0f);
    std::vector<uint16_t> x_bits(static_cast<size_t>(tokens * k));
    for (uint16_t& b : x_bits) b = f32_to_bf16(normal(rng));
    DeviceArray<uint16_t> x(x_bits);
    DeviceArray<float> via_plan(static_cast<size_t>(tokens * n)), direct(static_cast<size_t>(tokens * n));
    DeviceArray<uint8_t> workspace(static_cast<size_t>(plan.workspace_bytes(r.shape, tokens)));
    Nvfp4LinearParams p = r.params(x.ptr, k, tokens);
    p.out_stride = n;
    p.out = via_plan.ptr;
    nvfp4_linear(plan, p, workspace.ptr, nullptr);
    p.out = direct.ptr;
    launch(expected(tokens, plan.gemv_limit(r.shape)), p);
    ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
    const std::vector<float> a = via_plan.to_host(), b = direct.to_host();
    ASSERT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  }
}

// The GEMV up to the plan's limit for the weight (64 here: 13 row tiles cannot fill the SMs), the GEMM past it.
TEST(Nvfp4Linear, DispatchesByTokenCount) {
  const Nvfp4LinearPlan plan = plan_nvfp4_linear(current_nvfp4_device(), LinearPath::automatic);
  const Kernel gemm = plan.gemm == Nvfp4Gemm::wgmma ? Kernel::gemm : Kernel::gemm_mma;
  expect_dispatch(plan, 11, {1, kNvfp4GemvMaxBatch, kNvfp4GemvMaxBatch + 1, 300},
                  [&](int64_t tokens, int64_t limit) { return tokens <= limit ? Kernel::gemv : gemm; });
}

// --linear-path w4a8 where the GPU has FP8 tensor cores: the W4A8 GEMM for every batch, weights in its
// layout, the plan's workspace.
TEST(Nvfp4Linear, W4a8PlanRunsTheFp8Gemm) {
  if (!fp8_mma_supported()) GTEST_SKIP() << "no FP8 tensor cores (sm_89 or newer)";
  const Nvfp4LinearPlan plan = plan_nvfp4_linear(current_nvfp4_device(), LinearPath::w4a8);
  expect_dispatch(plan, 12, {1, 300}, [](int64_t, int64_t) { return Kernel::w4a8; });
}

}  // namespace
}  // namespace adallm::kernels
