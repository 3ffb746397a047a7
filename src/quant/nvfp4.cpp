// NVFP4 decode and the two encoders AdaLLM writes, each repeating its reference's fp32 operations in the
// reference's order so that our bytes equal the reference's bytes; every step cites where it comes from.
// Leaves reading and writing checkpoints, the choice of a fused group's scale and kernel repacking to
// model/ and backend/. Scalar codecs (e4m3, e2m1, bf16, fp16) are core/float_codecs.
#include "quant/nvfp4.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/float_codecs.h"

namespace adallm::quant {
namespace {

constexpr int64_t kBlock = kNvfp4GroupSize;
// Below this many elements a thread costs more than it saves.
constexpr int64_t kMinElementsPerThread = int64_t{1} << 16;

std::string format_float(float value) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(value));
  return buf;
}

std::string shape_text(int64_t rows, int64_t cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}

// The first problem a worker met. Keyed by flat element index, so the error reported is the lowest one
// whatever the thread split was.
struct Failure {
  int64_t index = std::numeric_limits<int64_t>::max();
  std::string message;
  std::string hint;
  bool failed() const { return index != std::numeric_limits<int64_t>::max(); }
};

// Runs fn(row_begin, row_end) -> Failure over contiguous row ranges, one per thread. Workers never
// throw (no exception may cross a thread); the lowest-indexed failure is returned.
template <typename RowFn>
Failure for_row_ranges(int64_t rows, int64_t cols, const RowFn& fn) {
  const int64_t hardware = std::max<int64_t>(1, std::thread::hardware_concurrency());
  const int64_t by_size = std::max<int64_t>(1, rows * std::max<int64_t>(cols, 1) / kMinElementsPerThread);
  const int64_t num_threads = std::min({hardware, by_size, std::max<int64_t>(rows, 1)});
  if (num_threads <= 1) return fn(0, rows);
  std::vector<Failure> failures(static_cast<size_t>(num_threads));
  std::vector<std::thread> threads;
  for (int64_t t = 0; t < num_threads; ++t) {
    const int64_t begin = rows * t / num_threads;
    const int64_t end = rows * (t + 1) / num_threads;
    Failure& slot = failures[static_cast<size_t>(t)];
    auto work = [&fn, &slot, begin, end] {
      try {
        slot = fn(begin, end);
      } catch (const std::exception& e) {  // only allocation can throw here
        slot = Failure{begin, std::string("NVFP4 worker failed: ") + e.what(), ""};
      }
    };
    try {
      threads.emplace_back(work);
    } catch (const std::system_error&) {
      work();  // no thread to be had: do this range here
    }
  }
  for (std::thread& thread : threads) thread.join();
  return *std::min_element(failures.begin(), failures.end(),
                           [](const Failure& a, const Failure& b) { return a.index < b.index; });
}

void check_shape(std::span<const float> weights, int64_t rows, int64_t cols) {
  if (rows < 0 || cols < 0) throw Error("NVFP4 quantization needs a non-negative shape, got " + shape_text(rows, cols));
  if (cols % kBlock != 0) {
    throw Error("NVFP4 quantization needs a column count that is a multiple of 16, got " + shape_text(rows, cols))
        .hint("NVFP4 shares one scale among 16 consecutive input elements; keep this tensor unquantized");
  }
  if (cols > 0 && rows > std::numeric_limits<int64_t>::max() / cols) {
    throw Error("NVFP4 quantization: shape " + shape_text(rows, cols) + " overflows");
  }
  if (static_cast<int64_t>(weights.size()) != rows * cols) {
    throw Error("NVFP4 quantization expected " + std::to_string(rows * cols) + " weights for shape " +
                shape_text(rows, cols) + ", got " + std::to_string(weights.size()));
  }
}

Failure non_finite_at(const float* row_data, int64_t row, int64_t col, int64_t cols) {
  const float x = row_data[col];
  const char* what = std::isnan(x) ? "nan" : (x < 0.0f ? "-inf" : "inf");
  return Failure{row * cols + col,
                 std::string("NVFP4 quantization needs finite weights, got ") + what + " at " + shape_text(row, col),
                 "the source checkpoint is damaged or was saved mid-divergence"};
}

Failure find_non_finite(std::span<const float> weights, int64_t rows, int64_t cols) {
  return for_row_ranges(rows, cols, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t r = row_begin; r < row_end; ++r) {
      const float* row_data = weights.data() + r * cols;
      for (int64_t c = 0; c < cols; ++c) {
        if (!std::isfinite(row_data[c])) return non_finite_at(row_data, r, c, cols);
      }
    }
    return Failure{};
  });
}

