// model::rope_table against an independent double-precision transcription of transformers'
// modeling_rope_utils (_compute_default_rope_parameters, _compute_linear_scaling_rope_parameters,
// _compute_llama3_parameters, _compute_yarn_parameters) for published configurations (Llama-3.1, Qwen3
// YaRN, Gemma3 linear). Parsing rope_scaling from config.json is tests/io's; applying cos/sin is the backend's.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"
#include "model/rope.h"
#include "test_util.h"

namespace adallm::model {
namespace {

constexpr double kPi = std::numbers::pi;

// transformers: base ** (torch.arange(0, dim, 2, dtype=int64).float() / dim). The exponent is an fp32
// division, so it is rounded to fp32 here too; everything after it stays in double.
std::vector<double> default_inv_freq(double theta, int64_t head_dim) {
  std::vector<double> inv;
  for (int64_t i = 0; i < head_dim; i += 2) {
    const float exponent = static_cast<float>(i) / static_cast<float>(head_dim);
    inv.push_back(1.0 / std::pow(theta, static_cast<double>(exponent)));
  }
  return inv;
}

// fp32 results against a double reference: rounding once to fp32 costs at most 2^-24 relative; 1e-6 leaves
// room for the implementation's own order of operations but not for a wrong formula.
void expect_close(const std::vector<float>& got, const std::vector<double>& want, double rel_tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_LE(std::abs(double(got[i]) - want[i]), rel_tol * std::abs(want[i]))
        << what << " inv_freq[" << i << "]: got " << got[i] << ", want " << want[i];
  }
}

io::RopeConfig make_default(double theta) {
  io::RopeConfig rope;
  rope.rope_type = "default";
  rope.theta = theta;
  return rope;
}

TEST(RopeTable, DefaultMatchesTransformers) {
  for (double theta : {10000.0, 1e6}) {
    for (int64_t head_dim : {128, 16, 96}) {
      const auto what = "theta " + std::to_string(theta) + " head_dim " + std::to_string(head_dim);
      const backend::RopeTable table = rope_table(make_default(theta), head_dim);
      expect_close(table.inv_freq, default_inv_freq(theta, head_dim), 1e-6, what);
      EXPECT_EQ(table.attention_factor, 1.0f) << what;
    }
  }
}

// Hand-checkable anchors, independent of any formula transcription: inv_freq[0] is theta^0 = 1, and for
// head_dim 16 entry 4 is theta^(-8/16) = 1/sqrt(theta).
TEST(RopeTable, DefaultAnchors) {
  const backend::RopeTable t = rope_table(make_default(10000.0), 16);
  ASSERT_EQ(t.inv_freq.size(), 8u);
  EXPECT_EQ(t.inv_freq[0], 1.0f);
  EXPECT_FLOAT_EQ(t.inv_freq[4], 0.01f);
  EXPECT_FLOAT_EQ(t.inv_freq[1], static_cast<float>(std::pow(10000.0, -0.125)));
  for (size_t i = 1; i < t.inv_freq.size(); ++i) EXPECT_LT(t.inv_freq[i], t.inv_freq[i - 1]);
}

TEST(RopeTable, LinearDividesEveryFrequency) {
  // Gemma3 4B/12B/27B full-attention layers: theta 1e6, linear factor 8.
  io::RopeConfig rope = make_default(1e6);
  rope.rope_type = "linear";
  rope.factor = 8.0;
  for (int64_t head_dim : {128, 256, 16}) {
    std::vector<double> want = default_inv_freq(1e6, head_dim);
    for (double& f : want) f /= 8.0;
    const backend::RopeTable table = rope_table(rope, head_dim);
    expect_close(table.inv_freq, want, 1e-6, "linear head_dim " + std::to_string(head_dim));
    EXPECT_EQ(table.attention_factor, 1.0f);
    // Dividing by a power of two is exact: every entry is the default one over 8, bit for bit.
    const backend::RopeTable plain = rope_table(make_default(1e6), head_dim);
    for (size_t i = 0; i < plain.inv_freq.size(); ++i) EXPECT_EQ(table.inv_freq[i], plain.inv_freq[i] / 8.0f);
  }
}

// _compute_llama3_parameters in double.
std::vector<double> llama3_reference(double theta, int64_t head_dim, double factor, double low_ff, double high_ff,
                                     double old_ctx) {
  std::vector<double> inv = default_inv_freq(theta, head_dim);
  const double low_wavelen = old_ctx / low_ff;
  const double high_wavelen = old_ctx / high_ff;
  for (double& f : inv) {
    const double wavelen = 2.0 * kPi / f;
    if (wavelen < high_wavelen) continue;
    if (wavelen > low_wavelen) {
      f = f / factor;
    } else {
      const double smooth = (old_ctx / wavelen - low_ff) / (high_ff - low_ff);
      f = (1.0 - smooth) * f / factor + smooth * f;
    }
  }
  return inv;
}

TEST(RopeTable, Llama3MatchesTransformersInAllThreeRegimes) {
  // Llama-3.1-8B: rope_theta 500000, llama3 factor 8, low_freq_factor 1, high_freq_factor 4, original 8192.
  io::RopeConfig rope;
  rope.rope_type = "llama3";
  rope.theta = 500000.0;
  rope.factor = 8.0;
  rope.low_freq_factor = 1.0;
  rope.high_freq_factor = 4.0;
  rope.original_max_position_embeddings = 8192;
  const int64_t head_dim = 128;
  const backend::RopeTable table = rope_table(rope, head_dim);
  const backend::RopeTable plain = rope_table(make_default(500000.0), head_dim);
  const std::vector<double> base = default_inv_freq(500000.0, head_dim);
  const std::vector<double> want = llama3_reference(500000.0, head_dim, 8.0, 1.0, 4.0, 8192.0);
  expect_close(table.inv_freq, want, 1e-6, "llama3");
  EXPECT_EQ(table.attention_factor, 1.0f);

  int high = 0, low = 0, middle = 0;
  for (size_t i = 0; i < base.size(); ++i) {
    const double wavelen = 2.0 * kPi / base[i];
    if (wavelen < 2048.0) {
      ++high;  // short wavelengths: untouched, bit for bit the default table
      EXPECT_EQ(table.inv_freq[i], plain.inv_freq[i]) << "high-frequency dim " << i;
    } else if (wavelen > 8192.0) {
      ++low;  // long wavelengths: divided by the factor
      EXPECT_LE(std::abs(double(table.inv_freq[i]) - base[i] / 8.0), 1e-6 * base[i] / 8.0) << "low-frequency dim " << i;
    } else {
      ++middle;  // blended: strictly between the two
      EXPECT_LT(table.inv_freq[i], plain.inv_freq[i]) << "middle dim " << i;
      EXPECT_GT(double(table.inv_freq[i]), base[i] / 8.0) << "middle dim " << i;
    }
  }
  // theta 500000, d 128: wavelen = 2 pi 500000^(i/64) passes 2048 at i = 28.2 and 8192 at i = 35.0.
  EXPECT_EQ(high, 29);
  EXPECT_EQ(middle, 6);
  EXPECT_EQ(low, 29);
}

// _compute_yarn_parameters in double (correction range from original_max_position_embeddings, truncated).
std::vector<double> yarn_reference(double theta, int64_t head_dim, double factor, double original, double beta_fast,
                                   double beta_slow, double* low_out = nullptr, double* high_out = nullptr) {
  const double d = static_cast<double>(head_dim);
  auto correction_dim = [&](double rotations) {
    return d * std::log(original / (rotations * 2.0 * kPi)) / (2.0 * std::log(theta));
  };
  double low = std::max(std::floor(correction_dim(beta_fast)), 0.0);
  double high = std::min(std::ceil(correction_dim(beta_slow)), d - 1.0);
  if (low_out) *low_out = low;
  if (high_out) *high_out = high;
  if (low == high) high += 0.001;
  std::vector<double> inv = default_inv_freq(theta, head_dim);
  for (size_t i = 0; i < inv.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation_factor = 1.0 - ramp;
    const double extrapolation = inv[i];
    const double interpolation = inv[i] / factor;
    inv[i] = interpolation * (1.0 - extrapolation_factor) + extrapolation * extrapolation_factor;
  }
  return inv;
}

io::RopeConfig qwen3_yarn() {
  // Qwen3's documented long-context setting: rope_theta 1e6, yarn factor 4, original 32768.
  io::RopeConfig rope;
  rope.rope_type = "yarn";
  rope.theta = 1e6;
  rope.factor = 4.0;
  rope.original_max_position_embeddings = 32768;
  rope.beta_fast = 32.0;
  rope.beta_slow = 1.0;
  return rope;
}

TEST(RopeTable, YarnMatchesTransformers) {
  io::RopeConfig rope = qwen3_yarn();
  rope.attention_factor = 0.1 * std::log(4.0) + 1.0;
  const int64_t head_dim = 128;
  double low = 0, high = 0;
  const std::vector<double> want = yarn_reference(1e6, head_dim, 4.0, 32768.0, 32.0, 1.0, &low, &high);
  // The band for these numbers, worked by hand: 128 ln(32768 / 64 pi) / (2 ln 1e6) = 23.6 -> 23 and
  // 128 ln(32768 / 2 pi) / (2 ln 1e6) = 39.6 -> 40.
  EXPECT_EQ(low, 23.0);
  EXPECT_EQ(high, 40.0);
  const backend::RopeTable table = rope_table(rope, head_dim);
  expect_close(table.inv_freq, want, 1e-6, "yarn");
  EXPECT_FLOAT_EQ(table.attention_factor, static_cast<float>(0.1 * std::log(4.0) + 1.0));

  const backend::RopeTable plain = rope_table(make_default(1e6), head_dim);
  for (size_t i = 0; i <= 23; ++i) EXPECT_EQ(table.inv_freq[i], plain.inv_freq[i]) << "extrapolated dim " << i;
  for (size_t i = 40; i < 64; ++i) EXPECT_EQ(table.inv_freq[i], plain.inv_freq[i] / 4.0f) << "interpolated dim " << i;
  for (size_t i = 24; i < 40; ++i) {
    EXPECT_LT(table.inv_freq[i], plain.inv_freq[i]) << "blended dim " << i;
    EXPECT_GT(table.inv_freq[i], plain.inv_freq[i] / 4.0f) << "blended dim " << i;
  }
}

TEST(RopeTable, YarnOtherShapesMatchTransformers) {
  // A small head_dim where the band collapses at the top (high clamped to dim - 1), and non-default betas.
  io::RopeConfig rope = qwen3_yarn();
  rope.attention_factor = 1.25;
  for (int64_t head_dim : {16, 64}) {
    for (auto [beta_fast, beta_slow] : {std::pair{32.0, 1.0}, std::pair{16.0, 2.0}}) {
      rope.beta_fast = beta_fast;
      rope.beta_slow = beta_slow;
      const auto what = "yarn head_dim " + std::to_string(head_dim) + " beta " + std::to_string(beta_fast) + "/" +
                        std::to_string(beta_slow);
      expect_close(rope_table(rope, head_dim).inv_freq,
                   yarn_reference(1e6, head_dim, 4.0, 32768.0, beta_fast, beta_slow), 1e-6, what);
      EXPECT_EQ(rope_table(rope, head_dim).attention_factor, 1.25f) << what;
    }
  }
}

// io::RopeConfig documents attention_factor as "yarn: default 0.1 * ln(factor) + 1 when unset", which is
// transformers' default. The config parser always fills it in, so this covers a RopeConfig built in code.
TEST(RopeTable, YarnUnsetAttentionFactorUsesTransformersDefault) {
  const io::RopeConfig rope = qwen3_yarn();
  ASSERT_FALSE(rope.attention_factor.has_value());
  EXPECT_FLOAT_EQ(rope_table(rope, 128).attention_factor, static_cast<float>(0.1 * std::log(4.0) + 1.0));
}


TEST(RopeTable, Errors) {
  test::expect_error([] { rope_table(make_default(10000.0), 15); }, "15");
  test::expect_error([] { rope_table(make_default(10000.0), 0); }, "head_dim");
  test::expect_error([] { rope_table(make_default(10000.0), -4); }, "head_dim");
  io::RopeConfig rope = make_default(10000.0);
  rope.rope_type = "dynamic";
  test::expect_error([&] { rope_table(rope, 128); }, "dynamic");
  rope.rope_type = "";
  EXPECT_THROW(rope_table(rope, 128), Error);
}

}  // namespace
}  // namespace adallm::model
