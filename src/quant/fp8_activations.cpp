// Per-token FP8 e4m3 activation round trip (see fp8_activations.h).
#include "quant/fp8_activations.h"

#include <cmath>

#include "core/float_codecs.h"

namespace adallm::quant {

void fp8_e4m3_round_trip_row(const float* x, int64_t n, float* out) {
  float amax = 0.0f;
  bool finite = true;
  for (int64_t i = 0; i < n; ++i) {
    const float a = std::fabs(x[i]);
    finite = finite && std::isfinite(a);
    amax = a > amax ? a : amax;
  }
  if (!finite || amax == 0.0f) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i];
    return;
  }
  const float scale = amax / kFp8E4m3Max;
  for (int64_t i = 0; i < n; ++i) out[i] = e4m3_to_f32(f32_to_e4m3_satfinite(x[i] / scale)) * scale;
}

}  // namespace adallm::quant