// A block's scale, as the e4m3 code written to the file and the fp32 divisor the elements meet.
struct BlockScale {
  uint8_t code;
  float divisor;
};

// The loop both formats share: per 16-block, amax -> (scale code, divisor) by `scale_of`, then each
// element x -> e2m1 code of x / divisor, two codes per byte with the even column in the low nibble.
// scale_of(block_amax, BlockScale&) returns false when the scale cannot be encoded.
template <typename ScaleOf>
Failure encode_rows(std::span<const float> weights, int64_t cols, Nvfp4Tensor& out, const ScaleOf& scale_of,
                    int64_t row_begin, int64_t row_end) {
  const int64_t num_blocks = cols / kBlock;
  for (int64_t r = row_begin; r < row_end; ++r) {
    const float* row_data = weights.data() + r * cols;
    uint8_t* packed = out.packed.data() + r * (cols / 2);
    uint8_t* scales = out.scales.data() + r * num_blocks;
    for (int64_t b = 0; b < num_blocks; ++b) {
      const float* x = row_data + b * kBlock;
      float block_amax = 0.0f;
      for (int64_t i = 0; i < kBlock; ++i) {
        if (!std::isfinite(x[i])) return non_finite_at(row_data, r, b * kBlock + i, cols);
        block_amax = std::max(block_amax, std::fabs(x[i]));
      }
      BlockScale scale{};
      if (!scale_of(block_amax, scale)) {
        return Failure{r * cols + b * kBlock,
                       "NVFP4 block scale overflows e4m3 (max 448) for block amax " + format_float(block_amax) +
                           " at row " + std::to_string(r) + ", block " + std::to_string(b),
                       "weight_scale_2 must be at least amax / 2688 of every tensor it scales"};
      }
      scales[b] = scale.code;
      for (int64_t i = 0; i < kBlock; i += 2) {
        const uint8_t even = f32_to_e2m1_modelopt(x[i] / scale.divisor);
        const uint8_t odd = f32_to_e2m1_modelopt(x[i + 1] / scale.divisor);
        packed[(b * kBlock + i) / 2] = static_cast<uint8_t>(even | (odd << 4));
      }
    }
  }
  return Failure{};
}

template <typename ScaleOf>
Nvfp4Tensor encode(std::span<const float> weights, int64_t rows, int64_t cols, float weight_scale_2,
                   const ScaleOf& scale_of) {
  Nvfp4Tensor out;
  out.rows = rows;
  out.cols = cols;
  out.weight_scale_2 = weight_scale_2;
  out.packed.assign(static_cast<size_t>(rows * (cols / 2)), 0);
  out.scales.assign(static_cast<size_t>(rows * (cols / kBlock)), 0);
  const Failure failure = for_row_ranges(rows, cols, [&](int64_t row_begin, int64_t row_end) {
    return encode_rows(weights, cols, out, scale_of, row_begin, row_end);
  });
  if (failure.failed()) throw Error(failure.message).hint(failure.hint);
  return out;
}

// A bad per-tensor scale usually comes from bad data (NaN amax, all zeros): name the data first.
void check_tensor_scale(std::span<const float> weights, int64_t rows, int64_t cols, const char* name,
                        float value) {
  if (std::isfinite(value) && value > 0.0f) return;
  const Failure data = find_non_finite(weights, rows, cols);
  if (data.failed()) throw Error(data.message).hint(data.hint);
  throw Error(std::string("NVFP4 ") + name + " must be finite and positive, got " + format_float(value))
      .hint("an all-zero tensor has amax 0 and no usable scale; keep it unquantized");
}

// The rounding a torch op applies when its tensor operand has the observer's dtype: compute in fp32
// (opmath), round to that dtype.
float round_to(DType observed, float value) {
  switch (observed) {
    case DType::F32: return value;
    case DType::BF16: return bf16_to_f32(f32_to_bf16(value));
    case DType::F16: return f16_to_f32(f32_to_f16(value));
    default:
      throw Error("compressed-tensors observer dtype must be F32, BF16 or F16, got " +
                  std::string(dtype_name(observed)));
  }
}

}  // namespace

float abs_max(std::span<const float> values) {
  float result = 0.0f;
  for (float v : values) {
    if (std::isnan(v)) return v;
    result = std::max(result, std::fabs(v));
  }
  return result;
}

// modelopt/torch/quantization/qtensor/nvfp4_tensor.py (NVIDIA/TensorRT-Model-Optimizer),
// get_weights_scaling_factor_2[_from_quantizer]: `amax.float() / (6.0 * 448.0)`. 6.0 * 448.0 is a Python
// product, exactly 2688; on a CPU tensor torch divides in fp32.
float modelopt_weight_scale_2(float amax) { return amax / 2688.0f; }

