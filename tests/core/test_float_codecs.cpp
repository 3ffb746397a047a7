// Exhaustive and reference-based tests of core/float_codecs: every code of every narrow format decodes
// to the value its definition gives (written here with std::ldexp, not bit tricks), and each encoder
// agrees with a brute-force nearest-value search plus the overflow and tie rules of the library it
// claims to reproduce (torch c10, CUDA __NV_SATFINITE, ModelOpt _cast_fp4). The references share no code
// with the implementation.
#include "core/float_codecs.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

namespace adallm {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

uint32_t bits(float value) { return std::bit_cast<uint32_t>(value); }
float from_bits(uint32_t b) { return std::bit_cast<float>(b); }
float up(float x) { return std::nextafter(x, kInf); }
float down(float x) { return std::nextafter(x, -kInf); }

// ---- references: each format by its definition ----

float e4m3_formula(uint8_t code) {  // bias 7, 3 mantissa bits, exponent field 0 subnormal, S.1111.111 NaN
  const int e = (code >> 3) & 0xF;
  const int m = code & 0x7;
  float magnitude;
  if (e == 0xF && m == 0x7) magnitude = kNaN;
  else if (e == 0) magnitude = std::ldexp(static_cast<float>(m), -9);  // m/8 * 2^-6
  else magnitude = std::ldexp(static_cast<float>(8 + m), e - 10);      // (1 + m/8) * 2^(e-7)
  return (code & 0x80) ? -magnitude : magnitude;
}

float bf16_formula(uint16_t code) {  // bias 127, 7 mantissa bits
  const int e = (code >> 7) & 0xFF;
  const int m = code & 0x7F;
  float magnitude;
  if (e == 0xFF) magnitude = m ? kNaN : kInf;
  else if (e == 0) magnitude = std::ldexp(static_cast<float>(m), -133);  // m/128 * 2^-126
  else magnitude = std::ldexp(static_cast<float>(128 + m), e - 134);     // (1 + m/128) * 2^(e-127)
  return (code & 0x8000) ? -magnitude : magnitude;
}

float f16_formula(uint16_t code) {  // bias 15, 10 mantissa bits
  const int e = (code >> 10) & 0x1F;
  const int m = code & 0x3FF;
  float magnitude;
  if (e == 0x1F) magnitude = m ? kNaN : kInf;
  else if (e == 0) magnitude = std::ldexp(static_cast<float>(m), -24);  // m/1024 * 2^-14
  else magnitude = std::ldexp(static_cast<float>(1024 + m), e - 25);    // (1 + m/1024) * 2^(e-15)
  return (code & 0x8000) ? -magnitude : magnitude;
}

// Ascending magnitudes of codes 0..n-1 of a format whose magnitude grows with its code. The last entry is
// a virtual "one step past the largest finite value", so rounding past the top follows the same
// nearest/ties-to-even rule as everywhere else and lands on the code after the largest finite one.
struct Ladder {
  std::vector<double> values;
  // Index of the entry nearest to a >= 0, ties to the even index; past the last entry -> the last.
  size_t nearest(double a) const {
    const auto hi = std::upper_bound(values.begin(), values.end(), a);
    if (hi == values.end()) return values.size() - 1;
    const size_t k = static_cast<size_t>(hi - values.begin());  // values[k-1] <= a < values[k]
    const double below = a - values[k - 1];  // exact in double: all operands are floats of close magnitude
    const double above = values[k] - a;
    if (below < above) return k - 1;
    if (above < below) return k;
    return (k % 2 == 0) ? k : k - 1;
  }
};

const Ladder& e4m3_ladder() {  // codes 0..0x7E, then 0x7F standing for 480, the step past 448
  static const Ladder ladder = [] {
    Ladder l;
    for (int c = 0; c < 0x7F; ++c) l.values.push_back(e4m3_formula(static_cast<uint8_t>(c)));
    l.values.push_back(480.0);
    return l;
  }();
  return ladder;
}
const Ladder& bf16_ladder() {  // finite codes 0..0x7F7F, then 0x7F80 (Inf) standing for 2^128
  static const Ladder ladder = [] {
    Ladder l;
    for (int c = 0; c < 0x7F80; ++c) l.values.push_back(bf16_formula(static_cast<uint16_t>(c)));
    l.values.push_back(std::ldexp(1.0, 128));
    return l;
  }();
  return ladder;
}
const Ladder& f16_ladder() {  // finite codes 0..0x7BFF, then 0x7C00 (Inf) standing for 65536
  static const Ladder ladder = [] {
    Ladder l;
    for (int c = 0; c < 0x7C00; ++c) l.values.push_back(f16_formula(static_cast<uint16_t>(c)));
    l.values.push_back(65536.0);
    return l;
  }();
  return ladder;
}

// torch's rule (pytorch/pytorch c10/util/Float8_e4m3fn.h, fp8e4m3fn_from_fp32_value): |x| >= 480
// (fp8_max = 1087 << 20, the bits of 480.0f), Inf and NaN give 0x7F with the input's sign bit; below
// that, nearest-even, which sends (464, 480) to 0x7F too.
uint8_t e4m3_torch_ref(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  const double a = std::fabs(static_cast<double>(x));
  if (std::isnan(x) || a >= 480.0) return sign | 0x7F;
  return sign | static_cast<uint8_t>(e4m3_ladder().nearest(a));
}
// __NV_SATFINITE: NaN stays NaN; everything past 448, Inf included, clamps to 448.
uint8_t e4m3_satfinite_ref(float x) {
  const uint8_t sign = std::signbit(x) ? 0x80 : 0x00;
  if (std::isnan(x)) return sign | 0x7F;
  const double a = std::fabs(static_cast<double>(x));
  if (a > 448.0) return sign | 0x7E;
  return sign | static_cast<uint8_t>(std::min<size_t>(e4m3_ladder().nearest(a), 0x7E));
}
// IEEE nearest-even; at or past the overflow midpoint (and Inf) -> the Inf code. Not for NaN.
uint16_t half_ref(const Ladder& ladder, float x) {
  const uint16_t sign = std::signbit(x) ? 0x8000 : 0x0000;
  return sign | static_cast<uint16_t>(ladder.nearest(std::fabs(static_cast<double>(x))));
}

// torch.searchsorted(bounds, v) (side='left'): the first i with bounds[i] >= v, by bisection with the
// comparison written as torch's kernel writes it, `!(bounds[mid] >= v)`, so NaN moves past every bound.
int searchsorted_left(const float* bounds, int n, float v) {
  int lo = 0;
  int hi = n;
  while (lo < hi) {
    const int mid = lo + (hi - lo) / 2;
    if (!(bounds[mid] >= v)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
// ModelOpt NVFP4QTensor._cast_fp4 (NVIDIA/TensorRT-Model-Optimizer
// modelopt/torch/quantization/qtensor/nvfp4_tensor.py), restated: sign_bit = (x < 0); ord =
// searchsorted(e2m1_bounds, |x|); + 1 where |x| equals e2m1_bounds[[1, 3, 5]] = 0.75, 1.75, 3.5 (the
// source's comment says 2.5, but index 5 holds 3.5).
uint8_t e2m1_modelopt_ref(float x) {
  static const float bounds[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const float a = std::fabs(x);
  const int ord = searchsorted_left(bounds, 7, a);
  const int odd_tie = (a == bounds[1] || a == bounds[3] || a == bounds[5]) ? 1 : 0;
  return static_cast<uint8_t>(((x < 0.0f) ? 8 : 0) + ord + odd_tie);
}

// ---- sample sets ----

// Every midpoint between consecutive ladder entries, its two float neighbours, and every entry with
// its neighbours; all in both signs.
std::vector<float> ladder_probes(const Ladder& ladder) {
  std::vector<float> out;
  for (size_t k = 0; k + 1 < ladder.values.size(); ++k) {
    const float v = static_cast<float>(ladder.values[k]);
    const float mid = static_cast<float>((ladder.values[k] + ladder.values[k + 1]) / 2);  // exact
    for (float p : {v, up(v), down(v), mid, up(mid), down(mid)}) {
      if (p < 0.0f) continue;
      out.push_back(p);
      out.push_back(-p);
    }
  }
  return out;
}

// Uniform random bit patterns: every exponent, subnormals, Inf and NaN alike.
std::vector<float> random_bit_patterns(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<float> out(n);
  for (float& v : out) v = from_bits(static_cast<uint32_t>(rng()));
  return out;
}

// Random floats with exponent uniform in [lo, hi] and a random full mantissa, both signs.
std::vector<float> random_in_exponents(size_t n, int lo, int hi, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> exponent(lo, hi);
  std::vector<float> out(n);
  for (float& v : out) {
    const float mantissa = 1.0f + static_cast<float>(rng() & 0x7FFFFF) * std::ldexp(1.0f, -23);
    v = std::ldexp(mantissa, exponent(rng)) * ((rng() & 1) ? -1.0f : 1.0f);
  }
  return out;
}

// ---- e4m3 ----

TEST(E4m3Codec, DecodesEveryCodeToItsFormulaValue) {
  for (int c = 0; c < 256; ++c) {
    const uint8_t code = static_cast<uint8_t>(c);
    const float expected = e4m3_formula(code);
    if (std::isnan(expected)) {
      EXPECT_TRUE(std::isnan(e4m3_to_f32(code))) << "code " << c;
    } else {
      EXPECT_EQ(bits(e4m3_to_f32(code)), bits(expected)) << "code " << c;
    }
  }
  EXPECT_EQ(e4m3_to_f32(0x7E), 448.0f);
  EXPECT_EQ(e4m3_to_f32(0x01), 0.001953125f);  // 2^-9, the smallest subnormal
  EXPECT_EQ(e4m3_to_f32(0x08), 0.015625f);     // 2^-6, the smallest normal
  EXPECT_EQ(bits(e4m3_to_f32(0x80)), bits(-0.0f));
}

TEST(E4m3Codec, OnlyAllOnesCodesAreNaN) {
  for (int c = 0; c < 256; ++c) {
    EXPECT_EQ(std::isnan(e4m3_to_f32(static_cast<uint8_t>(c))), (c & 0x7F) == 0x7F) << "code " << c;
  }
}

TEST(E4m3Codec, EveryNonNaNCodeRoundTripsThroughBothEncoders) {
  for (int c = 0; c < 256; ++c) {
    if ((c & 0x7F) == 0x7F) continue;
    const float value = e4m3_to_f32(static_cast<uint8_t>(c));
    EXPECT_EQ(f32_to_e4m3_torch(value), c) << "code " << c;
    EXPECT_EQ(f32_to_e4m3_satfinite(value), c) << "code " << c;
  }
}

void expect_e4m3_encoders_match(const std::vector<float>& values) {
  int failures = 0;
  for (float x : values) {
    const bool torch_ok = f32_to_e4m3_torch(x) == e4m3_torch_ref(x);
    const bool sat_ok = f32_to_e4m3_satfinite(x) == e4m3_satfinite_ref(x);
    if (!torch_ok || !sat_ok) {
      ADD_FAILURE() << "x = " << x << " (bits " << std::hex << bits(x) << "): torch " << int(f32_to_e4m3_torch(x))
                    << " vs " << int(e4m3_torch_ref(x)) << ", satfinite " << int(f32_to_e4m3_satfinite(x)) << " vs "
                    << int(e4m3_satfinite_ref(x));
      if (++failures > 10) return;
    }
  }
}

TEST(E4m3Codec, EncodersMatchNearestEvenOnMidpointsAndTheirNeighbours) {
  std::vector<float> probes = ladder_probes(e4m3_ladder());
  // Past the top: the (448, 480) midpoint 464, 480 itself, and beyond.
  for (float p : {464.0f, 470.0f, 479.0f, 480.0f, 496.0f, 512.0f, 1e6f, 3e38f, kInf}) {
    for (float q : {p, up(p), down(p)}) {
      probes.push_back(q);
      probes.push_back(-q);
    }
  }
  expect_e4m3_encoders_match(probes);
}

TEST(E4m3Codec, EncodersMatchReferenceOnRandomFloats) {
  expect_e4m3_encoders_match(random_bit_patterns(100000, 1));
  expect_e4m3_encoders_match(random_in_exponents(100000, -12, 9, 2));  // the whole e4m3 range and a bit
  expect_e4m3_encoders_match(random_in_exponents(50000, -9, -7, 3));   // subnormal scales, 2^-9..2^-6
}

// Pinned from reading fp8e4m3fn_from_fp32_value (pytorch/pytorch c10/util/Float8_e4m3fn.h): inputs at
// or above fp8_max (480.0f) return 0x7F; below 2^-6 the value is rounded by a float add of denorm_mask
// (2^14), i.e. nearest-even in steps of 2^-9; normals round with the bias 0x7FFFF + mant_odd, i.e.
// nearest-even on the 3 kept mantissa bits, so a carry out of 448's mantissa makes 0x7F (NaN).
TEST(E4m3Codec, TorchBoundaryCasesFromC10) {
  EXPECT_EQ(f32_to_e4m3_torch(448.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3_torch(464.0f), 0x7E);        // the tie between 448 and "480" goes to even 0x7E
  EXPECT_EQ(f32_to_e4m3_torch(up(464.0f)), 0x7F);    // past the tie: the carry produces NaN
  EXPECT_EQ(f32_to_e4m3_torch(down(480.0f)), 0x7F);
  EXPECT_EQ(f32_to_e4m3_torch(480.0f), 0x7F);        // f_bits >= fp8_max
  EXPECT_EQ(f32_to_e4m3_torch(-480.0f), 0xFF);
  EXPECT_EQ(f32_to_e4m3_torch(3e38f), 0x7F);
  EXPECT_EQ(f32_to_e4m3_torch(kInf), 0x7F);
  EXPECT_EQ(f32_to_e4m3_torch(-kInf), 0xFF);
  EXPECT_EQ(f32_to_e4m3_torch(kNaN), 0x7F);
  EXPECT_EQ(f32_to_e4m3_torch(-kNaN), 0xFF);          // the sign bit is copied even for NaN
  EXPECT_EQ(f32_to_e4m3_torch(0.0f), 0x00);
  EXPECT_EQ(f32_to_e4m3_torch(-0.0f), 0x80);
  EXPECT_EQ(f32_to_e4m3_torch(1e-45f), 0x00);
  EXPECT_EQ(f32_to_e4m3_torch(std::ldexp(1.0f, -10)), 0x00);      // half a subnormal step: tie to 0
  EXPECT_EQ(f32_to_e4m3_torch(up(std::ldexp(1.0f, -10))), 0x01);
  EXPECT_EQ(f32_to_e4m3_torch(std::ldexp(3.0f, -10)), 0x02);      // 1.5 steps: tie to even 2
  EXPECT_EQ(f32_to_e4m3_torch(std::ldexp(5.0f, -10)), 0x02);      // 2.5 steps: tie to even 2
  EXPECT_EQ(f32_to_e4m3_torch(down(std::ldexp(1.0f, -6))), 0x08);  // just below the smallest normal
  EXPECT_EQ(f32_to_e4m3_torch(std::ldexp(15.0f, -10)), 0x08);     // 7.5 steps: ties up into 2^-6
  EXPECT_EQ(f32_to_e4m3_torch(17.0f), 0x58);  // between 16 and 18: tie to even mantissa, 16
  EXPECT_EQ(f32_to_e4m3_torch(19.0f), 0x5A);  // between 18 and 20: tie to even mantissa, 20
  EXPECT_EQ(f32_to_e4m3_torch(15.0f), 0x57);
  EXPECT_EQ(f32_to_e4m3_torch(0.3f), 0x2A);   // 0.3 -> 0.3125 = 1.25 * 2^-2
}

TEST(E4m3Codec, SatfiniteBoundaryCases) {
  EXPECT_EQ(f32_to_e4m3_satfinite(448.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3_satfinite(464.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3_satfinite(up(464.0f)), 0x7E);
  EXPECT_EQ(f32_to_e4m3_satfinite(480.0f), 0x7E);
  EXPECT_EQ(f32_to_e4m3_satfinite(3e38f), 0x7E);
  EXPECT_EQ(f32_to_e4m3_satfinite(kInf), 0x7E);
  EXPECT_EQ(f32_to_e4m3_satfinite(-kInf), 0xFE);
  EXPECT_EQ(f32_to_e4m3_satfinite(-1000.0f), 0xFE);
  EXPECT_EQ(f32_to_e4m3_satfinite(kNaN), 0x7F);
  EXPECT_EQ(f32_to_e4m3_satfinite(std::ldexp(1.0f, -10)), 0x00);
  EXPECT_EQ(f32_to_e4m3_satfinite(-0.0f), 0x80);
}

// ---- bf16 and fp16 ----

struct HalfCodec {
  const char* name;
  float (*decode)(uint16_t);
  uint16_t (*encode)(float);
  float (*formula)(uint16_t);
  const Ladder& (*ladder)();
  uint16_t inf_code;
};

const HalfCodec kBf16{"bf16", bf16_to_f32, f32_to_bf16, bf16_formula, bf16_ladder, 0x7F80};
const HalfCodec kF16{"f16", f16_to_f32, f32_to_f16, f16_formula, f16_ladder, 0x7C00};

bool is_nan_code(const HalfCodec& codec, uint16_t code) { return (code & 0x7FFF) > codec.inf_code; }

void expect_every_code_round_trips(const HalfCodec& codec) {
  for (uint32_t c = 0; c < 0x10000; ++c) {
    const uint16_t code = static_cast<uint16_t>(c);
    const float value = codec.decode(code);
    const float expected = codec.formula(code);
    if (std::isnan(expected)) {
      ASSERT_TRUE(std::isnan(value)) << codec.name << " code " << c;
      ASSERT_TRUE(is_nan_code(codec, codec.encode(value))) << codec.name << " code " << c;
    } else {
      ASSERT_EQ(bits(value), bits(expected)) << codec.name << " code " << c;
      ASSERT_EQ(codec.encode(value), code) << codec.name << " code " << c;
    }
  }
}

void expect_encoder_matches(const HalfCodec& codec, const std::vector<float>& values) {
  int failures = 0;
  for (float x : values) {
    const uint16_t got = codec.encode(x);
    const bool ok = std::isnan(x) ? is_nan_code(codec, got) : got == half_ref(codec.ladder(), x);
    if (!ok) {
      ADD_FAILURE() << codec.name << " x = " << x << " (bits " << std::hex << bits(x) << "): got " << got
                    << ", expected " << (std::isnan(x) ? 0 : half_ref(codec.ladder(), x));
      if (++failures > 10) return;
    }
  }
}

TEST(Bf16Codec, EveryCodeDecodesToItsFormulaAndRoundTrips) { expect_every_code_round_trips(kBf16); }
TEST(F16Codec, EveryCodeDecodesToItsFormulaAndRoundTrips) { expect_every_code_round_trips(kF16); }

TEST(Bf16Codec, EncoderMatchesNearestEven) {
  expect_encoder_matches(kBf16, ladder_probes(bf16_ladder()));
  expect_encoder_matches(kBf16, random_bit_patterns(200000, 4));
  expect_encoder_matches(kBf16, {std::numeric_limits<float>::max(), from_bits(0x7F7F7FFF), from_bits(0x7F7F8000),
                                 kInf, -kInf, from_bits(0x7F800001), from_bits(0xFFC00000),
                                 std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::min()});
}

TEST(F16Codec, EncoderMatchesNearestEven) {
  expect_encoder_matches(kF16, ladder_probes(f16_ladder()));
  expect_encoder_matches(kF16, random_bit_patterns(200000, 5));
  expect_encoder_matches(kF16, random_in_exponents(200000, -26, 16, 6));  // subnormals through overflow
  expect_encoder_matches(kF16, {65504.0f, down(65520.0f), 65520.0f, up(65520.0f), 65536.0f, 1e6f, kInf, -kInf,
                                kNaN, std::numeric_limits<float>::max()});
}

TEST(Bf16Codec, BoundaryCases) {
  EXPECT_EQ(f32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3F80);        // tie to even
  EXPECT_EQ(f32_to_bf16(1.0f + std::ldexp(3.0f, -8)), 0x3F82);        // tie to even, upwards
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7F7FFF)), 0x7F7F);              // just below the overflow midpoint
  EXPECT_EQ(f32_to_bf16(from_bits(0x7F7F8000)), 0x7F80);              // the midpoint ties up to Inf
  EXPECT_EQ(f32_to_bf16(std::numeric_limits<float>::max()), 0x7F80);
  EXPECT_EQ(f32_to_bf16(-kInf), 0xFF80);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008000)), 0x0000);              // half the smallest bf16 subnormal
  EXPECT_EQ(f32_to_bf16(from_bits(0x00008001)), 0x0001);
  EXPECT_EQ(f32_to_bf16(from_bits(0x00018000)), 0x0002);
  EXPECT_TRUE(std::isnan(bf16_to_f32(f32_to_bf16(from_bits(0x7F800001)))));  // signalling NaN stays NaN
  EXPECT_EQ(f32_to_bf16(-0.0f), 0x8000);
}

TEST(F16Codec, BoundaryCases) {
  EXPECT_EQ(f32_to_f16(65504.0f), 0x7BFF);                     // max finite
  EXPECT_EQ(f32_to_f16(down(65520.0f)), 0x7BFF);
  EXPECT_EQ(f32_to_f16(65520.0f), 0x7C00);                     // the overflow midpoint ties to Inf
  EXPECT_EQ(f32_to_f16(-65520.0f), 0xFC00);
  EXPECT_EQ(f32_to_f16(1e6f), 0x7C00);
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -24)), 0x0001);        // smallest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(1.0f, -25)), 0x0000);        // half of it: tie to 0
  EXPECT_EQ(f32_to_f16(up(std::ldexp(1.0f, -25))), 0x0001);
  EXPECT_EQ(f32_to_f16(std::ldexp(3.0f, -25)), 0x0002);        // 1.5 steps: tie to even
  EXPECT_EQ(f32_to_f16(std::ldexp(1023.0f, -24)), 0x03FF);     // largest subnormal
  EXPECT_EQ(f32_to_f16(std::ldexp(2047.0f, -25)), 0x0400);     // its tie with 2^-14 goes to even 0x0400
  EXPECT_EQ(f32_to_f16(down(std::ldexp(1.0f, -14))), 0x0400);
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);  // tie to even
  EXPECT_EQ(f32_to_f16(1.0f + std::ldexp(3.0f, -11)), 0x3C02);
  EXPECT_EQ(f32_to_f16(-0.0f), 0x8000);
  EXPECT_TRUE(std::isnan(f16_to_f32(f32_to_f16(kNaN))));
}

