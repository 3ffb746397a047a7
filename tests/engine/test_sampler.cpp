// Tests of the CPU sampler and SamplingParams::validate. Expectations are derived by hand in comments:
// logits chosen as logs of small ratios make every probability a simple fraction. Empirical checks draw
// 20000 times with a fixed seed and allow 0.01 (about 3 standard errors at p = 0.5).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "adallm/sampling_params.h"
#include "core/error.h"
#include "engine/sampler.h"

namespace adallm::engine {
namespace {

const float kLn2 = std::log(2.0f);
const float kLn4 = std::log(4.0f);
const float kNegInf = -std::numeric_limits<float>::infinity();
constexpr int kDraws = 20000;
constexpr double kTolerance = 0.01;

SamplingParams seeded(uint64_t seed = 42) {
  SamplingParams p;
  p.seed = seed;
  return p;
}

SamplingParams greedy_params() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

std::vector<double> frequencies(const SamplingParams& params, const std::vector<float>& logits,
                                const std::vector<int32_t>& prompt = {}, const std::vector<int32_t>& output = {},
                                int draws = kDraws) {
  Sampler sampler(params, 0);
  std::vector<double> counts(logits.size(), 0.0);
  for (int i = 0; i < draws; ++i) {
    const int32_t token = sampler.sample(logits, prompt, output);
    EXPECT_GE(token, 0);
    EXPECT_LT(token, static_cast<int32_t>(logits.size()));
    counts[static_cast<size_t>(token)] += 1.0;
  }
  for (double& c : counts) c /= draws;
  return counts;
}

void expect_frequencies(const std::vector<double>& found, const std::vector<double>& expected) {
  ASSERT_EQ(found.size(), expected.size());
  for (size_t i = 0; i < found.size(); ++i) {
    EXPECT_NEAR(found[i], expected[i], kTolerance) << "token " << i;
    if (expected[i] == 0.0) {
      EXPECT_EQ(found[i], 0.0) << "token " << i << " is outside the kept set";
    } else {
      EXPECT_GT(found[i], 0.0) << "token " << i << " is inside the kept set";
    }
  }
}

int32_t pick(const SamplingParams& params, const std::vector<float>& logits, const std::vector<int32_t>& prompt,
             const std::vector<int32_t>& output) {
  Sampler sampler(params, 0);
  return sampler.sample(logits, prompt, output);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no adallm::Error thrown";
  return "";
}

// ---- greedy ----

TEST(SamplerGreedy, PicksArgmax) {
  const std::vector<float> logits = {0.1f, 2.5f, -1.0f, 2.4f};
  EXPECT_EQ(Sampler::greedy(logits), 1);
  EXPECT_EQ(pick(greedy_params(), logits, {}, {}), 1);
}

TEST(SamplerGreedy, TiesGoToLowestIndex) {
  const std::vector<float> logits = {1.0f, 3.0f, 3.0f, 0.0f, 3.0f};
  EXPECT_EQ(Sampler::greedy(logits), 1);
  EXPECT_EQ(pick(greedy_params(), logits, {}, {}), 1);
  EXPECT_EQ(Sampler::greedy(std::vector<float>{-2.0f, -2.0f}), 0);
}

TEST(SamplerGreedy, SkipsNegativeInfinity) {
  EXPECT_EQ(Sampler::greedy(std::vector<float>{kNegInf, kNegInf, -50.0f, kNegInf}), 2);
}

TEST(SamplerGreedy, TemperatureBelowEpsilonIsGreedy) {
  SamplingParams p = seeded();
  p.temperature = 1e-6f;  // below vLLM's 1e-5: greedy, even though 0.999 is almost as likely at T = 1
  Sampler sampler(p, 0);
  const std::vector<float> logits = {0.999f, 1.0f};
  for (int i = 0; i < 200; ++i) EXPECT_EQ(sampler.sample(logits, {}, {}), 1);
}

TEST(SamplerGreedy, RejectsNonFiniteAndEmptyRows) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  std::string msg = error_of([&] { Sampler::greedy(std::vector<float>{0.0f, 1.0f, nan}); });
  EXPECT_NE(msg.find("logits[2]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NaN"), std::string::npos) << msg;
  msg = error_of([&] { Sampler::greedy(std::vector<float>{inf, 1.0f}); });
  EXPECT_NE(msg.find("logits[0] is +inf"), std::string::npos) << msg;
  msg = error_of([&] { Sampler::greedy(std::vector<float>{kNegInf, kNegInf}); });
  EXPECT_NE(msg.find("-inf"), std::string::npos) << msg;
  msg = error_of([&] { Sampler::greedy(std::vector<float>{}); });
  EXPECT_NE(msg.find("empty"), std::string::npos) << msg;
}

TEST(SamplerErrors, SampleRejectsNaNOnEveryPath) {
  const std::vector<float> logits = {0.0f, std::numeric_limits<float>::quiet_NaN(), 1.0f};
  SamplingParams penalized = greedy_params();
  penalized.repetition_penalty = 1.5f;
  for (const SamplingParams& p : {greedy_params(), penalized, seeded()}) {
    Sampler sampler(p, 0);
    const std::string msg = error_of([&] { sampler.sample(logits, {}, {}); });
    EXPECT_NE(msg.find("logits[1] is NaN"), std::string::npos) << msg;
  }
}

TEST(SamplerErrors, AllMaskedRowThrowsWhenSampling) {
  Sampler sampler(seeded(), 0);
  const std::string msg = error_of([&] { sampler.sample(std::vector<float>{kNegInf, kNegInf}, {}, {}); });
  EXPECT_NE(msg.find("all 2 logits are -inf"), std::string::npos) << msg;
}

TEST(SamplerErrors, TokenIdsOutsideVocabAreNamed) {
  Sampler sampler(seeded(), 0);
  const std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  std::string msg = error_of([&] { sampler.sample(logits, std::vector<int32_t>{0, 3}, {}); });
  EXPECT_NE(msg.find("prompt_tokens[1] = 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("vocab_size=3"), std::string::npos) << msg;
  msg = error_of([&] { sampler.sample(logits, {}, std::vector<int32_t>{2, -1}); });
  EXPECT_NE(msg.find("output_tokens[1] = -1"), std::string::npos) << msg;
}

// ---- penalties: exact effect, seen through the greedy choice flipping at hand-computed thresholds ----

TEST(SamplerPenalties, RepetitionDividesPositiveLogits) {
  // Token 0 (logit 2.0) is in the prompt; token 1 has 1.5. 2.0 / 1.2 = 1.667 > 1.5; 2.0 / 1.4 = 1.429 < 1.5.
  const std::vector<float> logits = {2.0f, 1.5f};
  SamplingParams p = greedy_params();
  p.repetition_penalty = 1.2f;
  EXPECT_EQ(pick(p, logits, {0}, {}), 0);
  p.repetition_penalty = 1.4f;
  EXPECT_EQ(pick(p, logits, {0}, {}), 1);
  EXPECT_EQ(pick(p, logits, {}, {0}), 1) << "output tokens are penalized too";
  EXPECT_EQ(pick(p, logits, {}, {}), 0) << "nothing to penalize";
}

TEST(SamplerPenalties, RepetitionMultipliesNonPositiveLogits) {
  // Token 0 (logit -1.0) repeated; token 1 has -1.1. -1.0 * 1.05 = -1.05 > -1.1; -1.0 * 1.2 = -1.2 < -1.1.
  const std::vector<float> logits = {-1.0f, -1.1f};
  SamplingParams p = greedy_params();
  p.repetition_penalty = 1.05f;
  EXPECT_EQ(pick(p, logits, {}, {0}), 0);
  p.repetition_penalty = 1.2f;
  EXPECT_EQ(pick(p, logits, {}, {0}), 1);
  // A penalty below 1 rewards repetition: -1.1 * 0.8 = -0.88 > -1.0.
  p.repetition_penalty = 0.8f;
  EXPECT_EQ(pick(p, logits, {1}, {}), 1);
}

TEST(SamplerPenalties, RepetitionAppliesOncePerDistinctToken) {
  // 2.0 / 1.5 = 1.333 > 1.0 keeps token 0; applied twice it would be 0.889 < 1.0.
  const std::vector<float> logits = {2.0f, 1.0f};
  SamplingParams p = greedy_params();
  p.repetition_penalty = 1.5f;
  EXPECT_EQ(pick(p, logits, {0, 0, 0}, {0, 0}), 0);
}

TEST(SamplerPenalties, FrequencyScalesWithOutputCount) {
  // Token 0 (3.0) occurs twice in the output; token 1 has 2.0. 3 - 0.4 * 2 = 2.2; 3 - 0.6 * 2 = 1.8.
  const std::vector<float> logits = {3.0f, 2.0f, 0.0f};
  SamplingParams p = greedy_params();
  p.frequency_penalty = 0.4f;
  EXPECT_EQ(pick(p, logits, {}, {0, 2, 0}), 0);
  p.frequency_penalty = 0.6f;
  EXPECT_EQ(pick(p, logits, {}, {0, 2, 0}), 1);
  EXPECT_EQ(pick(p, logits, {}, {0, 2}), 0) << "one occurrence: 3 - 0.6 = 2.4";
}

TEST(SamplerPenalties, PresenceIgnoresCount) {
  // Token 0 (3.0) vs token 1 (2.0): 3 - 0.9 = 2.1 keeps token 0 and 3 - 1.1 = 1.9 flips, whatever the count.
  const std::vector<float> logits = {3.0f, 2.0f};
  SamplingParams p = greedy_params();
  for (const std::vector<int32_t>& output : {std::vector<int32_t>{0}, std::vector<int32_t>{0, 0, 0}}) {
    p.presence_penalty = 0.9f;
    EXPECT_EQ(pick(p, logits, {}, output), 0);
    p.presence_penalty = 1.1f;
    EXPECT_EQ(pick(p, logits, {}, output), 1);
  }
  // Negative presence encourages: 1.0 + 1.5 = 2.5 > 2.0.
  p.presence_penalty = -1.5f;
  EXPECT_EQ(pick(p, std::vector<float>{1.0f, 2.0f}, {}, {0}), 0);
}

TEST(SamplerPenalties, FrequencyAndPresenceAdd) {
  // Token 0 (3.0) twice in the output vs token 1 (2.0): 3 - (0.3 * 2 + 0.5) = 1.9 flips; with presence 0.3, 2.1.
  const std::vector<float> logits = {3.0f, 2.0f};
  SamplingParams p = greedy_params();
  p.frequency_penalty = 0.3f;
  p.presence_penalty = 0.5f;
  EXPECT_EQ(pick(p, logits, {}, {0, 0}), 1);
  p.presence_penalty = 0.3f;
  EXPECT_EQ(pick(p, logits, {}, {0, 0}), 0);
}

TEST(SamplerPenalties, FrequencyAndPresenceIgnorePrompt) {
  const std::vector<float> logits = {1.0f, 0.5f};
  SamplingParams p = greedy_params();
  p.frequency_penalty = 2.0f;
  p.presence_penalty = 2.0f;
  EXPECT_EQ(pick(p, logits, {0, 0, 0, 0}, {}), 0);
  EXPECT_EQ(pick(p, logits, {0, 0, 0, 0}, {0}), 1) << "1 - (2 + 2) = -3 < 0.5";
}

TEST(SamplerPenalties, RepetitionBeforeFrequency) {
  // Token 0 (3.0) once in the output, token 1 has 1.6. vLLM order: 3 / 1.5 - 0.5 = 1.5 < 1.6, token 1.
  // The other order would give (3 - 0.5) / 1.5 = 1.667 > 1.6, token 0.
  SamplingParams p = greedy_params();
  p.repetition_penalty = 1.5f;
  p.frequency_penalty = 0.5f;
  EXPECT_EQ(pick(p, std::vector<float>{3.0f, 1.6f}, {}, {0}), 1);
}

// ---- penalties: exact effect on the sampled distribution ----

TEST(SamplerPenalties, RepetitionDistribution) {
  // logits ln4, ln2, 0 with token 0 in the prompt and penalty 2: ln4 / 2 = ln2, so weights 2 : 2 : 1.
  SamplingParams p = seeded(1);
  p.repetition_penalty = 2.0f;
  expect_frequencies(frequencies(p, {kLn4, kLn2, 0.0f}, {0}, {}), {0.4, 0.4, 0.2});
  // A negative logit is multiplied: -ln2 * 2 = -ln4, so weights 1 : 1/4 -> 0.8, 0.2.
  expect_frequencies(frequencies(p, {0.0f, -kLn2}, {}, {1}), {0.8, 0.2});
}

TEST(SamplerPenalties, FrequencyAndPresenceDistribution) {
  // Three equal logits; token 0 twice in the output with frequency ln2 / 2: weight 1/2 -> 0.2, 0.4, 0.4.
  SamplingParams p = seeded(2);
  p.frequency_penalty = kLn2 / 2.0f;
  expect_frequencies(frequencies(p, {0.0f, 0.0f, 0.0f}, {}, {0, 0}), {0.2, 0.4, 0.4});
  // Presence ln4 on token 1 (three times): weight 1/4 -> 1 : 0.25 : 1 over 2.25.
  SamplingParams q = seeded(3);
  q.presence_penalty = kLn4;
  expect_frequencies(frequencies(q, {0.0f, 0.0f, 0.0f}, {}, {1, 1, 1}), {1 / 2.25, 0.25 / 2.25, 1 / 2.25});
}

// ---- temperature ----

TEST(SamplerTemperature, ScalesLogits) {
  // logits ln4, ln2, 0, 0: weights 4 : 2 : 1 : 1 at T = 1; squared (16 : 4 : 1 : 1) at T = 0.5;
  // square roots (2 : sqrt2 : 1 : 1) at T = 2.
  const std::vector<float> logits = {kLn4, kLn2, 0.0f, 0.0f};
  SamplingParams p = seeded(4);
  expect_frequencies(frequencies(p, logits), {0.5, 0.25, 0.125, 0.125});
  p.temperature = 0.5f;
  expect_frequencies(frequencies(p, logits), {16.0 / 22, 4.0 / 22, 1.0 / 22, 1.0 / 22});
  p.temperature = 2.0f;
  const double s = 4.0 + std::sqrt(2.0);
  expect_frequencies(frequencies(p, logits), {2 / s, std::sqrt(2.0) / s, 1 / s, 1 / s});
}

TEST(SamplerTemperature, MaskedTokensAreNeverDrawn) {
  expect_frequencies(frequencies(seeded(5), {0.0f, kNegInf, 0.0f}), {0.5, 0.0, 0.5});
}

// ---- top_k ----

TEST(SamplerTopK, OneEqualsGreedy) {
  std::mt19937 gen(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::vector<float> logits(1000);
  for (float& v : logits) v = normal(gen);
  SamplingParams p = seeded(6);
  p.top_k = 1;
  p.temperature = 5.0f;  // flat enough that without top_k the argmax would rarely be drawn
  Sampler sampler(p, 0);
  const int32_t argmax = Sampler::greedy(logits);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(sampler.sample(logits, {}, {}), argmax);
}

TEST(SamplerTopK, KeepsKLargestRenormalized) {
  // ln4, ln2, 0, 0 with k = 2: weights 4 : 2 -> 2/3, 1/3.
  SamplingParams p = seeded(7);
  p.top_k = 2;
  expect_frequencies(frequencies(p, {0.0f, kLn2, kLn4, 0.0f}), {0.0, 1.0 / 3, 2.0 / 3, 0.0});
}

TEST(SamplerTopK, KeepsEveryTokenTiedAtTheBoundary) {
  // k = 3 but tokens 2 and 3 tie for third place: both stay (as in vLLM), so nothing is cut.
  SamplingParams p = seeded(8);
  p.top_k = 3;
  expect_frequencies(frequencies(p, {kLn4, kLn2, 0.0f, 0.0f, -30.0f}), {0.5, 0.25, 0.125, 0.125, 0.0});
}

TEST(SamplerTopK, DisabledOrLargerThanVocabKeepsAll) {
  for (int32_t k : {-1, 0, 4, 100}) {
    SamplingParams p = seeded(9);
    p.top_k = k;
    expect_frequencies(frequencies(p, {kLn4, kLn2, 0.0f, 0.0f}), {0.5, 0.25, 0.125, 0.125});
  }
}

// ---- top_p ----

TEST(SamplerTopP, KeepsSmallestPrefixReachingP) {
  // Probabilities 0.5, 0.25, 0.125, 0.125. p = 0.7: 0.5 < 0.7 <= 0.75, keep {0, 1} -> 2/3, 1/3.
  const std::vector<float> logits = {kLn4, kLn2, 0.0f, 0.0f};
  SamplingParams p = seeded(10);
  p.top_p = 0.7f;
  expect_frequencies(frequencies(p, logits), {2.0 / 3, 1.0 / 3, 0.0, 0.0});
  // p = 0.76: 0.75 < 0.76 <= 0.875 needs a third token; of the tied pair the lower index is kept.
  p.top_p = 0.76f;
  expect_frequencies(frequencies(p, logits), {0.5 / 0.875, 0.25 / 0.875, 0.125 / 0.875, 0.0});
  // p = 0.4: the top token alone already reaches it.
  p.top_p = 0.4f;
  expect_frequencies(frequencies(p, logits), {1.0, 0.0, 0.0, 0.0});
}

TEST(SamplerTopP, LargeTiedVocabularyKeepsExactlyTheLowestHalf) {
  // 1200 equal logits (weight exactly 1 each) and p = 0.5: exactly 600 tokens reach 0.5, the lowest ids.
  // 600 is past the sorter's first chunks (256, 512), so the chunked partial sort is exercised.
  std::vector<float> logits(1200, 0.0f);
  SamplingParams p = seeded(11);
  p.top_p = 0.5f;
  Sampler sampler(p, 0);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(sampler.sample(logits, {}, {}))];
  for (size_t t = 0; t < 600; ++t) EXPECT_GT(counts[t], 0) << "token " << t << " is inside the kept set";
  for (size_t t = 600; t < logits.size(); ++t) EXPECT_EQ(counts[t], 0) << "token " << t << " is outside";
}

TEST(SamplerTopP, MatchesAFullSortOnADistinctVocabulary) {
  // Reference kept set from a plain double-precision sort of the softmax; 5000 distinct weights spread
  // over many fp32 exponents exercise the bucketed selection with a boundary bucket in the middle.
  std::mt19937 gen(21);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> logits(5000);
  for (float& v : logits) v = normal(gen);
  std::vector<std::pair<double, int32_t>> probs;
  double total = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) total += std::exp(static_cast<double>(logits[i]));
  for (size_t i = 0; i < logits.size(); ++i) {
    probs.emplace_back(std::exp(static_cast<double>(logits[i])) / total, static_cast<int32_t>(i));
  }
  std::sort(probs.begin(), probs.end(), std::greater<>());
  const float top_p = 0.6f;
  std::vector<bool> kept(logits.size(), false);
  double cumulative = 0.0;
  size_t kept_count = 0;
  for (const auto& [prob, token] : probs) {
    kept[static_cast<size_t>(token)] = true;
    ++kept_count;
    cumulative += prob;
    if (cumulative >= top_p) {
      // Far enough from top_p on both sides that fp32 weights cannot move the cutoff.
      ASSERT_LT(cumulative - prob, top_p - 1e-6);
      ASSERT_GT(cumulative, top_p + 1e-6);
      break;
    }
  }
  ASSERT_GT(kept_count, 1000u) << "the set should span several radix buckets";
  SamplingParams p = seeded(22);
  p.top_p = top_p;
  Sampler sampler(p, 0);
  std::vector<int> counts(logits.size(), 0);
  for (int i = 0; i < kDraws; ++i) ++counts[static_cast<size_t>(sampler.sample(logits, {}, {}))];
  for (size_t t = 0; t < logits.size(); ++t) {
    if (!kept[t]) {
      EXPECT_EQ(counts[t], 0) << "token " << t << " is outside the top_p set";
    }
  }
  // The most likely token's renormalized probability is its share of the kept mass.
  const auto [p0, t0] = probs.front();
  EXPECT_NEAR(counts[static_cast<size_t>(t0)] / double(kDraws), p0 / cumulative, kTolerance);
}

TEST(SamplerTopP, AppliesAfterTopK) {
  // Weights 4 : 2 : 1 : 0.5. top_k = 3 leaves 4/7, 2/7, 1/7; p = 0.83 stops at 6/7 = 0.857, keeping {0, 1}.
  // Had top_p seen the untruncated 4/7.5, 6/7.5 = 0.8 < 0.83 would have kept token 2 as well.
  SamplingParams p = seeded(12);
  p.top_k = 3;
  p.top_p = 0.83f;
  expect_frequencies(frequencies(p, {kLn4, kLn2, 0.0f, -kLn2}), {2.0 / 3, 1.0 / 3, 0.0, 0.0});
}

// ---- min_p ----

TEST(SamplerMinP, DropsTokensBelowFractionOfMax) {
  // Probabilities 0.5, 0.25, 0.125, 0.125. min_p = 0.3: threshold 0.15 keeps {0, 1}; min_p = 0.6: {0}.
  const std::vector<float> logits = {kLn4, kLn2, 0.0f, 0.0f};
  SamplingParams p = seeded(13);
  p.min_p = 0.3f;
  expect_frequencies(frequencies(p, logits), {2.0 / 3, 1.0 / 3, 0.0, 0.0});
  p.min_p = 0.6f;
  expect_frequencies(frequencies(p, logits), {1.0, 0.0, 0.0, 0.0});
  // min_p = 0.2 (threshold 0.1) keeps everything at T = 1 ...
  p.min_p = 0.2f;
  expect_frequencies(frequencies(p, logits), {0.5, 0.25, 0.125, 0.125});
}

TEST(SamplerMinP, SeesTemperatureScaledProbabilities) {
  // ... but at T = 0.5 the weights are 16 : 4 : 1 : 1, so relative to the max 1, 0.25, 0.0625, 0.0625:
  // min_p = 0.2 keeps {0, 1} -> 0.8, 0.2.
  SamplingParams p = seeded(14);
  p.temperature = 0.5f;
  p.min_p = 0.2f;
  expect_frequencies(frequencies(p, {kLn4, kLn2, 0.0f, 0.0f}), {0.8, 0.2, 0.0, 0.0});
}

// ---- seeds ----

std::vector<int32_t> run(const SamplingParams& p, uint64_t default_seed, int n = 300) {
  std::vector<float> logits(50, 0.0f);
  Sampler sampler(p, default_seed);
  std::vector<int32_t> tokens;
  for (int i = 0; i < n; ++i) tokens.push_back(sampler.sample(logits, {}, {}));
  return tokens;
}

TEST(SamplerSeed, SameSeedSameSequenceDifferentSeedDifferent) {
  EXPECT_EQ(run(seeded(100), 0), run(seeded(100), 0));
  EXPECT_NE(run(seeded(100), 0), run(seeded(101), 0));
}

TEST(SamplerSeed, RequestSeedOverridesDefaultSeed) {
  EXPECT_EQ(run(seeded(5), 1), run(seeded(5), 2));
  SamplingParams unseeded;
  EXPECT_EQ(run(unseeded, 5), run(seeded(5), 999));
  EXPECT_NE(run(unseeded, 5), run(unseeded, 6));
}

TEST(SamplerSeed, UniformIsTheTop53BitsOfMt19937_64) {
  // Two equal logits: token 0 iff u < 0.5, with u = (rng() >> 11) * 2^-53 from a reference mt19937_64.
  std::mt19937_64 reference(1234);
  Sampler sampler(seeded(1234), 0);
  const std::vector<float> logits = {0.0f, 0.0f};
  for (int i = 0; i < 256; ++i) {
    const double u = static_cast<double>(reference() >> 11) * 0x1.0p-53;
    EXPECT_EQ(sampler.sample(logits, {}, {}), u < 0.5 ? 0 : 1) << "draw " << i;
  }
}

TEST(SamplerSeed, RowsCarryTheKnobsAndDrawUniformsOnlyWhenSampling) {
  // A sampled row takes the next 53-bit uniform of the stream; a greedy one (penalized or not) takes
  // none, so the stream of a seeded request does not depend on how many greedy steps it had.
  SamplingParams p = seeded(99);
  p.top_k = 7;
  p.top_p = 0.5f;
  p.min_p = 0.25f;
  p.repetition_penalty = 1.5f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = -0.5f;
  Sampler sampler(p, 0);
  std::mt19937_64 reference(99);
  const std::vector<int32_t> prompt = {1, 2}, output = {3};
  for (int i = 0; i < 8; ++i) {
    const backend::SamplingRow row = sampler.row(prompt, output);
    EXPECT_EQ(row.uniform, static_cast<double>(reference() >> 11) * 0x1.0p-53) << "draw " << i;
    EXPECT_EQ(row.prompt_tokens.data(), prompt.data());
    EXPECT_EQ(row.output_tokens.data(), output.data());
  }
  const backend::SamplingRow row = sampler.row(prompt, output);
  EXPECT_EQ(row.temperature, 1.0f);
  EXPECT_EQ(row.top_k, 7);
  EXPECT_EQ(row.top_p, 0.5f);
  EXPECT_EQ(row.min_p, 0.25f);
  EXPECT_EQ(row.repetition_penalty, 1.5f);
  EXPECT_EQ(row.presence_penalty, 0.5f);
  EXPECT_EQ(row.frequency_penalty, -0.5f);

  SamplingParams g = greedy_params();
  g.seed = 99;
  g.repetition_penalty = 1.5f;
  Sampler greedy(g, 0);
  EXPECT_FALSE(greedy.plain_greedy());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(greedy.row(prompt, output).uniform, 0.0);
  EXPECT_TRUE(greedy.row(prompt, output).greedy());
}

// ---- a realistic vocabulary ----

TEST(SamplerLargeVocab, TopKOnQwenSizedRowDrawsOnlyFromTopK) {
  constexpr size_t kVocab = 151936;
  std::mt19937 gen(3);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  std::vector<float> logits(kVocab);
  for (float& v : logits) v = normal(gen);
  std::vector<float> sorted = logits;
  std::sort(sorted.begin(), sorted.end(), std::greater<float>());
  const float kth = sorted[49];
  SamplingParams p = seeded(15);
  p.top_k = 50;
  p.top_p = 0.95f;
  p.repetition_penalty = 1.1f;
  Sampler sampler(p, 0);
  std::vector<int32_t> prompt = {1, 2, 3};
  for (int i = 0; i < 200; ++i) {
    const int32_t token = sampler.sample(logits, prompt, {});
    // Penalized prompt tokens only move down, so every draw stays within the unpenalized top 50.
    EXPECT_GE(logits[static_cast<size_t>(token)], kth) << "draw " << i;
  }
}

// ---- validate ----

struct BadParam {
  std::function<void(SamplingParams&)> set;
  std::string field;
};

TEST(SamplingParamsValidate, NamesTheFieldAndRange) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<BadParam> cases = {
      {[](SamplingParams& p) { p.temperature = -0.1f; }, "temperature: expected a finite value >= 0"},
      {[&](SamplingParams& p) { p.temperature = nan; }, "temperature"},
      {[&](SamplingParams& p) { p.temperature = inf; }, "temperature"},
      {[](SamplingParams& p) { p.top_k = -2; }, "top_k: expected -1 or 0 (disabled) or a positive integer, got -2"},
      {[](SamplingParams& p) { p.top_p = 0.0f; }, "top_p: expected a value in (0, 1], got 0"},
      {[](SamplingParams& p) { p.top_p = 1.5f; }, "top_p: expected a value in (0, 1], got 1.5"},
      {[&](SamplingParams& p) { p.top_p = nan; }, "top_p"},
      {[](SamplingParams& p) { p.min_p = -0.5f; }, "min_p: expected a value in [0, 1], got -0.5"},
      {[](SamplingParams& p) { p.min_p = 1.5f; }, "min_p: expected a value in [0, 1]"},
      {[](SamplingParams& p) { p.repetition_penalty = 0.0f; }, "repetition_penalty: expected a finite value > 0"},
      {[](SamplingParams& p) { p.repetition_penalty = -1.0f; }, "repetition_penalty"},
      {[&](SamplingParams& p) { p.repetition_penalty = nan; }, "repetition_penalty"},
      {[](SamplingParams& p) { p.presence_penalty = 2.5f; }, "presence_penalty: expected a value in [-2, 2], got 2.5"},
      {[](SamplingParams& p) { p.presence_penalty = -2.5f; }, "presence_penalty"},
      {[](SamplingParams& p) { p.frequency_penalty = -3.0f; }, "frequency_penalty: expected a value in [-2, 2]"},
      {[&](SamplingParams& p) { p.frequency_penalty = nan; }, "frequency_penalty"},
  };
  for (const BadParam& c : cases) {
    SamplingParams p;
    c.set(p);
    const std::string msg = error_of([&] { p.validate(); });
    EXPECT_NE(msg.find(c.field), std::string::npos) << "message: " << msg << "\nexpected: " << c.field;
    const std::string ctor = error_of([&] { Sampler(p, 0); });
    EXPECT_EQ(ctor, msg) << "the constructor validates too";
  }
}

TEST(SamplingParamsValidate, AcceptsRangeEdges) {
  SamplingParams p;
  EXPECT_NO_THROW(p.validate()) << "defaults";
  p.temperature = 0.0f;
  p.top_k = -1;
  p.top_p = 1.0f;
  p.min_p = 1.0f;
  p.repetition_penalty = 0.01f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  EXPECT_NO_THROW(p.validate());
  p.top_p = 1e-6f;
  p.min_p = 0.0f;
  p.presence_penalty = 2.0f;
  p.frequency_penalty = -2.0f;
  p.temperature = 100.0f;
  EXPECT_NO_THROW(p.validate());
}

TEST(SamplingParamsValidate, MinPOneKeepsOnlyTheTopTokens) {
  SamplingParams p = seeded(16);
  p.min_p = 1.0f;
  expect_frequencies(frequencies(p, {kLn2, kLn4, kLn4, 0.0f}), {0.0, 0.5, 0.5, 0.0});
}

}  // namespace
}  // namespace adallm::engine
