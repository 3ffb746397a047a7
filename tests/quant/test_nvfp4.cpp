// NVFP4 encoders and decoder (quant/nvfp4): hand-worked blocks whose bytes are derived in the comments,
// byte-exact agreement with a straightforward per-element restatement of each reference algorithm
// (ModelOpt nvfp4_tensor.py; compressed-tensors helpers.py / forward.py / quant_args.py /
// fp4_quantized.py) on many shapes including a multi-threaded one, the dequantization error bound, the
// per-tensor scale formulas, and the errors for bad input.
#include "quant/nvfp4.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/float_codecs.h"

namespace adallm::quant {
namespace {

using Bytes = std::vector<uint8_t>;

// ---- straightforward restatements of the two algorithms ----

// e2m1 by threshold chain, as compressed-tensors' cast_to_fp4 writes it (<= 0.25 -> 0, < 0.75 -> 0.5,
// <= 1.25 -> 1, < 1.75 -> 1.5, <= 2.5 -> 2, < 3.5 -> 3, <= 5 -> 4, else 6), sign from x < 0. NaN, which
// only a zero block scale produces, goes past every bound as in torch.searchsorted.
uint8_t e2m1_by_thresholds(float x) {
  const float a = std::fabs(x);
  int code;
  if (std::isnan(x)) code = 7;
  else if (a <= 0.25f) code = 0;
  else if (a < 0.75f) code = 1;
  else if (a <= 1.25f) code = 2;
  else if (a < 1.75f) code = 3;
  else if (a <= 2.5f) code = 4;
  else if (a < 3.5f) code = 5;
  else if (a <= 5.0f) code = 6;
  else code = 7;
  return static_cast<uint8_t>((x < 0.0f ? 8 : 0) | code);
}

struct Expected {
  Bytes packed;
  Bytes scales;
};

float block_amax(const std::vector<float>& w, int64_t cols, int64_t r, int64_t c) {
  const int64_t start = r * cols + (c / 16) * 16;
  float amax = 0.0f;
  for (int64_t i = 0; i < 16; ++i) amax = std::max(amax, std::fabs(w[static_cast<size_t>(start + i)]));
  return amax;
}

// ModelOpt NVFP4QTensor.quantize, element by element: scale = amax_b / (6 * wsf2), 0 -> 1, to e4m3 the
// torch way; element = e2m1(x / (float(scale) * wsf2)); even column in the low nibble.
Expected reference_modelopt(const std::vector<float>& w, int64_t rows, int64_t cols, float wsf2) {
  Expected e{Bytes(static_cast<size_t>(rows * cols / 2), 0), Bytes(static_cast<size_t>(rows * cols / 16), 0)};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      float scale = block_amax(w, cols, r, c) / (6.0f * wsf2);
      if (scale == 0.0f) scale = 1.0f;
      const uint8_t scale_code = f32_to_e4m3_torch(scale);
      const float divisor = e4m3_to_f32(scale_code) * wsf2;
      const uint8_t q = e2m1_by_thresholds(w[static_cast<size_t>(r * cols + c)] / divisor);
      e.packed[static_cast<size_t>((r * cols + c) / 2)] |= static_cast<uint8_t>(q << (4 * (c % 2)));
      e.scales[static_cast<size_t>((r * cols + c) / 16)] = scale_code;
    }
  }
  return e;
}

float round_to(DType dtype, float x) {
  if (dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(x));
  if (dtype == DType::F16) return f16_to_f32(f32_to_f16(x));
  return x;
}

// compressed-tensors, element by element: scale = clamp(gs * (amax_b / 6 in the observed dtype), +-448)
// to e4m3, 0 -> 0.125; element = e2m1(clamp(x / (float(scale) / gs), -6, 6)).
Expected reference_compressed_tensors(const std::vector<float>& w, int64_t rows, int64_t cols, float gs,
                                      DType observed) {
  Expected e{Bytes(static_cast<size_t>(rows * cols / 2), 0), Bytes(static_cast<size_t>(rows * cols / 16), 0)};
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      const float scale = std::clamp(gs * round_to(observed, block_amax(w, cols, r, c) / 6.0f), -448.0f, 448.0f);
      uint8_t scale_code = f32_to_e4m3_torch(scale);
      if (e4m3_to_f32(scale_code) == 0.0f) scale_code = 0x20;  // 0.125 = 2^-3: exponent field 4
      const float divisor = e4m3_to_f32(scale_code) / gs;
      const float scaled = std::clamp(w[static_cast<size_t>(r * cols + c)] / divisor, -6.0f, 6.0f);
      const uint8_t q = e2m1_by_thresholds(scaled);
      e.packed[static_cast<size_t>((r * cols + c) / 2)] |= static_cast<uint8_t>(q << (4 * (c % 2)));
      e.scales[static_cast<size_t>((r * cols + c) / 16)] = scale_code;
    }
  }
  return e;
}