// On CUDA, dividing by a CPU scalar is a multiply by its reciprocal (pytorch/pytorch
// aten/src/ATen/native/cuda/BinaryDivTrueKernel.cu, div_true_kernel_cuda: "compute a * reciprocal(b)").
// float(1.0 / 2688.0) in double and 1.0f / 2688.0f are the same float.
float modelopt_weight_scale_2_cuda(float amax) { return amax * (1.0f / 2688.0f); }

// NVFP4QTensor.quantize / get_weights_scaling_factor / _cast_fp4, same file. Step by step:
//   per_block_amax = reduce_block_amax(input).float()           exact: max |x| of the 16
//   per_block_scale = per_block_amax / (6.0 * wsf2)             fp32: 6 * wsf2 rounded first, then a
//                                                               tensor/tensor true division
//   per_block_scale[per_block_scale == 0] = 1.0                 before the cast, so only all-zero blocks
//   per_block_scale.to(torch.float8_e4m3fn)                     f32_to_e4m3_torch (c10 Float8_e4m3fn)
//   scaled = input / (scale.to(float32) * wsf2)                 product rounded to fp32, then divided
//   _cast_fp4(scaled); (q[..., 1::2] << 4) | q[..., 0::2]       f32_to_e2m1_modelopt; even col low nibble
// A block whose scale is nonzero but below half e4m3's smallest subnormal (2^-10) gets code 0, and its
// elements are divided by 0 as in ModelOpt: NaN and Inf land on code 7 (0xF if negative), decoding to 0.
Nvfp4Tensor nvfp4_quantize_modelopt(std::span<const float> weights, int64_t rows, int64_t cols,
                                     float weight_scale_2) {
  check_shape(weights, rows, cols);
  check_tensor_scale(weights, rows, cols, "weight_scale_2", weight_scale_2);
  const float six_wsf2 = 6.0f * weight_scale_2;
  return encode(weights, rows, cols, weight_scale_2, [&](float block_amax, BlockScale& scale) {
    float per_block_scale = block_amax / six_wsf2;
    if (per_block_scale == 0.0f) per_block_scale = 1.0f;
    scale.code = f32_to_e4m3_torch(per_block_scale);
    // torch turns >= 480 into NaN (0x7F); a file with NaN scales is useless, so refuse instead.
    if ((scale.code & 0x7Fu) == 0x7Fu) return false;
    scale.divisor = e4m3_to_f32(scale.code) * weight_scale_2;
    return true;
  });
}

// compressed-tensors src/compressed_tensors/quantization/utils/helpers.py (neuralmagic/ and
// vllm-project/compressed-tensors), generate_gparam: `scale_data.max * quant_data.max / max_val_pos`
// = 2688.0 / tensor, which torch's Tensor.__rtruediv__ evaluates as `self.reciprocal() * other`
// (torch/_tensor.py): 1/amax rounded, then x 2688 rounded, each in the observed dtype; then .to(float32).
// Newer versions clamp amax to float32 tiny first; that changes nothing, as 2688 / tiny overflows anyway.
float compressed_tensors_global_scale(float amax, DType observed) {
  const float a = round_to(observed, amax);
  const float reciprocal = round_to(observed, 1.0f / a);
  return round_to(observed, reciprocal * 2688.0f);
}

float compressed_tensors_global_scale(float amax) { return compressed_tensors_global_scale(amax, DType::F32); }

