// Exact scalar codecs between float32 and the narrow formats a checkpoint holds: bf16, fp16, fp8 e4m3fn
// and fp4 e2m1. Encoders round to nearest even. Where two reference behaviours differ (fp8 overflow,
// e2m1 ties), the function name says which one it reproduces; the tests pin each bit pattern.
#pragma once

#include <bit>
#include <cstdint>

namespace adallm {

inline float bits_to_f32(uint32_t bits) { return std::bit_cast<float>(bits); }
inline uint32_t f32_to_bits(float value) { return std::bit_cast<uint32_t>(value); }

// ---- bf16 ----
inline float bf16_to_f32(uint16_t h) { return bits_to_f32(static_cast<uint32_t>(h) << 16); }
// Round to nearest even; NaN stays NaN (quieted), overflow becomes Inf (as torch and CUDA do).
uint16_t f32_to_bf16(float value);

// ---- fp16 (IEEE binary16) ----
float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float value);

// ---- fp8 e4m3fn: bias 7, no Inf, NaN = S.1111.111, max 448, min subnormal 2^-9 ----
float e4m3_to_f32(uint8_t code);
// torch's `.to(torch.float8_e4m3fn)`: round to nearest even; |x| >= 480 (the rounding boundary past 448)
// and NaN/Inf become NaN (0x7F with the sign). ModelOpt's exported block scales are made this way.
uint8_t f32_to_e4m3_torch(float value);
// CUDA's __NV_SATFINITE conversion: as above, but finite values past 448 clamp to ±448 (Inf too);
// NaN stays NaN. Used for the FP8 KV cache and activations.
uint8_t f32_to_e4m3_satfinite(float value);

// ---- fp4 e2m1: S.EE.M, bias 1; magnitudes 0, 0.5, 1, 1.5, 2, 3, 4, 6; no Inf/NaN ----
float e2m1_to_f32(uint8_t nibble);
// ModelOpt's `_cast_fp4`: bucket bounds 0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5 with exact ties to the even
// code; |x| > 6 saturates to 6; the sign bit is set for every x < 0, so -0.1 encodes as 0x8 (-0).
uint8_t f32_to_e2m1_modelopt(float value);

}  // namespace adallm
