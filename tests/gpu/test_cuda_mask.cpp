// Structured output's logit mask on the GPU (label `gpu`): Backend::mask_logits of the CUDA backend
// against the CPU backend's, bit for bit, then argmax over the masked rows; also a row slice whose stride
// exceeds its width (the model's logits buffer holds more rows and columns than a step uses).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"

namespace adallm::backend {
namespace {

TEST(CudaMaskLogits, MatchesTheCpuBackend) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (const int64_t vocab : {int64_t{151936}, int64_t{33}, int64_t{4096}, int64_t{1000}}) {
    SCOPED_TRACE(vocab);
    const int64_t rows = 5, words = (vocab + 31) / 32;
    std::vector<float> logits(static_cast<size_t>(rows * vocab));
    for (float& v : logits) v = normal(rng);
    std::vector<uint32_t> mask(static_cast<size_t>(rows * words));
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t w = 0; w < words; ++w) {
        uint32_t& m = mask[static_cast<size_t>(r * words + w)];
        m = r == 0 ? ~0u : r == 1 ? 0u : static_cast<uint32_t>(rng());  // all allowed, none, random
      }
    }
    mask[static_cast<size_t>(3 * words)] = 0;
    for (int64_t w = 1; w < words; ++w) mask[static_cast<size_t>(3 * words + w)] = 0;
    mask[static_cast<size_t>(3 * words + words - 1)] = 1u << ((vocab - 1) % 32);  // only the last token
    std::vector<std::vector<float>> masked, ids;
    for (auto* make : {+[] { return make_cpu_backend(2); }, +[] { return make_cuda_backend(); }}) {
      auto b = make();
      auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, rows, vocab}, DType::F32);
      b->mask_logits(x->view(), mask);
      masked.emplace_back(logits.size());
      b->to_host(x->view(), masked.back());
      auto out = b->alloc(rows, 1, DType::I32);
      b->argmax_rows(x->view(), out->view());
      ids.emplace_back(static_cast<size_t>(rows));
      b->to_host(out->view(), ids.back());
    }
    ASSERT_EQ(masked[1].size(), masked[0].size());
    for (size_t i = 0; i < masked[0].size(); ++i) {
      ASSERT_TRUE(masked[0][i] == masked[1][i] || (std::isinf(masked[0][i]) && std::isinf(masked[1][i]))) << i;
    }
    EXPECT_EQ(ids[1], ids[0]);
    EXPECT_EQ(ids[0][1], static_cast<float>(Backend::kArgmaxNoFinite));
    EXPECT_EQ(ids[0][3], static_cast<float>(vocab - 1));
  }
}

TEST(CudaMaskLogits, RespectsTheRowStrideOfASlice) {
  const int64_t rows = 3, vocab = 70, padded = 96;
  std::vector<float> logits(static_cast<size_t>(4 * padded), 1.0f);
  std::vector<uint32_t> mask(static_cast<size_t>(rows * 3), 0x55555555u);  // even tokens allowed
  std::vector<std::vector<float>> got;
  for (auto* make : {+[] { return make_cpu_backend(2); }, +[] { return make_cuda_backend(); }}) {
    auto b = make();
    auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, 4, padded}, DType::F32);
    b->mask_logits(x->view().row_slice(0, rows).col_slice(0, vocab), mask);
    got.emplace_back(logits.size());
    b->to_host(x->view(), got.back());
  }
  for (size_t i = 0; i < logits.size(); ++i) {
    const int64_t r = static_cast<int64_t>(i) / padded, c = static_cast<int64_t>(i) % padded;
    const bool masked = r < rows && c < vocab && c % 2 == 1;
    EXPECT_EQ(std::isinf(got[1][i]), masked) << i;
    EXPECT_EQ(std::isinf(got[0][i]), masked) << i;
  }
}

}  // namespace
}  // namespace adallm::backend
