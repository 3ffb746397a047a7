// Greedy sampling on the GPU (label `gpu`): Backend::argmax_rows of the CUDA backend against the CPU's.
#include <gtest/gtest.h>

#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"

namespace adallm::backend {
namespace {

// Backend::argmax_rows on the GPU against the CPU's, over vocabulary-sized rows with planted ties (the
// lowest index must win across threads and warps), NaN, +inf and all -inf rows.
TEST(CudaArgmax, MatchesTheCpuBackend) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const int64_t rows = 9, vocab = 151936;
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  for (float& v : logits) v = normal(rng);
  const auto at = [&](int64_t r, int64_t i) -> float& { return logits[static_cast<size_t>(r * vocab + i)]; };
  at(1, 5000) = 100.0f, at(1, 150000) = 100.0f, at(1, 77) = 100.0f;  // tie across threads: 77
  at(2, 1023) = 50.0f, at(2, 1024) = 50.0f;                         // tie across warps / threads: 1023
  at(3, 12345) = std::numeric_limits<float>::quiet_NaN();
  at(4, 99) = std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) at(5, i) = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) at(6, i) = -std::numeric_limits<float>::infinity();
  at(6, vocab - 1) = -1e30f;  // the only finite value, at the end
  std::vector<std::vector<float>> got;
  for (auto* make : {+[] { return make_cpu_backend(2); }, +[] { return make_cuda_backend(); }}) {
    auto b = make();
    auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, rows, vocab}, DType::F32);
    auto ids = b->alloc(rows, 1, DType::I32);
    b->argmax_rows(x->view(), ids->view());
    got.emplace_back(static_cast<size_t>(rows));
    b->to_host(ids->view(), got.back());
  }
  EXPECT_EQ(got[1], got[0]);
  EXPECT_EQ(got[0][1], 77.0f);
  EXPECT_EQ(got[0][2], 1023.0f);
  EXPECT_EQ(got[0][3], static_cast<float>(Backend::kArgmaxNonFinite));
  EXPECT_EQ(got[0][4], static_cast<float>(Backend::kArgmaxNonFinite));
  EXPECT_EQ(got[0][5], static_cast<float>(Backend::kArgmaxNoFinite));
  EXPECT_EQ(got[0][6], static_cast<float>(vocab - 1));
}

}  // namespace
}  // namespace adallm::backend
