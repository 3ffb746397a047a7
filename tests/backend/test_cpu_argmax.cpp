// Backend::argmax_rows on the CPU: the greedy sampler's rule (lowest index of the largest logit) and its
// two refusals (NaN or +inf anywhere in the row; no finite logit), reported as codes per row.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "cpu_test_util.h"

namespace adallm::backend::test {
namespace {

TEST(CpuArgmax, LowestIndexOfTheLargestAndCodesForBadRows) {
  auto b = cpu();
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> logits = {
      1.0f, 3.0f, 3.0f, -2.0f,   // tie: index 1
      -inf, -inf, -5.0f, -inf,   // one finite value among -inf
      0.0f, nan, 9.0f, 1.0f,     // NaN anywhere
      0.0f, 1.0f, inf, 2.0f,     // +inf
      -inf, -inf, -inf, -inf,    // nothing finite
      -0.0f, 0.0f, -1.0f, -0.5f  // -0 and +0 compare equal: the first wins
  };
  auto x = upload_f32(*b, logits, 6, 4);
  auto ids = b->alloc(6, 1, DType::I32);
  b->argmax_rows(x->view(), ids->view());
  const std::vector<float> got = read(*b, ids->view());
  EXPECT_EQ(got, (std::vector<float>{1, 2, Backend::kArgmaxNonFinite, Backend::kArgmaxNonFinite,
                                     Backend::kArgmaxNoFinite, 0}));
}

TEST(CpuArgmax, RefusesWrongShapes) {
  auto b = cpu();
  auto x = upload_f32(*b, std::vector<float>(8, 0.0f), 2, 4);
  auto ids = b->alloc(3, 1, DType::I32);
  EXPECT_THROW(b->argmax_rows(x->view(), ids->view()), Error);
  auto f = b->alloc(2, 1, DType::F32);
  EXPECT_THROW(b->argmax_rows(x->view(), f->view()), Error);
}

}  // namespace
}  // namespace adallm::backend::test
