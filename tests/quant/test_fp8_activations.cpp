// The per-token FP8 e4m3 activation round trip of W4A8, on hand-computed rows.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "quant/fp8_activations.h"

namespace adallm::quant {
namespace {

std::vector<float> round_trip(std::vector<float> x) {
  std::vector<float> out(x.size());
  fp8_e4m3_round_trip_row(x.data(), static_cast<int64_t>(x.size()), out.data());
  return out;
}

TEST(Fp8Activations, ScalesTheLargestMagnitudeTo448AndRoundsToNearestEven) {
  // max |x| = 896: the scale is exactly 2, so x / 2 is exact and only e4m3 rounding acts.
  // 896 → 448; -3 → -1.5 (exact); 2.6 → 1.3 → 1.25 (nearer than 1.375); 2.625 → 1.3125, halfway between
  // 1.25 (mantissa 010) and 1.375 (011) → the even one, 1.25; 0.01 → 0.005 → e4m3 subnormals are
  // multiples of 2^-9 ≈ 0.00195: 0.005 / 2^-9 = 2.56 → 3 · 2^-9.
  const std::vector<float> got = round_trip({896.0f, -3.0f, 2.6f, 2.625f, 0.01f, 0.0f});
  const std::vector<float> want = {896.0f, -3.0f, 2.5f, 2.5f, 2.0f * 3.0f * std::ldexp(1.0f, -9), 0.0f};
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_EQ(got[i], want[i]) << "element " << i;
}

TEST(Fp8Activations, LeavesZeroAndNonFiniteRowsAlone) {
  EXPECT_EQ(round_trip({0.0f, -0.0f}), (std::vector<float>{0.0f, -0.0f}));
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> got = round_trip({1.3f, inf});
  EXPECT_EQ(got[0], 1.3f);
  EXPECT_EQ(got[1], inf);
  EXPECT_TRUE(std::isnan(round_trip({std::nanf(""), 1.0f})[0]));
}

TEST(Fp8Activations, WorksInPlace) {
  std::vector<float> x = {896.0f, 2.6f};
  fp8_e4m3_round_trip_row(x.data(), 2, x.data());
  EXPECT_EQ(x, (std::vector<float>{896.0f, 2.5f}));
}

}  // namespace
}  // namespace adallm::quant
