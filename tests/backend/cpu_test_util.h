// Helpers the CPU backend tests share: a backend, uploads of host vectors, read-back, a deterministic
// random source, the fp64 reference RMSNorm and element-wise tolerance checks.
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "test_util.h"

namespace adallm::backend::test {

inline std::unique_ptr<Backend> cpu() { return make_cpu_backend(0); }

inline std::unique_ptr<Buffer> upload_f32(Backend& b, const std::vector<float>& data, int64_t rows, int64_t cols,
                                          const std::string& name = "t") {
  return b.upload(HostArray{name, data.data(), DType::F32, rows, cols}, DType::F32);
}

inline std::vector<float> read(Backend& b, const Tensor& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  b.to_host(t, out);
  return out;
}

inline std::vector<float> random_floats(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

// Relative-to-scale closeness: |a - b| <= atol + rtol * |b|.
inline void expect_near_all(const std::vector<float>& actual, const std::vector<double>& expected, double rtol,
                            double atol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    ASSERT_NEAR(actual[i], expected[i], atol + rtol * std::fabs(expected[i])) << what << " at " << i;
  }
}

using adallm::test::expect_error;

}  // namespace adallm::backend::test
