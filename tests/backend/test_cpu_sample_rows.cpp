// Backend::sample_rows on the CPU: per row exactly backend::RowSampler's token under that row's knobs and
// uniform, the logits overwritten with the penalized values, argmax_rows's codes for NaN / +inf and
// all -inf rows, and the argument checks (rows per logit row, token ids in the vocabulary, the uniform).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <vector>

#include "backend/sampling.h"
#include "cpu_test_util.h"

namespace adallm::backend::test {
namespace {

constexpr int64_t kVocab = 300;  // past the top_p radix threshold (256 candidates)

SamplingRow knobs(float temperature, int32_t top_k, float top_p, float min_p, double uniform) {
  SamplingRow row;
  row.temperature = temperature;
  row.top_k = top_k;
  row.top_p = top_p;
  row.min_p = min_p;
  row.uniform = uniform;
  return row;
}

TEST(CpuSampleRows, MatchesRowSamplerRowByRow) {
  auto b = cpu();
  const float inf = std::numeric_limits<float>::infinity();
  const int64_t rows = 8;
  std::vector<float> logits = random_floats(static_cast<size_t>(rows * kVocab), 11, -4.0f, 4.0f);
  const auto at = [&](int64_t r, int64_t i) -> float& { return logits[static_cast<size_t>(r * kVocab + i)]; };
  const std::vector<int32_t> prompt = {1, 2, 3, 3, 9}, output = {3, 9, 9, 9, 5, 5};
  std::vector<SamplingRow> knob_rows = {
      knobs(0.8f, 20, 0.9f, 0.0f, 0.37),   // top_k then top_p
      knobs(0.0f, 0, 1.0f, 0.0f, 0.0),     // greedy, penalized below
      knobs(1.2f, 0, 1.0f, 0.05f, 0.9),    // min_p, penalized below
      knobs(0.0f, 0, 1.0f, 0.0f, 0.0),     // plain greedy
      knobs(1.0f, 0, 0.5f, 0.0f, 0.6),     // NaN row, penalized: a code, and left as it was
      knobs(1.0f, 0, 1.0f, 0.0f, 0.2),     // all -inf
      knobs(0.0f, 0, 1.0f, 0.0f, 0.0),     // +inf, greedy
      knobs(0.7f, 0, 0.3f, 0.0f, 0.999),   // top_p alone, the last kept token
  };
  for (size_t r : {1, 2, 4}) {
    knob_rows[r].repetition_penalty = 1.3f;
    knob_rows[r].frequency_penalty = 0.3f;
    knob_rows[r].presence_penalty = 0.4f;
    knob_rows[r].prompt_tokens = prompt;
    knob_rows[r].output_tokens = output;
  }
  // Row 2 by hand: token 9 (2.0) is in both lists and thrice in the output: 2.0 / 1.3 - (0.3 * 3 + 0.4);
  // token 1 (-1.0) only in the prompt: -1.0 * 1.3; token 5 (0.5) twice in the output: 0.5 / 1.3 - 1.0.
  at(2, 9) = 2.0f, at(2, 1) = -1.0f, at(2, 5) = 0.5f;
  at(4, 7) = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < kVocab; ++i) at(5, i) = -inf;
  at(6, 100) = inf;
  auto x = upload_f32(*b, logits, rows, kVocab);
  auto ids = b->alloc(rows, 1, DType::I32);
  b->sample_rows(x->view(), knob_rows, ids->view());
  const std::vector<float> got_ids = read(*b, ids->view());
  const std::vector<float> got_logits = read(*b, x->view());

