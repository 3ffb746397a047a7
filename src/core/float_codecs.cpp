// Bit-level implementations of the scalar codecs. Rounding uses explicit integer arithmetic (or an exact
// power-of-two scaling followed by nearbyint in the default to-nearest-even mode), never float casts
// whose rounding depends on the compiler.
#include "core/float_codecs.h"

#include <array>
#include <cmath>
#include <limits>

namespace adallm {
namespace {

// Rounds the `drop` low bits of `value` away, to nearest, ties to even.
uint32_t round_shift_rne(uint32_t value, int drop) {
  const uint32_t kept = value >> drop;
  const uint32_t rest = value & ((1u << drop) - 1u);
  const uint32_t half = 1u << (drop - 1);
  return kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
}

constexpr std::array<float, 8> kE2M1Magnitudes{0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f};

}  // namespace

uint16_t f32_to_bf16(float value) {
  const uint32_t bits = f32_to_bits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x0040u);
  return static_cast<uint16_t>(round_shift_rne(bits, 16));
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1Fu;
  const uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1F) return bits_to_f32(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  return bits_to_f32(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

uint16_t f32_to_f16(float value) {
  const uint32_t bits = f32_to_bits(value);
  const uint16_t sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return sign | 0x7E00u;  // NaN
  if (abs_bits >= 0x477FF000u) return sign | 0x7C00u;  // >= 65520 rounds to Inf
  if (abs_bits < 0x38800000u) {                        // below 2^-14: subnormal; 2^24 scaling is exact
    const float units = std::nearbyint(std::ldexp(bits_to_f32(abs_bits), 24));
    return sign | static_cast<uint16_t>(units);  // 1024 lands on the smallest normal, as it should
  }
  // Re-bias the exponent (127 -> 15) and round 23 mantissa bits to 10; a carry ripples into the exponent.
  return sign | static_cast<uint16_t>(round_shift_rne(abs_bits - (112u << 23), 13));
}

float e4m3_to_f32(uint8_t code) {
  const bool negative = (code & 0x80u) != 0;
  const uint32_t exponent = (code >> 3) & 0xFu;
  const uint32_t mantissa = code & 0x7u;
  float magnitude;
  if ((code & 0x7Fu) == 0x7Fu) {
    magnitude = std::numeric_limits<float>::quiet_NaN();
  } else if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -9);
  } else {
    magnitude = bits_to_f32(((exponent + 120u) << 23) | (mantissa << 20));
  }
  return negative ? -magnitude : magnitude;
}

namespace {

// Shared by both e4m3 encoders for |x| < 480: the magnitude code, which is 0x7F when a value in
// (464, 480) rounds past 448.
uint8_t e4m3_magnitude_rne(uint32_t abs_bits) {
  if (abs_bits < 0x3C800000u) {  // below 2^-6: subnormal, steps of 2^-9; 2^9 scaling is exact
    return static_cast<uint8_t>(std::nearbyint(std::ldexp(bits_to_f32(abs_bits), 9)));
  }
  return static_cast<uint8_t>(round_shift_rne(abs_bits - (120u << 23), 20));
}

}  // namespace

uint8_t f32_to_e4m3_torch(float value) {
  const uint32_t bits = f32_to_bits(value);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits >= 0x43F00000u) return sign | 0x7Fu;  // >= 480, Inf and NaN
  return sign | e4m3_magnitude_rne(abs_bits);
}

uint8_t f32_to_e4m3_satfinite(float value) {
  const uint32_t bits = f32_to_bits(value);
  const uint8_t sign = static_cast<uint8_t>((bits >> 24) & 0x80u);
  const uint32_t abs_bits = bits & 0x7FFFFFFFu;
  if (abs_bits > 0x7F800000u) return sign | 0x7Fu;
  if (abs_bits >= 0x43E00000u) return sign | 0x7Eu;  // >= 448 (Inf included) saturates
  const uint8_t magnitude = e4m3_magnitude_rne(abs_bits);
  return sign | (magnitude == 0x7Fu ? 0x7Eu : magnitude);
}

float e2m1_to_f32(uint8_t nibble) {
  const float magnitude = kE2M1Magnitudes[nibble & 0x7u];
  return (nibble & 0x8u) ? -magnitude : magnitude;
}

uint8_t f32_to_e2m1_modelopt(float value) {
  const uint8_t sign = value < 0.0f ? 0x8u : 0x0u;
  const float a = std::fabs(value);
  if (std::isnan(a)) return sign | 0x7u;  // searchsorted places NaN past every bound
  // searchsorted(bounds, a, side=left) counts the bounds strictly below a; a value exactly on an odd
  // bound (0.75, 1.75, 3.5) moves up one more code so that every tie lands on the even code.
  constexpr std::array<float, 7> bounds{0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  uint8_t code = 0;
  for (float b : bounds) code += (b < a) ? 1 : 0;
  if (a == 0.75f || a == 1.75f || a == 3.5f) code += 1;
  return sign | code;
}

}  // namespace adallm