void expect_same(const Nvfp4Tensor& got, const Expected& want, int64_t rows, int64_t cols) {
  ASSERT_EQ(got.rows, rows);
  ASSERT_EQ(got.cols, cols);
  ASSERT_EQ(got.packed.size(), want.packed.size());
  ASSERT_EQ(got.scales.size(), want.scales.size());
  for (size_t i = 0; i < want.scales.size(); ++i) {
    ASSERT_EQ(got.scales[i], want.scales[i]) << "scale " << i << " (row " << i / (cols / 16) << ")";
  }
  for (size_t i = 0; i < want.packed.size(); ++i) {
    ASSERT_EQ(got.packed[i], want.packed[i]) << "byte " << i << " (row " << i / (cols / 2) << ")";
  }
}

// ---- test data ----

// Weight-like data: normal(0, sigma) with 1% outliers x50, rounded to `dtype` as checkpoint weights are.
std::vector<float> weight_like(int64_t rows, int64_t cols, uint32_t seed, DType dtype = DType::BF16,
                               float sigma = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& x : w) x = round_to(dtype, normal(rng) * (unit(rng) < 0.01f ? 50.0f : 1.0f));
  return w;
}

// Blocks built so that x / scale hits the e2m1 ties exactly: each block gets a random e4m3 scale s and
// an element +-6s (so block amax / 6 = s exactly), the rest are tie values, code values, random values
// times s, zeros, -0 and tiny negatives. Element [0, 0] is 2688 (s = 448), so amax / 2688 = 1.
std::vector<float> tie_heavy(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  const float picks[] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.0f, 6.0f, 0.5f, 1.0f, 1.5f, 2.0f, 3.0f, 4.0f};
  std::uniform_int_distribution<int> scale_code(1, 0x7E);
  std::uniform_int_distribution<int> kind(0, 19);
  std::uniform_real_distribution<float> uniform(-6.0f, 6.0f);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 16; ++b) {
      const float s = (r == 0 && b == 0) ? 448.0f : e4m3_to_f32(static_cast<uint8_t>(scale_code(rng)));
      float* x = &w[static_cast<size_t>(r * cols + b * 16)];
      x[0] = (rng() & 1) ? 6.0f * s : -6.0f * s;
      for (int i = 1; i < 16; ++i) {
        const int k = kind(rng);
        const float sign = (rng() & 1) ? 1.0f : -1.0f;
        if (k < 14) x[i] = sign * picks[k] * s;
        else if (k < 17) x[i] = uniform(rng) * s;
        else if (k == 17) x[i] = 0.0f;
        else if (k == 18) x[i] = -0.0f;
        else x[i] = -0.01f * s;
      }
    }
  }
  if (!w.empty()) w[0] = 2688.0f;
  return w;
}