  for (int64_t r : {0, 1, 2, 3, 7}) {
    SCOPED_TRACE("row " + std::to_string(r));
    const std::span<const float> row(logits.data() + r * kVocab, static_cast<size_t>(kVocab));
    const SamplingRow& k = knob_rows[static_cast<size_t>(r)];
    RowSampler reference;
    EXPECT_EQ(got_ids[static_cast<size_t>(r)], static_cast<float>(reference.sample(row, k)));
    for (size_t i = 0; i < row.size(); ++i) {
      const float want = k.penalized() ? static_cast<float>(reference.penalized_logits()[i]) : row[i];
      ASSERT_EQ(got_logits[static_cast<size_t>(r * kVocab) + i], want) << "logit " << i;
    }
  }
  // 1e-6: the knobs are fp32 (0.3f * 3 + 0.4f is not 1.3 exactly), the hand values decimal.
  EXPECT_NEAR(got_logits[static_cast<size_t>(2 * kVocab + 9)], 2.0 / 1.3 - 1.3, 1e-6);
  EXPECT_NEAR(got_logits[static_cast<size_t>(2 * kVocab + 1)], -1.3, 1e-6);
  EXPECT_NEAR(got_logits[static_cast<size_t>(2 * kVocab + 5)], 0.5 / 1.3 - 1.0, 1e-6);
  EXPECT_EQ(got_ids[4], static_cast<float>(Backend::kArgmaxNonFinite));
  EXPECT_EQ(got_ids[5], static_cast<float>(Backend::kArgmaxNoFinite));
  EXPECT_EQ(got_ids[6], static_cast<float>(Backend::kArgmaxNonFinite));
  for (int64_t i = 0; i < kVocab; ++i) {
    if (i == 7) continue;  // NaN != NaN
    ASSERT_EQ(got_logits[static_cast<size_t>(4 * kVocab + i)], at(4, i)) << "a refused row is not penalized";
  }
}

TEST(CpuSampleRows, GreedyRowsAgreeWithArgmaxRows) {
  auto b = cpu();
  const std::vector<float> logits = random_floats(static_cast<size_t>(3 * kVocab), 12);
  auto x = upload_f32(*b, logits, 3, kVocab);
  auto ids = b->alloc(3, 1, DType::I32);
  b->argmax_rows(x->view(), ids->view());
  const std::vector<float> want = read(*b, ids->view());
  const std::vector<SamplingRow> greedy(3, knobs(0.0f, 0, 1.0f, 0.0f, 0.0));
  b->sample_rows(x->view(), greedy, ids->view());
  EXPECT_EQ(read(*b, ids->view()), want);
}

TEST(CpuSampleRows, RefusesBadArguments) {
  auto b = cpu();
  auto x = upload_f32(*b, std::vector<float>(2 * 4, 0.0f), 2, 4);
  auto ids = b->alloc(2, 1, DType::I32);
  std::vector<SamplingRow> rows(2, knobs(1.0f, 0, 1.0f, 0.0f, 0.5));
  const std::vector<int32_t> good = {0, 3}, bad = {1, 2, 4};
  rows[1].output_tokens = bad;
  expect_error([&] { b->sample_rows(x->view(), rows, ids->view()); },
               "sample_rows: rows[1].output_tokens[2] = 4 is outside [0, vocab_size=4)");
  rows[1].output_tokens = good;
  const std::vector<int32_t> negative = {-1};
  rows[0].prompt_tokens = negative;
  expect_error([&] { b->sample_rows(x->view(), rows, ids->view()); }, "rows[0].prompt_tokens[0] = -1");
  rows[0].prompt_tokens = good;
  rows[0].uniform = 1.0;
  expect_error([&] { b->sample_rows(x->view(), rows, ids->view()); }, "rows[0].uniform is 1");
  rows[0].uniform = 0.5;
  expect_error([&] { b->sample_rows(x->view(), std::span(rows).first(1), ids->view()); },
               "1 sampling rows for logits F32 [2, 4]");
  auto f = b->alloc(2, 1, DType::F32);
  EXPECT_THROW(b->sample_rows(x->view(), rows, f->view()), Error);
  EXPECT_NO_THROW(b->sample_rows(x->view(), rows, ids->view()));
}

}  // namespace
}  // namespace adallm::backend::test