// compressed-tensors, step by step (helpers.py calculate_qparams; lifecycle/forward.py _quantize;
// quant_args.py round_to_quantized_type_args, FP4_E2M1_DATA.cast_to_fp4;
// compressors/quantized_compressors/fp4_quantized.py pack_fp4_to_uint8):
//   max_val_pos = block max |x|, in the observed dtype          exact
//   scales = max_val_pos / (float(bit_range) / 2) = ... / 6.0   observed dtype (BF16 rounds here)
//   scales = global_scale * scales                              fp32 ([1] fp32 tensor promotes)
//   clamp(scales, -448, 448).to(float8_e4m3fn)                  round_to_quantized_type_dtype
//   torch.where(scales == 0, 0.125, scales)                     _get_dtype_eps(float8_e4m3fn) = 0.125;
//                                                               older versions: the same 0.125
//   scale = scale / global_scale; scaled = x / scale            two fp32 true divisions (tensor/tensor)
//   scaled += zero_point (0)                                    turns -0.0 into +0.0: code 0 either way
//   clamp(scaled, -6, 6); cast_to_fp4 thresholds                <=0.25 -> 0, (0.25,0.75) -> 0.5,
//                                                               [0.75,1.25] -> 1, ..., [3.5,5] -> 4, >5 -> 6:
//                                                               the same buckets and ties as ModelOpt
//   pack: argmin |abs - table| | signbit << 3, low nibble even  f32_to_e2m1_modelopt gives the same code,
//                                                               -0.0 from a tiny negative included
// On CUDA torch computes `max_val_pos / 6.0` as max_val_pos * float(1/6); for an F32 observer that can
// differ from the division here in the last fp32 bit, which only rarely moves an e4m3 scale; for BF16
// and F16 both round to the same value (checked over every finite bf16 and f16 value).
Nvfp4Tensor nvfp4_quantize_compressed_tensors(std::span<const float> weights, int64_t rows, int64_t cols,
                                               float global_scale, DType observed) {
  round_to(observed, 0.0f);  // rejects an unsupported dtype before any work
  check_shape(weights, rows, cols);
  check_tensor_scale(weights, rows, cols, "weight_global_scale", global_scale);
  const uint8_t kZeroScaleCode = f32_to_e4m3_torch(0.125f);
  return encode(weights, rows, cols, 1.0f / global_scale, [&](float block_amax, BlockScale& scale) {
    float scales = global_scale * round_to(observed, round_to(observed, block_amax) / 6.0f);
    scales = std::clamp(scales, -448.0f, 448.0f);
    scale.code = f32_to_e4m3_torch(scales);
    if (e4m3_to_f32(scale.code) == 0.0f) scale.code = kZeroScaleCode;
    scale.divisor = e4m3_to_f32(scale.code) / global_scale;
    return true;
  });
}

Nvfp4Tensor nvfp4_quantize_compressed_tensors(std::span<const float> weights, int64_t rows, int64_t cols,
                                               float global_scale) {
  return nvfp4_quantize_compressed_tensors(weights, rows, cols, global_scale, DType::F32);
}

// NVFP4QTensor.dequantize: `per_block_scale = q_per_block_scale(fp32) * per_block_quant_scale`, then
// e2m1 value * per_block_scale, both in fp32. A NaN scale code (0x7F) decodes to NaN, as it does there.
void nvfp4_dequantize_row(const Nvfp4View& w, int64_t row, float* out) {
  if (w.cols < 0 || w.cols % kBlock != 0) {
    throw Error("NVFP4 tensor needs a column count that is a multiple of 16, got " + shape_text(w.rows, w.cols));
  }
  if (row < 0 || row >= w.rows) {
    throw Error("NVFP4 row " + std::to_string(row) + " is out of range for shape " + shape_text(w.rows, w.cols));
  }
  if (w.cols > 0 && (w.packed == nullptr || w.scales == nullptr || out == nullptr)) {
    throw Error("NVFP4 view of shape " + shape_text(w.rows, w.cols) + " has no data");
  }
  const int64_t num_blocks = w.cols / kBlock;
  const uint8_t* packed = w.packed + row * (w.cols / 2);
  const uint8_t* scales = w.scales + row * num_blocks;
  for (int64_t b = 0; b < num_blocks; ++b) {
    const float scale = e4m3_to_f32(scales[b]) * w.weight_scale_2;
    for (int64_t j = 0; j < kBlock / 2; ++j) {
      const uint8_t byte = packed[b * (kBlock / 2) + j];
      out[b * kBlock + 2 * j] = e2m1_to_f32(byte & 0x0Fu) * scale;
      out[b * kBlock + 2 * j + 1] = e2m1_to_f32(byte >> 4) * scale;
    }
  }
}

void nvfp4_dequantize(const Nvfp4View& w, std::span<float> out) {
  if (w.rows < 0 || w.cols < 0 || (w.cols > 0 && w.rows > std::numeric_limits<int64_t>::max() / w.cols)) {
    throw Error("NVFP4 view has an invalid shape " + shape_text(w.rows, w.cols));
  }
  if (static_cast<int64_t>(out.size()) != w.rows * w.cols) {
    throw Error("NVFP4 dequantize expected an output of " + std::to_string(w.rows * w.cols) + " floats for shape " +
                shape_text(w.rows, w.cols) + ", got " + std::to_string(out.size()));
  }
  if (w.rows == 0) return;
  nvfp4_dequantize_row(w, 0, out.data());  // validates the view once, on this thread
  const Failure failure = for_row_ranges(w.rows, w.cols, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t r = std::max<int64_t>(row_begin, 1); r < row_end; ++r) {
      nvfp4_dequantize_row(w, r, out.data() + r * w.cols);
    }
    return Failure{};
  });
  if (failure.failed()) throw Error(failure.message);
}

}  // namespace adallm::quant