// ---- hand-worked blocks ----
//
// A [2, 64] tensor whose amax is 2688, so weight_scale_2 = 2688 / 2688 = 1 and every divisor below is
// just the e4m3 block scale.
//
// Row 0, block 0 (cols 0-15): amax 2688 = the tensor amax, so scale = 2688 / (6 * 1) = 448 -> 0x7E.
//   x / 448:  2688 -> 6 (7)    224 -> 0.5 (1)   -448 -> -1 (0xA)   0 -> 0 (0)
//             1344 -> 3 (5)    672 -> 1.5 (3)    112 -> 0.25 (tie -> 0)   113 -> 0.252 (1)
//              896 -> 2 (4)   1792 -> 4 (6)    -2688 -> -6 (0xF)  2240 -> 5 (tie -> 6)
//             2016 -> 4.5 (6) 2300 -> 5.13 (7)  -100 -> -0.22 (-0: 0x8)  1568 -> 3.5 (tie -> 6)
//   bytes (even | odd << 4): 17 0A 35 10 64 6F 76 68
// Row 0, block 1: zeros (and a -0.0): amax 0 -> scale 0 -> 1.0 (0x38); codes 0, -0.0 included (x < 0 is
//   false). compressed-tensors instead takes 0 -> 0.125 (0x20).
// Row 0, block 2: every tie, amax 6 -> scale 1 (0x38):
//   0.25 0.75 1.25 1.75 2.5 3.5 5 6 -> 0 2 2 4 4 6 6 7; the negatives -> 8 A A C C E E F
//   bytes: 20 42 64 76 A8 CA EC FE
// Row 0, block 3: amax 0.03 -> 0.03 / 6 = 0.005 = 2.56 * 2^-9 -> subnormal e4m3 3 * 2^-9 (0x03), d = 0.005859375
//   0.03 -> 5.12 (7)   3*2^-9 -> 1 (2)   -4.5*2^-9 -> -1.5 (0xB)   0.75*2^-9 -> 0.25 (tie -> 0)
//   -0.001 -> -0.17 (0x8)   0.02 -> 3.41 (5)   zeros
//   bytes: 27 0B 58 00 00 00 00 00
// Row 1, block 0: 1, 6, -0.1, 0.5, zeros: amax 6 -> scale 1 (0x38); codes 2 7 8 1: bytes 72 18 00 ...
//   (column 0 -> low nibble 2, column 1 -> high nibble 7)
// Row 1, block 1: 10, -10, 1.625, 4.0625, zeros: 10 / 6 = 1.667 -> e4m3 1.625 (0x3D, mantissa 5/8);
//   10 / 1.625 = 6.15 -> 7, -> 0xF; 1.625 -> 1 (2); 4.0625 / 1.625 = 2.5 (tie -> 4). bytes F7 42 00 ...
// Row 1, block 2: -0.0 and one 1e-30: scale 1e-30 / 6 is nonzero but below e4m3's half-subnormal, so
//   it encodes as 0x00; ModelOpt then divides by 0 (0/0 = NaN, 1e-30/0 = Inf), both land on code 7:
//   bytes 77 x8, which decode to 6 * 0 = 0. compressed-tensors takes the 0 scale to 0.125: codes 0.
// Row 1, block 3: zeros: 0x38 (compressed-tensors 0x20).
std::vector<float> hand_tensor() {
  std::vector<float> w(2 * 64, 0.0f);
  const float r0b0[16] = {2688, 224, -448, 0, 1344, 672, 112, 113, 896, 1792, -2688, 2240, 2016, 2300, -100, 1568};
  const float r0b2[16] = {0.25f,  0.75f,  1.25f,  1.75f,  2.5f,  3.5f,  5,  6,
                          -0.25f, -0.75f, -1.25f, -1.75f, -2.5f, -3.5f, -5, -6};
  std::copy(r0b0, r0b0 + 16, w.begin());
  w[17] = -0.0f;
  std::copy(r0b2, r0b2 + 16, w.begin() + 32);
  w[48] = 0.03f;
  w[49] = std::ldexp(3.0f, -9);
  w[50] = -std::ldexp(4.5f, -9);
  w[51] = std::ldexp(0.75f, -9);
  w[52] = -0.001f;
  w[53] = 0.02f;
  float* row1 = w.data() + 64;
  row1[0] = 1.0f;
  row1[1] = 6.0f;
  row1[2] = -0.1f;
  row1[3] = 0.5f;
  row1[16] = 10.0f;
  row1[17] = -10.0f;
  row1[18] = 1.625f;
  row1[19] = 4.0625f;
  for (int i = 32; i < 48; ++i) row1[i] = -0.0f;
  row1[35] = 1e-30f;
  return w;
}

const Bytes kHandPackedModelOpt = {
    0x17, 0x0A, 0x35, 0x10, 0x64, 0x6F, 0x76, 0x68, 0, 0, 0, 0, 0, 0, 0, 0,                       // row 0
    0x20, 0x42, 0x64, 0x76, 0xA8, 0xCA, 0xEC, 0xFE, 0x27, 0x0B, 0x58, 0, 0, 0, 0, 0,
    0x72, 0x18, 0, 0, 0, 0, 0, 0, 0xF7, 0x42, 0, 0, 0, 0, 0, 0,                                    // row 1
    0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0x77, 0, 0, 0, 0, 0, 0, 0, 0};
