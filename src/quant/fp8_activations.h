// Activations quantized per token to FP8 e4m3, as the W4A8 linear kernels (FP8 tensor cores) will feed
// them: the CPU backend applies this round trip to emulate W4A8 and measure its accuracy against W4A16,
// and it is the oracle those kernels are tested against. The kernels must quantize exactly this way.
#pragma once

#include <cstdint>

namespace adallm::quant {

// The largest finite e4m3 value: a token's largest magnitude maps onto it.
inline constexpr float kFp8E4m3Max = 448.0f;

// out[i] = e4m3(x[i] / s) · s with s = max|x| / 448, e4m3 rounding to nearest even (saturating). An
// all-zero row, or one holding a non-finite value (the forward pass is already broken), passes through
// unchanged. `out` may be `x`.
void fp8_e4m3_round_trip_row(const float* x, int64_t n, float* out);

}  // namespace adallm::quant
