// Backend::logprobs_rows and Backend::copy on the CPU backend (the reference the CUDA kernels are tested
// against): log_softmax of hand-made rows restated in double, the top entries' order (logit descending,
// ties to the lower id), -inf tokens, rows the samplers refuse (NaN, +inf, all -inf), an id outside the
// vocabulary, top_n 0 and top_n past the vocabulary, strided views; and the argument checks.
#include <cmath>
#include <limits>

#include "backend/op_checks.h"
#include "cpu_test_util.h"

namespace adallm::backend::test {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

struct Out {
  std::vector<float> chosen, top_logprobs;
  std::vector<float> top_ids;  // read back as floats (exact)
};

Out run(Backend& b, const std::vector<float>& logits, int64_t rows, int64_t vocab, const std::vector<int32_t>& ids,
        int64_t top_n) {
  auto l = upload_f32(b, logits, rows, vocab);
  auto i = b.alloc(rows, 1, DType::I32);
  for (int64_t r = 0; r < rows; ++r) i->view().row<int32_t>(r)[0] = ids[size_t(r)];
  auto chosen = b.alloc(rows, 1, DType::F32);
  auto top_ids = b.alloc(rows, std::max<int64_t>(top_n, 1), DType::I32);
  auto top_lp = b.alloc(rows, std::max<int64_t>(top_n, 1), DType::F32);
  b.logprobs_rows(l->view(), i->view(), top_n, chosen->view(), top_ids->view().col_slice(0, top_n),
                  top_lp->view().col_slice(0, top_n));
  return Out{read(b, chosen->view()), read(b, top_lp->view().col_slice(0, top_n)),
             read(b, top_ids->view().col_slice(0, top_n))};
}

TEST(CpuLogprobs, LogSoftmaxAndTheMostLikelyTokens) {
  auto b = cpu();
  // Row 0: a tie between ids 1 and 3 (the lower id first), a -inf token. Row 1: uniform over 5 tokens.
  const std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f, -kInf,  //
                                     3.0f, 3.0f, 3.0f, 3.0f, 3.0f};
  const Out out = run(*b, logits, 2, 5, {4, 2}, 3);
  const double lse0 = std::log(std::exp(0.5) + 2 * std::exp(2.0) + std::exp(-1.0));
  EXPECT_EQ(out.chosen[0], -kInf);
  EXPECT_NEAR(out.chosen[1], -std::log(5.0), 1e-6);
  EXPECT_EQ(out.top_ids, (std::vector<float>{1, 3, 0, 0, 1, 2}));
  expect_near_all(out.top_logprobs, {2.0 - lse0, 2.0 - lse0, 0.5 - lse0, -std::log(5.0), -std::log(5.0), -std::log(5.0)},
                  1e-6, 1e-7, "top logprobs");
}

TEST(CpuLogprobs, RefusedRowsAndOddArguments) {
  auto b = cpu();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Rows: NaN inside, +inf inside, all -inf, fine but its id is outside the vocabulary.
  const std::vector<float> logits = {0.0f, nan, 1.0f, 0.0f, kInf, 1.0f, -kInf, -kInf, -kInf, 1.0f, 2.0f, 3.0f};
  const Out out = run(*b, logits, 4, 3, {0, 0, 0, 3}, 2);
  for (int r = 0; r < 4; ++r) EXPECT_TRUE(std::isnan(out.chosen[size_t(r)])) << "row " << r;
  for (int j = 0; j < 6; ++j) {
    EXPECT_EQ(out.top_ids[size_t(j)], -1.0f);
    EXPECT_TRUE(std::isnan(out.top_logprobs[size_t(j)]));
  }
  EXPECT_EQ(out.top_ids[6], 2.0f);  // the last row's top entries are fine
  EXPECT_EQ(out.top_ids[7], 1.0f);
  // top_n past the vocabulary: the entries beyond it are id -1 and NaN; top_n 0 reports the chosen only.
  const Out wide = run(*b, {1.0f, 2.0f}, 1, 2, {0}, 4);
  EXPECT_EQ(wide.top_ids, (std::vector<float>{1, 0, -1, -1}));
  EXPECT_TRUE(std::isnan(wide.top_logprobs[2]) && std::isnan(wide.top_logprobs[3]));
  const Out none = run(*b, {1.0f, 2.0f}, 1, 2, {1}, 0);
  EXPECT_NEAR(none.chosen[0], 2.0 - std::log(std::exp(1.0) + std::exp(2.0)), 1e-6);
}

TEST(CpuLogprobs, RefusesBadArguments) {
  auto b = cpu();
  auto logits = b->alloc(2, 8, DType::F32);
  auto ids = b->alloc(2, 1, DType::I32);
  auto chosen = b->alloc(2, 1, DType::F32);
  auto top_ids = b->alloc(2, 21, DType::I32);
  auto top_lp = b->alloc(2, 21, DType::F32);
  EXPECT_THROW(b->logprobs_rows(logits->view(), ids->view(), 21, chosen->view(), top_ids->view(), top_lp->view()), Error);
  EXPECT_THROW(b->logprobs_rows(logits->view(), ids->view(), 2, chosen->view(), top_ids->view(), top_lp->view()), Error);
  EXPECT_THROW(b->logprobs_rows(logits->view(), ids->view().row_slice(0, 1), 2, chosen->view(),
                                top_ids->view().col_slice(0, 2), top_lp->view().col_slice(0, 2)),
               Error);
}

TEST(CpuCopy, CopiesStridedViews) {
  auto b = cpu();
  const auto values = random_floats(24, 3);
  auto src = upload_f32(*b, values, 4, 6);
  auto dst = b->alloc(4, 10, DType::F32);
  b->copy(src->view().col_slice(1, 4), dst->view().col_slice(3, 4));
  const std::vector<float> got = read(*b, dst->view().col_slice(3, 4));
  for (int r = 0; r < 4; ++r) {
    for (int c = 0; c < 4; ++c) EXPECT_EQ(got[size_t(r * 4 + c)], values[size_t(r * 6 + 1 + c)]);
  }
  EXPECT_THROW(b->copy(src->view(), dst->view()), Error);  // shapes differ
}

}  // namespace
}  // namespace adallm::backend::test