const Bytes kHandScalesModelOpt = {0x7E, 0x38, 0x38, 0x03, 0x38, 0x3D, 0x00, 0x38};

TEST(Nvfp4ModelOpt, HandWorkedBlocks) {
  const std::vector<float> w = hand_tensor();
  const float wsf2 = modelopt_weight_scale_2(abs_max(w));
  ASSERT_EQ(wsf2, 1.0f);
  const Nvfp4Tensor q = nvfp4_quantize_modelopt(w, 2, 64, wsf2);
  EXPECT_EQ(q.weight_scale_2, 1.0f);
  EXPECT_EQ(q.scales, kHandScalesModelOpt);
  EXPECT_EQ(q.packed, kHandPackedModelOpt);
}

TEST(Nvfp4ModelOpt, HandWorkedBlocksDecode) {
  const std::vector<float> w = hand_tensor();
  const Nvfp4Tensor q = nvfp4_quantize_modelopt(w, 2, 64, 1.0f);
  std::vector<float> out(2 * 64, -1.0f);
  nvfp4_dequantize(q.view(), out);
  const float d3 = std::ldexp(3.0f, -9);  // row 0 block 3's scale
  std::vector<float> expected = {2688, 224, -448, 0, 1344, 672, 0, 224, 896, 1792, -2688, 1792, 1792, 2688, 0, 1792};
  expected.resize(32, 0.0f);
  for (float v : {0.f, 1.f, 1.f, 2.f, 2.f, 4.f, 4.f, 6.f, 0.f, -1.f, -1.f, -2.f, -2.f, -4.f, -4.f, -6.f}) {
    expected.push_back(v);
  }
  for (float v : {6 * d3, d3, -1.5f * d3, 0.0f, 0.0f, 3 * d3}) expected.push_back(v);
  expected.resize(64, 0.0f);
  for (float v : {1.0f, 6.0f, 0.0f, 0.5f}) expected.push_back(v);
  expected.resize(64 + 16, 0.0f);
  for (float v : {9.75f, -9.75f, 1.625f, 3.25f}) expected.push_back(v);
  expected.resize(128, 0.0f);  // row 1 block 2 decodes to 6 * 0 = 0; block 3 zeros
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(out[i], expected[i]) << "element " << i;
  EXPECT_TRUE(std::signbit(out[14]));  // code 0x8 decodes to -0
}

TEST(Nvfp4CompressedTensors, HandWorkedBlocks) {
  // Same tensor with global_scale 1: the block scales are 1 * amax / 6 as above, except that a zero scale
  // becomes 0.125 (0x20): row 0 block 1, row 1 blocks 2 and 3; row 1 block 2's elements then code 0.
  const std::vector<float> w = hand_tensor();
  const Nvfp4Tensor q = nvfp4_quantize_compressed_tensors(w, 2, 64, 1.0f);
  Bytes packed = kHandPackedModelOpt;
  std::fill(packed.begin() + 48, packed.begin() + 56, 0);
  EXPECT_EQ(q.packed, packed);
  EXPECT_EQ(q.scales, (Bytes{0x7E, 0x20, 0x38, 0x03, 0x38, 0x3D, 0x20, 0x20}));
  EXPECT_EQ(q.weight_scale_2, 1.0f);
  EXPECT_EQ(compressed_tensors_global_scale(2688.0f), 1.0f);  // float(1/2688) * 2688 rounds back to 1
}

// ---- against the restatements ----

struct Shape {
  int64_t rows;
  int64_t cols;
};
const Shape kShapes[] = {{1, 16}, {1, 48}, {3, 48}, {7, 32}, {16, 256}, {33, 160}};

TEST(Nvfp4ModelOpt, MatchesReferenceOnRandomWeights) {
  uint32_t seed = 10;
  for (const Shape& s : kShapes) {
    const std::vector<float> w = weight_like(s.rows, s.cols, seed++);
    const float amax = abs_max(w);
    for (float wsf2 : {modelopt_weight_scale_2(amax), modelopt_weight_scale_2_cuda(amax), amax * 1.7f / 2688.0f}) {
      SCOPED_TRACE("shape [" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "] wsf2 " +
                   std::to_string(wsf2));
      expect_same(nvfp4_quantize_modelopt(w, s.rows, s.cols, wsf2), reference_modelopt(w, s.rows, s.cols, wsf2),
                  s.rows, s.cols);
    }
  }
}