// ---- e2m1 ----

TEST(E2m1Codec, DecodesTheSixteenCodes) {
  const float expected[16] = {0.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f, 6.0f,
                              -0.0f, -0.5f, -1.0f, -1.5f, -2.0f, -3.0f, -4.0f, -6.0f};
  for (int c = 0; c < 16; ++c) EXPECT_EQ(bits(e2m1_to_f32(static_cast<uint8_t>(c))), bits(expected[c])) << c;
  EXPECT_EQ(e2m1_to_f32(0x17), 6.0f);  // only the low nibble counts
}

TEST(E2m1Codec, ModelOptTiesGoToTheEvenCode) {
  const float ties[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f};
  const uint8_t codes[7] = {0, 2, 2, 4, 4, 6, 6};
  for (int i = 0; i < 7; ++i) {
    EXPECT_EQ(f32_to_e2m1_modelopt(ties[i]), codes[i]) << ties[i];
    EXPECT_EQ(f32_to_e2m1_modelopt(-ties[i]), codes[i] | 0x8) << -ties[i];
    EXPECT_EQ(f32_to_e2m1_modelopt(down(ties[i])), i) << "below " << ties[i];
    EXPECT_EQ(f32_to_e2m1_modelopt(up(ties[i])), i + 1) << "above " << ties[i];
  }
}

