// backend::RowSampler, the host reference of Backend::sample_rows, driven by explicit uniforms: the draw
// walks the kept tokens in token-id order (what lets the CUDA sampler be compared token for token), by
// hand on a small row and against a naive reimplementation of the chain on large ones. The distribution
// each knob gives is tests/engine/test_sampler.cpp's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "backend/sampling.h"
#include "core/error.h"
#include "test_util.h"

namespace adallm::backend {
namespace {

SamplingRow sampled(double uniform, float top_p = 1.0f) {
  SamplingRow row;
  row.uniform = uniform;
  row.top_p = top_p;
  return row;
}

TEST(RowSamplerDraw, WalksKeptTokensInTokenOrder) {
  // Weights relative to the max (token 2): 0.5, 0.25, 1, 0.5, 0.125, i.e. 2 : 1 : 4 : 2 : 0.5 of 9.5.
  // top_p = 0.8 ranks 2 (4), 0 (2), 3 (2, the tie to the lower id), 1, 4: cumulative 4/9.5 = 0.42,
  // 6/9.5 = 0.63, 8/9.5 = 0.84 >= 0.8, so {0, 2, 3} stays with mass 8. In token order token 0 owns
  // u in [0, 2/8) = [0, 0.25), token 2 [0.25, 0.75), token 3 [0.75, 1). (In rank order token 2 would own
  // [0, 0.5): u = 0.1 would give 2, not 0.)
  const float ln2 = std::log(2.0f);
  const std::vector<float> logits = {ln2, 0.0f, 2 * ln2, ln2, -ln2};
  RowSampler sampler;
  const std::vector<std::pair<double, int32_t>> draws = {{0.0, 0},  {0.1, 0},  {0.24, 0}, {0.26, 2},
                                                         {0.5, 2},  {0.74, 2}, {0.76, 3}, {0.999, 3}};
  for (const auto& [u, token] : draws) EXPECT_EQ(sampler.sample(logits, sampled(u, 0.8f)), token) << "u = " << u;
  // Without top_p all five stay, mass 9.5: token 0 [0, 2/9.5 = 0.21), 1 [0.21, 0.32), 2 [0.32, 0.74),
  // 3 [0.74, 0.95), 4 [0.95, 1).
  const std::vector<std::pair<double, int32_t>> all = {{0.2, 0}, {0.22, 1}, {0.31, 1}, {0.33, 2},
                                                       {0.73, 2}, {0.75, 3}, {0.94, 3}, {0.96, 4}};
  for (const auto& [u, token] : all) EXPECT_EQ(sampler.sample(logits, sampled(u)), token) << "u = " << u;
}

// The chain written the obvious way (full sorts, no radix or heap) with the same fp32 weights.
int32_t naive_sample(const std::vector<float>& logits, const SamplingRow& row) {
  double max_logit = -std::numeric_limits<double>::infinity();
  for (float v : logits) max_logit = std::max<double>(max_logit, v);
  const size_t vocab = logits.size();
  std::vector<bool> keep(vocab, true);
  if (row.top_k > 0 && static_cast<size_t>(row.top_k) < vocab) {
    std::vector<float> sorted = logits;
    std::sort(sorted.begin(), sorted.end(), std::greater<float>());
    const float kth = sorted[static_cast<size_t>(row.top_k) - 1];
    for (size_t i = 0; i < vocab; ++i) keep[i] = logits[i] >= kth;
  }
  std::vector<std::pair<float, int32_t>> kept;  // (weight, token)
  for (size_t i = 0; i < vocab; ++i) {
    const float w = std::exp(static_cast<float>((logits[i] - max_logit) / static_cast<double>(row.temperature)));
    if (keep[i] && w > 0.0f && w >= row.min_p) kept.emplace_back(w, static_cast<int32_t>(i));
  }
  if (row.top_p < 1.0f) {
    std::vector<std::pair<float, int32_t>> ranked = kept;
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    double total = 0.0;
    for (const auto& c : ranked) total += c.first;
    double cumulative = 0.0;
    size_t n = 0;
    while (n < ranked.size() && cumulative < row.top_p * total) cumulative += ranked[n++].first;
    ranked.resize(n);
    kept = ranked;
    std::sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.second < b.second; });
  }
  double total = 0.0;
  for (const auto& c : kept) total += c.first;
  double cumulative = 0.0;
  for (const auto& c : kept) {
    cumulative += c.first;
    if (row.uniform * total < cumulative) return c.second;
  }
  return kept.back().second;
}

TEST(RowSamplerDraw, MatchesANaiveChainOnLargeRows) {
  // 3000 distinct logits: past the radix threshold, so top_p's bucketed selection runs. Both sum the same
  // fp32 weights in double, in different orders, so only a draw or a top_p cutoff within rounding (about
  // 1e-16 of the mass) of a boundary could differ; these seeded rows hit none, and every draw must agree.
  std::mt19937 gen(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(3000);
  for (float& v : logits) v = normal(gen);
  std::vector<SamplingRow> rows(4);
  rows[0].top_p = 0.7f;
  rows[1].temperature = 0.6f, rows[1].top_p = 0.9f, rows[1].min_p = 0.001f;
  rows[2].top_k = 2000, rows[2].top_p = 0.5f;
  rows[3].temperature = 1.7f, rows[3].top_k = 40;
  RowSampler sampler;
  for (size_t r = 0; r < rows.size(); ++r) {
    for (int i = 0; i < 200; ++i) {
      rows[r].uniform = (i + 0.37) / 200.0;
      ASSERT_EQ(sampler.sample(logits, rows[r]), naive_sample(logits, rows[r])) << "row " << r << " draw " << i;
    }
  }
}

TEST(RowSamplerDraw, PenalizedLogitsAreKept) {
  // Token 0 (2.0) in the prompt with repetition 2: 1.0; token 1 (1.5) twice in the output with frequency
  // 0.25 and presence 0.5: 1.5 / 2 - (0.5 + 0.5) = -0.25; token 2 untouched.
  const std::vector<float> logits = {2.0f, 1.5f, 0.5f};
  const std::vector<int32_t> prompt = {0}, output = {1, 1};
  SamplingRow row;
  row.temperature = 0.0f;
  row.repetition_penalty = 2.0f;
  row.frequency_penalty = 0.25f;
  row.presence_penalty = 0.5f;
  row.prompt_tokens = prompt;
  row.output_tokens = output;
  RowSampler sampler;
  EXPECT_EQ(sampler.sample(logits, row), 0);
  const std::span<const double> penalized = sampler.penalized_logits();
  ASSERT_EQ(penalized.size(), 3u);
  EXPECT_DOUBLE_EQ(penalized[0], 1.0);
  EXPECT_DOUBLE_EQ(penalized[1], -0.25);
  EXPECT_DOUBLE_EQ(penalized[2], 0.5);
}

TEST(RowSamplerFault, ClassifiesRows) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(row_fault(std::vector<float>{-inf, 0.0f}), RowFault::none);
  EXPECT_EQ(row_fault(std::vector<float>{-inf, nan}), RowFault::non_finite);
  EXPECT_EQ(row_fault(std::vector<float>{-inf, inf}), RowFault::non_finite);
  EXPECT_EQ(row_fault(std::vector<float>{-inf, -inf}), RowFault::no_finite);
  RowSampler sampler;
  test::expect_error([&] { sampler.sample(std::vector<float>{-inf, -inf}, sampled(0.5)); }, "all 2 logits are -inf");
  test::expect_error([&] { sampler.sample(std::vector<float>{0.0f, nan}, sampled(0.5)); }, "logits[1] is NaN");
}

}  // namespace
}  // namespace adallm::backend