// The tie-heavy blocks times k, rounded: x / divisor now lands on a tie or within an ulp or two of it,
// where the order of the fp32 operations decides the code.
std::vector<float> near_ties(int64_t rows, int64_t cols, uint32_t seed, float k) {
  std::vector<float> w = tie_heavy(rows, cols, seed);
  for (float& x : w) x *= k;
  return w;
}

TEST(Nvfp4ModelOpt, MatchesReferenceOnTieHeavyBlocks) {
  uint32_t seed = 20;
  for (const Shape& s : kShapes) {
    SCOPED_TRACE("shape [" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "]");
    const std::vector<float> w = tie_heavy(s.rows, s.cols, seed++);
    ASSERT_EQ(modelopt_weight_scale_2(abs_max(w)), 1.0f);
    expect_same(nvfp4_quantize_modelopt(w, s.rows, s.cols, 1.0f), reference_modelopt(w, s.rows, s.cols, 1.0f), s.rows,
                s.cols);
    for (float k : {0.0173f, 0.3f, 3.7e-3f}) {
      const std::vector<float> v = near_ties(s.rows, s.cols, seed++, k);
      const float wsf2 = modelopt_weight_scale_2(abs_max(v));
      expect_same(nvfp4_quantize_modelopt(v, s.rows, s.cols, wsf2), reference_modelopt(v, s.rows, s.cols, wsf2),
                  s.rows, s.cols);
    }
  }
}

TEST(Nvfp4ModelOpt, MultiThreadedLargeShapeMatchesReference) {
  const int64_t rows = 1000;
  const int64_t cols = 4096;
  std::vector<float> w = weight_like(rows, cols, 30);
  const std::vector<float> ties = tie_heavy(rows / 4, cols, 31);  // a quarter of the rows full of ties
  std::copy(ties.begin() + cols, ties.end(), w.begin() + cols);     // keep row 0 weight-like
  const float wsf2 = modelopt_weight_scale_2(abs_max(w));
  expect_same(nvfp4_quantize_modelopt(w, rows, cols, wsf2), reference_modelopt(w, rows, cols, wsf2), rows, cols);
}

TEST(Nvfp4CompressedTensors, MatchesReferenceOnRandomWeights) {
  uint32_t seed = 40;
  for (const Shape& s : kShapes) {
    for (DType observed : {DType::F32, DType::BF16, DType::F16}) {
      // F16 data at sigma 1: with an F16 observer, amax below 2688 / 65520 = 0.041 overflows the scale.
      const std::vector<float> w = observed == DType::F16 ? weight_like(s.rows, s.cols, seed++, DType::F16, 1.0f)
                                                          : weight_like(s.rows, s.cols, seed++);
      const float gs = compressed_tensors_global_scale(abs_max(w), observed);
      SCOPED_TRACE("shape [" + std::to_string(s.rows) + ", " + std::to_string(s.cols) + "] observed " +
                   std::string(dtype_name(observed)));
      expect_same(nvfp4_quantize_compressed_tensors(w, s.rows, s.cols, gs, observed),
                  reference_compressed_tensors(w, s.rows, s.cols, gs, observed), s.rows, s.cols);
    }
    const std::vector<float> t = tie_heavy(s.rows, s.cols, seed++);
    expect_same(nvfp4_quantize_compressed_tensors(t, s.rows, s.cols, 1.0f),
                reference_compressed_tensors(t, s.rows, s.cols, 1.0f, DType::F32), s.rows, s.cols);
    for (float k : {0.0173f, 0.3f, 3.7e-3f}) {
      const std::vector<float> v = near_ties(s.rows, s.cols, seed++, k);
      const float gs = compressed_tensors_global_scale(abs_max(v));
      expect_same(nvfp4_quantize_compressed_tensors(v, s.rows, s.cols, gs),
                  reference_compressed_tensors(v, s.rows, s.cols, gs, DType::F32), s.rows, s.cols);
    }
  }
}

TEST(Nvfp4CompressedTensors, MultiThreadedShapeMatchesReference) {
  const int64_t rows = 256;
  const int64_t cols = 2048;
  const std::vector<float> w = weight_like(rows, cols, 50);
  const float gs = compressed_tensors_global_scale(abs_max(w), DType::BF16);
  expect_same(nvfp4_quantize_compressed_tensors(w, rows, cols, gs, DType::BF16),
              reference_compressed_tensors(w, rows, cols, gs, DType::BF16), rows, cols);
}

