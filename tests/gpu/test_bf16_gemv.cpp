// The BF16 GEMV (kernels/linear/bf16_gemv.h) against an fp64 reference over shapes with a partial row tile
// (n not a multiple of 16), a partial 64-column chunk (k = 8 mod 64), fewer columns than one chunk, every
// token-group count (1, 2, 4 groups of 8) and the router shape; fp32 and bf16 outputs; the refusals.
//
// Tolerance: weights and activations are bf16, so every product is exact in fp32 and only the fp32 sums
// round (MMA accumulation, the warps' split-K sum): |error| ≤ k · 2^-23 · Σ|w · x| bounds it; 1e-5 · Σ|w · x|
// (with k ≤ 4096) is above that and far below a missing or doubled product (≥ 1e-3 of it for these data).
#include <gtest/gtest.h>

#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/float_codecs.h"
#include "gpu/device_array.h"
#include "kernels/linear/bf16_gemv.h"
#include "test_util.h"

namespace adallm::kernels {
namespace {

using test::DeviceArray;

struct Case {
  int64_t n, k, tokens;
};

class Bf16Gemv : public ::testing::TestWithParam<Case> {};

TEST_P(Bf16Gemv, MatchesFp64) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.n * 7 + c.k * 3 + c.tokens));
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<uint16_t> w(static_cast<size_t>(c.n * c.k)), x(static_cast<size_t>(c.tokens * (c.k + 8)));
  for (uint16_t& v : w) v = f32_to_bf16(normal(rng));
  for (uint16_t& v : x) v = f32_to_bf16(normal(rng));
  const int64_t x_stride = c.k + 8;  // rows apart from their width
  DeviceArray<uint16_t> d_w(w), d_x(x), d_bf16(static_cast<size_t>(c.tokens * c.n));
  DeviceArray<float> d_out(std::vector<float>(static_cast<size_t>(c.tokens * c.n), std::nanf("")));
  Bf16GemvParams p;
  p.w = reinterpret_cast<const __nv_bfloat16*>(d_w.ptr);
  p.x = reinterpret_cast<const __nv_bfloat16*>(d_x.ptr);
  p.x_stride = x_stride;
  p.n = c.n;
  p.k = c.k;
  p.tokens = c.tokens;
  p.out = d_out.ptr;
  p.out_stride = c.n;
  ASSERT_TRUE(bf16_gemv_supported(p));
  bf16_gemv(p, nullptr);
  p.out = nullptr;
  p.out_bf16 = reinterpret_cast<__nv_bfloat16*>(d_bf16.ptr);
  bf16_gemv(p, nullptr);
  ADALLM_CUDA_CHECK(cudaDeviceSynchronize());
  const std::vector<float> got = d_out.to_host();
  const std::vector<uint16_t> got_bf16 = d_bf16.to_host();
  for (int64_t t = 0; t < c.tokens; ++t) {
    for (int64_t r = 0; r < c.n; ++r) {
      double want = 0.0, magnitude = 0.0;
      for (int64_t j = 0; j < c.k; ++j) {
        const double prod = double(bf16_to_f32(w[static_cast<size_t>(r * c.k + j)])) *
                            bf16_to_f32(x[static_cast<size_t>(t * x_stride + j)]);
        want += prod;
        magnitude += std::fabs(prod);
      }
      const size_t i = static_cast<size_t>(t * c.n + r);
      ASSERT_NEAR(got[i], want, 1e-5 * magnitude) << "token " << t << " row " << r;
      ASSERT_EQ(got_bf16[i], f32_to_bf16(got[i])) << "bf16 output, token " << t << " row " << r;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shapes, Bf16Gemv,
                         ::testing::Values(Case{128, 2048, 1}, Case{128, 2048, 8}, Case{130, 72, 3}, Case{33, 8, 9},
                                           Case{200, 1000, 16}, Case{1000, 4096, 17}, Case{75, 136, 32},
                                           Case{4100, 256, 5}),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           const Case& c = param.param;
                           return "n" + std::to_string(c.n) + "_k" + std::to_string(c.k) + "_t" + std::to_string(c.tokens);
                         });

TEST(Bf16Gemv, RefusesWhatItCannotRead) {
  DeviceArray<uint16_t> w(64 * 64), x(64 * 40);
  DeviceArray<float> out(64 * 40);
  Bf16GemvParams p;
  p.w = reinterpret_cast<const __nv_bfloat16*>(w.ptr);
  p.x = reinterpret_cast<const __nv_bfloat16*>(x.ptr);
  p.x_stride = 64;
  p.n = 64;
  p.k = 64;
  p.tokens = 4;
  p.out = out.ptr;
  p.out_stride = 64;
  EXPECT_TRUE(bf16_gemv_supported(p));
  Bf16GemvParams q = p;
  q.k = 60;
  q.x_stride = 60;
  EXPECT_FALSE(bf16_gemv_supported(q));
  test::expect_error([&] { bf16_gemv(q, nullptr); }, "k a positive multiple of 8");
  q = p;
  q.tokens = 33;
  test::expect_error([&] { bf16_gemv(q, nullptr); }, "33 tokens (1 to 32)");
  q = p;
  q.x = reinterpret_cast<const __nv_bfloat16*>(x.ptr + 4);  // 8 bytes in
  test::expect_error([&] { bf16_gemv(q, nullptr); }, "16-byte aligned");
  q = p;
  q.out_bf16 = reinterpret_cast<__nv_bfloat16*>(out.ptr);  // both outputs
  test::expect_error([&] { bf16_gemv(q, nullptr); }, "exactly one of out and out_bf16");
}

}  // namespace
}  // namespace adallm::kernels