TEST(E2m1Codec, SaturatesAboveSixAndSignsEveryNegative) {
  for (float x : {6.0f, up(6.0f), 7.0f, 1e30f, kInf}) {
    EXPECT_EQ(f32_to_e2m1_modelopt(x), 0x7) << x;
    EXPECT_EQ(f32_to_e2m1_modelopt(-x), 0xF) << -x;
  }
  EXPECT_EQ(f32_to_e2m1_modelopt(-0.1f), 0x8);  // rounds to zero but keeps the sign: -0
  EXPECT_EQ(f32_to_e2m1_modelopt(-1e-30f), 0x8);
  EXPECT_EQ(f32_to_e2m1_modelopt(-0.0f), 0x0);  // (x < 0) is false for -0.0
  EXPECT_EQ(f32_to_e2m1_modelopt(0.0f), 0x0);
  EXPECT_EQ(f32_to_e2m1_modelopt(kNaN), 0x7);   // searchsorted puts NaN past every bound
}

TEST(E2m1Codec, MatchesSearchsortedRestatementOfCastFp4) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uniform(-8.0f, 8.0f);
  std::vector<float> values;
  for (int i = 0; i < 100000; ++i) values.push_back(uniform(rng));
  for (float b : {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f, 1.5f, 1.75f, 2.0f, 2.5f, 3.0f, 3.5f, 4.0f, 5.0f, 6.0f}) {
    for (float p : {b, up(b), down(b)}) {
      values.push_back(p);
      values.push_back(-p);
    }
  }
  for (float x : random_bit_patterns(20000, 8)) values.push_back(x);
  int failures = 0;
  for (float x : values) {
    if (f32_to_e2m1_modelopt(x) != e2m1_modelopt_ref(x)) {
      ADD_FAILURE() << "x = " << x << ": " << int(f32_to_e2m1_modelopt(x)) << " vs " << int(e2m1_modelopt_ref(x));
      if (++failures > 10) break;
    }
  }
}

}  // namespace
}  // namespace adallm