// ---- decoding ----

// |x / d - e2m1(q)| is at most half the gap between the two e2m1 values around x / d.
float half_step(float a) { return a < 2.0f ? 0.25f : (a < 4.0f ? 0.5f : 1.0f); }

TEST(Nvfp4ModelOpt, DequantizeIsWithinHalfACodeStepOfTheOriginal) {
  const int64_t rows = 300;
  const int64_t cols = 1024;
  const std::vector<float> w = weight_like(rows, cols, 60);
  const float wsf2 = modelopt_weight_scale_2(abs_max(w));
  const Nvfp4Tensor q = nvfp4_quantize_modelopt(w, rows, cols, wsf2);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  nvfp4_dequantize(q.view(), out);
  std::vector<float> block_max(static_cast<size_t>(rows * cols / 16), 0.0f);
  for (int64_t i = 0; i < rows * cols; ++i) {
    float& m = block_max[static_cast<size_t>(i / 16)];
    m = std::max(m, std::fabs(w[static_cast<size_t>(i)]));
  }
  int64_t saturated = 0;
  for (int64_t i = 0; i < rows * cols; ++i) {
    const float x = w[static_cast<size_t>(i)];
    const uint8_t scale_code = q.scales[static_cast<size_t>(i / 16)];
    const float d = e4m3_to_f32(scale_code) * wsf2;
    const float y = out[static_cast<size_t>(i)];
    if (d == 0.0f) {  // scale below e4m3's resolution: the whole block decodes to 0
      ASSERT_EQ(y, 0.0f) << i;
      continue;
    }
    const float a = std::fabs(x) / d;
    if (a > 6.0f) {  // the block scale was rounded down: the element saturates at 6, off by at most
                     // the scale's rounding, 1/16 of it for a normal e4m3 scale
      ++saturated;
      ASSERT_EQ(y, std::copysign(6.0f * d, x)) << i;
      const float exact_scale = block_max[static_cast<size_t>(i / 16)] / (6.0f * wsf2);
      ASSERT_LT(e4m3_to_f32(scale_code), exact_scale) << i;
      if (scale_code >= 0x08) {
        ASSERT_LE(std::fabs(x) - 6.0f * d, 6.0f * d / 16.0f * 1.0001f) << i;
      }
      continue;
    }
    ASSERT_LE(std::fabs(y - x), half_step(a) * d + 1e-6f * (std::fabs(x) + d)) << "element " << i << " x " << x;
  }
  EXPECT_GT(saturated, 0);                 // the branch above was exercised
  EXPECT_LT(saturated, rows * cols / 16);  // about one element in a block whose scale rounded down
}

TEST(Nvfp4, DequantizeRowUsesScaleTimesWeightScale2) {
  // One block: codes 0..15 in order, scale e4m3 1.5 (0x3C), weight_scale_2 0.1: element = e2m1 * (1.5f * 0.1f).
  Bytes packed(8);
  for (int j = 0; j < 8; ++j) packed[j] = static_cast<uint8_t>((2 * j) | ((2 * j + 1) << 4));
  const Bytes scales = {0x3C};
  const Nvfp4View view{packed.data(), scales.data(), 0.1f, 1, 16};
  std::vector<float> out(16);
  nvfp4_dequantize_row(view, 0, out.data());
  const float scale = 1.5f * 0.1f;
  for (int c = 0; c < 16; ++c) EXPECT_EQ(out[c], e2m1_to_f32(static_cast<uint8_t>(c)) * scale) << c;
}

// ---- per-tensor scales ----

TEST(Nvfp4Scales, ModelOptWeightScale2) {
  EXPECT_EQ(modelopt_weight_scale_2(2688.0f), 1.0f);
  EXPECT_EQ(modelopt_weight_scale_2(1.0f), 1.0f / 2688.0f);
  // The CPU division and CUDA's multiply-by-reciprocal part ways on the last bit for this amax.
  const float amax = 0x1.000002p+0f;
  EXPECT_EQ(modelopt_weight_scale_2(amax), 0x1.861864p-12f);
  EXPECT_EQ(modelopt_weight_scale_2_cuda(amax), 0x1.861866p-12f);
  EXPECT_EQ(modelopt_weight_scale_2_cuda(amax), amax * (1.0f / 2688.0f));
}

