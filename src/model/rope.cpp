// RoPE frequency tables (see rope.h). transformers builds them in fp32 from int64 aranges; the base
// powers here are taken in double and rounded once, which agrees to within an ulp.
#include "model/rope.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "core/error.h"

namespace adallm::model {
namespace {

// _compute_yarn_parameters: blend interpolated (÷factor) and extrapolated frequencies over the band of
// dimensions between the beta_fast and beta_slow rotation counts.
void apply_yarn(const io::RopeConfig& rope, int64_t head_dim, std::vector<float>& inv) {
  const double d = static_cast<double>(head_dim);
  const double ctx = static_cast<double>(rope.original_max_position_embeddings);
  auto correction_dim = [&](double rotations) {
    return d * std::log(ctx / (rotations * 2.0 * std::numbers::pi)) / (2.0 * std::log(rope.theta));
  };
  double low = std::max(0.0, std::floor(correction_dim(rope.beta_fast)));
  double high = std::min(d - 1.0, std::ceil(correction_dim(rope.beta_slow)));
  if (low == high) high += 0.001;  // avoids a division by zero in the ramp
  for (size_t i = 0; i < inv.size(); ++i) {
    const double ramp = std::clamp((static_cast<double>(i) - low) / (high - low), 0.0, 1.0);
    const double extrapolation_weight = 1.0 - ramp;
    const double extrapolated = inv[i];
    const double interpolated = inv[i] / rope.factor;
    inv[i] = static_cast<float>(interpolated * (1.0 - extrapolation_weight) + extrapolated * extrapolation_weight);
  }
}

// _compute_llama3_parameters: long wavelengths divided by factor, short ones kept, a smooth blend between.
void apply_llama3(const io::RopeConfig& rope, std::vector<float>& inv) {
  const double old_ctx = static_cast<double>(rope.original_max_position_embeddings);
  const double low_wavelen = old_ctx / rope.low_freq_factor;
  const double high_wavelen = old_ctx / rope.high_freq_factor;
  for (float& f : inv) {
    const double wavelen = 2.0 * std::numbers::pi / f;
    if (wavelen > low_wavelen) {
      f = static_cast<float>(f / rope.factor);
    } else if (wavelen >= high_wavelen) {
      const double s = (old_ctx / wavelen - rope.low_freq_factor) / (rope.high_freq_factor - rope.low_freq_factor);
      f = static_cast<float>((1.0 - s) * f / rope.factor + s * f);
    }
  }
}

}  // namespace

backend::RopeTable rope_table(const io::RopeConfig& rope, int64_t head_dim) {
  if (head_dim <= 0 || head_dim % 2 != 0) {
    throw Error("RoPE needs an even head_dim, got " + std::to_string(head_dim));
  }
  backend::RopeTable table;
  table.inv_freq.resize(static_cast<size_t>(head_dim / 2));
  for (int64_t i = 0; i < head_dim / 2; ++i) {
    // fp32 exponent as transformers computes it: arange(0, dim, 2).float() / dim.
    const float exponent = static_cast<float>(2 * i) / static_cast<float>(head_dim);
    table.inv_freq[static_cast<size_t>(i)] = static_cast<float>(1.0 / std::pow(rope.theta, double(exponent)));
  }
  if (rope.rope_type == "default") {
  } else if (rope.rope_type == "linear") {
    for (float& f : table.inv_freq) f = static_cast<float>(f / rope.factor);
  } else if (rope.rope_type == "llama3") {
    apply_llama3(rope, table.inv_freq);
  } else if (rope.rope_type == "yarn") {
    apply_yarn(rope, head_dim, table.inv_freq);
    // transformers' default (get_mscale): 0.1 ln(factor) + 1; the config parser fills it in already.
    const double default_factor = rope.factor <= 1.0 ? 1.0 : 0.1 * std::log(rope.factor) + 1.0;
    table.attention_factor = static_cast<float>(rope.attention_factor.value_or(default_factor));
  } else {
    throw Error("rope_type \"" + rope.rope_type + "\" is not supported");
  }
  return table;
}

}  // namespace adallm::model
