// NVFP4 on the CPU: the one internal representation of a quantized Linear, its exact decode, and the
// two encoders AdaLLM writes: ModelOpt's algorithm bit for bit, and compressed-tensors' algorithm.
// Layout (both formats): packed [rows, cols/2] u8, low nibble = even column; scales [rows, cols/16]
// e4m3fn, row-major, unswizzled. Kernel-specific repacking lives elsewhere.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "core/dtype.h"

namespace adallm::quant {

inline constexpr int64_t kNvfp4GroupSize = 16;

// A quantized weight as stored in a checkpoint, with the per-tensor scale converted to ModelOpt's
// multiplier convention: w[r, c] = e2m1(q[r, c]) * e4m3(scales[r, c/16]) * weight_scale_2.
// (compressed-tensors' weight_global_scale g becomes weight_scale_2 = 1/g at load.)
struct Nvfp4View {
  const uint8_t* packed = nullptr;  // [rows, cols/2] u8
  const uint8_t* scales = nullptr;  // [rows, cols/16] f8 e4m3fn
  float weight_scale_2 = 1.0f;
  int64_t rows = 0;
  int64_t cols = 0;  // multiple of 16
};

struct Nvfp4Tensor {
  std::vector<uint8_t> packed;  // [rows, cols/2]
  std::vector<uint8_t> scales;  // [rows, cols/16]
  float weight_scale_2 = 1.0f;  // ModelOpt convention (multiplier)
  int64_t rows = 0;
  int64_t cols = 0;
  Nvfp4View view() const { return {packed.data(), scales.data(), weight_scale_2, rows, cols}; }
};

// Row r, all columns, to fp32: out has `cols` elements. Computes q * (float(scale) * weight_scale_2) in
// fp32, the order ModelOpt's dequantize uses, so results match it bit for bit.
void nvfp4_dequantize_row(const Nvfp4View& w, int64_t row, float* out);
// The whole tensor: out is [rows, cols] fp32, row-major.
void nvfp4_dequantize(const Nvfp4View& w, std::span<float> out);

// max |x| over the input (NaN propagates: a NaN weight is refused by the encoders).
float abs_max(std::span<const float> values);

// ModelOpt: weight_scale_2 = float32(amax) / 2688 (6 * 448), a true fp32 division: what ModelOpt
// computes when the quantizer's amax lives on the CPU.
float modelopt_weight_scale_2(float amax);
// The same on a CUDA amax (ModelOpt's usual export): torch divides a CUDA tensor by a Python scalar as a
// multiply by the fp32 reciprocal, amax * float(1/2688), which differs in the last bit for ~22% of amax.
float modelopt_weight_scale_2_cuda(float amax);

// ModelOpt's NVFP4QTensor.quantize for a [rows, cols] fp32 tensor (the exact upcast of bf16/fp16
// weights) with a given weight_scale_2 (from modelopt_weight_scale_2 of this tensor's amax, or of a
// fused group's max amax): block scale = e4m3_torch(block_amax / (6 * weight_scale_2)), an all-zero block
// gets 1.0; element = e2m1_modelopt(x / (float(scale) * weight_scale_2)). Multi-threaded over rows.
// Throws adallm::Error if cols % 16 != 0, the input holds NaN/Inf, weight_scale_2 is not finite and > 0
// (an all-zero tensor has amax 0), or a block scale would pass e4m3's range (weight_scale_2 too small).
Nvfp4Tensor nvfp4_quantize_modelopt(std::span<const float> weights, int64_t rows, int64_t cols,
                                     float weight_scale_2);

// compressed-tensors (llm-compressor NVFP4, format nvfp4-pack-quantized) with weight_global_scale
// `global_scale` = 2688 / amax, following its own order of operations. The result carries
// weight_scale_2 = 1 / global_scale for decoding; the caller writes `global_scale` itself to the file.
// Throws adallm::Error as the ModelOpt encoder does, and for a global_scale that is not finite and > 0.
Nvfp4Tensor nvfp4_quantize_compressed_tensors(std::span<const float> weights, int64_t rows, int64_t cols,
                                               float global_scale);
// torch evaluates 2688 / amax as reciprocal(amax) * 2688, two fp32 roundings; amax 0 gives +Inf.
float compressed_tensors_global_scale(float amax);

// llm-compressor's observer takes min/max in the weight's own dtype, so for a BF16 (or F16) model the
// global scale and each block's amax / 6 are rounded to that dtype before meeting fp32 arithmetic.
// `observed` = F32 gives the two functions above; BF16 and F16 follow such a model's arithmetic as read
// from the sources (not yet checked against a torch run). With F16, amax < 0.041 overflows to +Inf.
float compressed_tensors_global_scale(float amax, DType observed);
Nvfp4Tensor nvfp4_quantize_compressed_tensors(std::span<const float> weights, int64_t rows, int64_t cols,
                                               float global_scale, DType observed);

}  // namespace adallm::quant