TEST(Nvfp4Scales, CompressedTensorsGlobalScaleGoesThroughTheReciprocal) {
  // torch evaluates 2688.0 / amax as amax.reciprocal() * 2688: two roundings, which differ from one
  // division for this amax.
  const float amax = 0x1.00003p+0f;
  EXPECT_EQ(compressed_tensors_global_scale(amax), (1.0f / amax) * 2688.0f);
  EXPECT_EQ(compressed_tensors_global_scale(amax), 2687.99219f);
  EXPECT_NE(compressed_tensors_global_scale(amax), 2688.0f / amax);
  EXPECT_EQ(compressed_tensors_global_scale(0.0f), std::numeric_limits<float>::infinity());
  // BF16 observer: 1 / 1.0078125 = 0.99225 -> bf16 0.9921875; x 2688 = 2667 -> bf16 (step 16) 2672.
  EXPECT_EQ(compressed_tensors_global_scale(1.0078125f, DType::BF16), 2672.0f);
  EXPECT_EQ(compressed_tensors_global_scale(1.0078125f, DType::F32), (1.0f / 1.0078125f) * 2688.0f);
  // F16 observer: 1 / 0.04 = 25, x 2688 = 67200 > 65504: the scale overflows to Inf in fp16.
  EXPECT_EQ(compressed_tensors_global_scale(0.04f, DType::F16), std::numeric_limits<float>::infinity());
}

TEST(Nvfp4Scales, WeightScale2IsTheFp32ReciprocalOfTheGlobalScale) {
  std::mt19937 rng(70);
  std::uniform_real_distribution<float> log_amax(-10.0f, 10.0f);
  for (int i = 0; i < 2000; ++i) {
    const float amax = std::exp2(log_amax(rng));
    const float gs = compressed_tensors_global_scale(amax);
    const std::vector<float> w(16, amax);
    const Nvfp4Tensor q = nvfp4_quantize_compressed_tensors(w, 1, 16, gs);
    ASSERT_EQ(q.weight_scale_2, 1.0f / gs);
    // 1 / (float(1/amax) * 2688) stays within 2 ulp of ModelOpt's amax / 2688 (3 roundings against 1).
    const int64_t ulps = std::abs(static_cast<int64_t>(std::bit_cast<uint32_t>(q.weight_scale_2)) -
                                  static_cast<int64_t>(std::bit_cast<uint32_t>(modelopt_weight_scale_2(amax))));
    ASSERT_LE(ulps, 2) << "amax " << amax;
  }
}

TEST(Nvfp4Scales, AbsMaxPropagatesNaN) {
  EXPECT_EQ(abs_max(std::vector<float>{1.0f, -3.0f, 2.0f}), 3.0f);
  EXPECT_EQ(abs_max(std::vector<float>{}), 0.0f);
  EXPECT_TRUE(std::isnan(abs_max(std::vector<float>{1.0f, std::nanf(""), 2.0f})));
}

// ---- errors ----

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no error>";
}

TEST(Nvfp4Errors, ColumnsNotAMultipleOf16) {
  const std::vector<float> w(48, 1.0f);
  const std::string message = error_of([&] { nvfp4_quantize_modelopt(w, 2, 24, 1.0f); });
  EXPECT_NE(message.find("multiple of 16, got [2, 24]"), std::string::npos) << message;
  EXPECT_NE(message.find("keep this tensor unquantized"), std::string::npos) << message;
  EXPECT_NE(error_of([&] { nvfp4_quantize_compressed_tensors(w, 2, 24, 1.0f); }).find("multiple of 16, got [2, 24]"),
            std::string::npos);
}

TEST(Nvfp4Errors, NonFiniteWeightsNameTheFirstElement) {
  std::vector<float> w(4 * 32, 0.5f);
  w[1 * 32 + 5] = std::nanf("");
  EXPECT_NE(error_of([&] { nvfp4_quantize_modelopt(w, 4, 32, 1.0f); }).find("finite weights, got nan at [1, 5]"),
            std::string::npos);
  // With the scale computed from the same data (NaN), the data is still what the message names.
  const float wsf2 = modelopt_weight_scale_2(abs_max(w));
  EXPECT_NE(error_of([&] { nvfp4_quantize_modelopt(w, 4, 32, wsf2); }).find("got nan at [1, 5]"), std::string::npos);
  w[1 * 32 + 5] = 0.5f;
  w[3 * 32 + 31] = -std::numeric_limits<float>::infinity();
  EXPECT_NE(error_of([&] { nvfp4_quantize_compressed_tensors(w, 4, 32, 1.0f); }).find("got -inf at [3, 31]"),
            std::string::npos);
}

TEST(Nvfp4Errors, TheLowestFailingElementIsReportedWhateverTheThreads) {
  const int64_t rows = 512;
  const int64_t cols = 1024;
  std::vector<float> w(static_cast<size_t>(rows * cols), 0.25f);
  w[static_cast<size_t>(500 * cols + 7)] = std::numeric_limits<float>::infinity();
  w[static_cast<size_t>(100 * cols + 900)] = std::nanf("");
  w[static_cast<size_t>(10 * cols + 3)] = -std::nanf("");
  const std::string message = error_of([&] { nvfp4_quantize_modelopt(w, rows, cols, 1.0f); });
  EXPECT_NE(message.find("got nan at [10, 3]"), std::string::npos) << message;
}

TEST(Nvfp4Errors, UnusableTensorScales) {
  const std::vector<float> zeros(32, 0.0f);
  const std::string modelopt = error_of([&] { nvfp4_quantize_modelopt(zeros, 1, 32, modelopt_weight_scale_2(0.0f)); });
  EXPECT_NE(modelopt.find("weight_scale_2 must be finite and positive, got 0"), std::string::npos) << modelopt;
  EXPECT_NE(modelopt.find("all-zero tensor"), std::string::npos) << modelopt;
  const std::string ct =
      error_of([&] { nvfp4_quantize_compressed_tensors(zeros, 1, 32, compressed_tensors_global_scale(0.0f)); });
  EXPECT_NE(ct.find("weight_global_scale must be finite and positive, got inf"), std::string::npos) << ct;
}

TEST(Nvfp4Errors, WeightScale2TooSmallForABlock) {
  // amax 3000 needs weight_scale_2 >= 3000 / 2688; with 1.0 the block scale is 500 >= 480, which torch
  // would turn into NaN.
  std::vector<float> w(32, 1.0f);
  w[20] = 3000.0f;
  const std::string message = error_of([&] { nvfp4_quantize_modelopt(w, 1, 32, 1.0f); });
  EXPECT_NE(message.find("block scale overflows e4m3 (max 448) for block amax 3000 at row 0, block 1"),
            std::string::npos)
      << message;
  // 2770 / 6 = 461.7 still rounds to 448: no error, as in torch.
  w[20] = 2770.0f;
  EXPECT_EQ(nvfp4_quantize_modelopt(w, 1, 32, 1.0f).scales[1], 0x7E);
}

TEST(Nvfp4Errors, SizeAndDtypeMismatches) {
  const std::vector<float> w(30, 1.0f);
  EXPECT_NE(error_of([&] { nvfp4_quantize_modelopt(w, 2, 16, 1.0f); })
                .find("expected 32 weights for shape [2, 16], got 30"),
            std::string::npos);
  const std::vector<float> ok(16, 1.0f);
  EXPECT_NE(error_of([&] { nvfp4_quantize_compressed_tensors(ok, 1, 16, 1.0f, DType::U8); })
                .find("observer dtype must be F32, BF16 or F16, got U8"),
            std::string::npos);
  const Nvfp4Tensor q = nvfp4_quantize_modelopt(ok, 1, 16, 1.0f);
  std::vector<float> out(16);
  EXPECT_NE(error_of([&] { nvfp4_dequantize_row(q.view(), 1, out.data()); })
                .find("row 1 is out of range for shape [1, 16]"),
            std::string::npos);
  std::vector<float> small(15);
  EXPECT_NE(error_of([&] { nvfp4_dequantize(q.view(), small); }).find("expected an output of 16 floats"),
            std::string::npos);
}

TEST(Nvfp4, EmptyTensorsAreFine) {
  const std::vector<float> none;
  const Nvfp4Tensor q = nvfp4_quantize_modelopt(none, 0, 64, 1.0f);
  EXPECT_TRUE(q.packed.empty());
  EXPECT_TRUE(q.scales.empty());
  std::vector<float> out;
  nvfp4_dequantize(q.view(), out);
}

}  // namespace
}  // namespace adallm::quant
