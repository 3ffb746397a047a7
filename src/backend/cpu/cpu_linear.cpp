// Linear on the CPU: loading (stacking parts along the output, copying NVFP4 packed values and scales
// or dense weights) and y = x W^T. Each weight row is decoded once to fp32 and dotted with every x row,
// so NVFP4 decode costs O(out * in) whatever the token count. Repacking for kernels is cuda/'s business.
#include <algorithm>
#include <array>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"
#include "core/float_codecs.h"
#include "core/parallel.h"
#include "quant/fp8_activations.h"

namespace adallm::backend::cpu {
namespace {

// Weight rows decoded together: each x row loaded from cache serves this many dot products.
constexpr int64_t kTileRows = 4;
// Independent partial sums per dot product: lets the compiler vectorise without reassociating (the
// order is fixed: lane l sums elements l, l + 8, ..., then lanes combine pairwise).
constexpr int64_t kLanes = 8;

const std::array<float, 16>& e2m1_table() {
  static const std::array<float, 16> table = [] {
    std::array<float, 16> t{};
    for (int i = 0; i < 16; ++i) t[static_cast<size_t>(i)] = e2m1_to_f32(static_cast<uint8_t>(i));
    return t;
  }();
  return table;
}

std::string describe_source(const LinearSource& s) {
  return s.name + " [" + std::to_string(s.out_features) + ", " + std::to_string(s.in_features) + "]";
}

LinearPart load_part(const LinearSource& s, int64_t first_row) {
  LinearPart part;
  part.name = s.name;
  part.first_row = first_row;
  part.rows = s.out_features;
  const auto n = static_cast<size_t>(s.out_features * s.in_features);
  if (s.nvfp4) {
    const quant::Nvfp4View& v = *s.nvfp4;
    if (v.rows != s.out_features || v.cols != s.in_features) {
      throw Error("load_linear: " + s.name + " NVFP4 view is [" + std::to_string(v.rows) + ", " +
                  std::to_string(v.cols) + "], the Linear is " + describe_source(s));
    }
    if (s.in_features % quant::kNvfp4GroupSize != 0) {
      throw Error("load_linear: " + describe_source(s) + " is NVFP4 but in_features is not a multiple of 16");
    }
    if (n > 0 && (v.packed == nullptr || v.scales == nullptr)) {
      throw Error("load_linear: " + describe_source(s) + " has no NVFP4 data");
    }
    part.kind = LinearPart::Kind::nvfp4;
    part.packed.assign(v.packed, v.packed + n / 2);
    part.scales.assign(v.scales, v.scales + n / quant::kNvfp4GroupSize);
    part.weight_scale_2 = v.weight_scale_2;
    return part;
  }
  if (n > 0 && s.dense == nullptr) throw Error("load_linear: " + describe_source(s) + " has no weight data");
  const auto* bytes = static_cast<const unsigned char*>(s.dense);
  switch (s.dense_dtype) {
    case DType::BF16:
      part.kind = LinearPart::Kind::bf16;
      part.bf16.resize(n);
      if (n > 0) std::memcpy(part.bf16.data(), bytes, n * 2);
      break;
    case DType::F16:
      part.kind = LinearPart::Kind::f32;
      part.f32.resize(n);
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, bytes + 2 * i, 2);
        part.f32[i] = f16_to_f32(h);
      }
      break;
    case DType::F32:
      part.kind = LinearPart::Kind::f32;
      part.f32.resize(n);
      if (n > 0) std::memcpy(part.f32.data(), bytes, n * 4);
      break;
    default:
      throw Error("load_linear: " + describe_source(s) + " has dense dtype " + std::string(dtype_name(s.dense_dtype)) +
                  ", expected BF16, F16 or F32");
  }
  return part;
}

// kTileRows dot products of one x row against consecutive decoded weight rows w (row stride n); the
// same lane order as dot(), so a row's result does not depend on its tile.
void dot_tile(const float* x, const float* w, int64_t n, float* result) {
  float acc[kTileRows][kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int64_t r = 0; r < kTileRows; ++r) {
      for (int64_t l = 0; l < kLanes; ++l) acc[r][l] += x[i + l] * w[r * n + i + l];
    }
  }
  for (int64_t l = 0; i < n; ++i, ++l) {
    for (int64_t r = 0; r < kTileRows; ++r) acc[r][l] += x[i] * w[r * n + i];
  }
  for (int64_t r = 0; r < kTileRows; ++r) {
    const float* a = acc[r];
    result[r] = ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]));
  }
}

}  // namespace

CpuLinear::CpuLinear(std::span<const LinearSource> parts) {
  if (parts.empty()) throw Error("load_linear: no parts given");
  const LinearSource& first = parts.front();
  int64_t rows = 0;
  for (const LinearSource& s : parts) {
    if (s.out_features < 0 || s.in_features <= 0) throw Error("load_linear: " + describe_source(s) + " has a bad shape");
    if (s.in_features != first.in_features) {
      throw Error("load_linear: " + describe_source(s) + " has in_features " + std::to_string(s.in_features) +
                  ", expected " + std::to_string(first.in_features) + " as in " + describe_source(first));
    }
    if (s.nvfp4.has_value() == (s.dense != nullptr)) {
      throw Error("load_linear: " + describe_source(s) + " must have exactly one of NVFP4 and dense data");
    }
    if (s.nvfp4.has_value() != first.nvfp4.has_value()) {
      throw Error("load_linear: " + describe_source(s) + " is " + (s.nvfp4 ? "NVFP4" : "dense") + " but " +
                  describe_source(first) + " is " + (first.nvfp4 ? "NVFP4" : "dense") +
                  "; a fused Linear must be all one kind");
    }
    parts_.push_back(load_part(s, rows));
    rows += s.out_features;
  }
  for (LinearPart& part : parts_) {  // after the vector stops moving: the parts own their rows
    part.bf16_data = part.bf16.data();
    part.f32_data = part.f32.data();
  }
  out_features_ = rows;
  in_features_ = first.in_features;
  nvfp4_ = first.nvfp4.has_value();
}

CpuLinear::CpuLinear(const Tensor& table) {
  if ((table.dtype != DType::BF16 && table.dtype != DType::F32) || !table.contiguous() || table.rows <= 0 ||
      table.cols <= 0 || table.data == nullptr) {
    throw Error("linear_from_table: expected a contiguous BF16 or F32 [out_features, in_features] table, got " +
                table.describe());
  }
  LinearPart part;
  part.name = "table";
  part.rows = table.rows;
  part.kind = table.dtype == DType::BF16 ? LinearPart::Kind::bf16 : LinearPart::Kind::f32;
  part.bf16_data = table.dtype == DType::BF16 ? table.ptr<uint16_t>() : nullptr;
  part.f32_data = table.dtype == DType::F32 ? table.ptr<float>() : nullptr;
  parts_.push_back(std::move(part));
  out_features_ = table.rows;
  in_features_ = table.cols;
}

void CpuLinear::decode_row(int64_t row, float* out) const {
  const LinearPart* part = nullptr;
  for (const LinearPart& p : parts_) {
    if (row >= p.first_row && row < p.first_row + p.rows) {
      part = &p;
      break;
    }
  }
  if (part == nullptr) throw Error("Linear row " + std::to_string(row) + " out of range " + std::to_string(out_features_));
  const int64_t r = row - part->first_row;
  const int64_t n = in_features_;
  switch (part->kind) {
    case LinearPart::Kind::nvfp4: {
      const auto& lut = e2m1_table();
      const int64_t blocks = n / quant::kNvfp4GroupSize;
      const uint8_t* packed = part->packed.data() + r * (n / 2);
      const uint8_t* scales = part->scales.data() + r * blocks;
      for (int64_t b = 0; b < blocks; ++b) {
        // q * (float(scale) * weight_scale_2): nvfp4_dequantize_row's order, for identical bits.
        const float scale = e4m3_to_f32(scales[b]) * part->weight_scale_2;
        for (int64_t j = 0; j < quant::kNvfp4GroupSize / 2; ++j) {
          const uint8_t byte = packed[b * 8 + j];
          out[b * 16 + 2 * j] = lut[byte & 0x0Fu] * scale;
          out[b * 16 + 2 * j + 1] = lut[byte >> 4] * scale;
        }
      }
      break;
    }
    case LinearPart::Kind::bf16: {
      const uint16_t* src = part->bf16_data + r * n;
      for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(src[i]);
      break;
    }
    case LinearPart::Kind::f32:
      std::memcpy(out, part->f32_data + r * n, static_cast<size_t>(n) * sizeof(float));
      break;
  }
}

void linear_rows(const CpuLinear& w, const float* x, int64_t x_stride, int64_t rows, float* out,
                 int64_t out_stride) {
  const int64_t n = w.in_features();
  const int64_t out_features = w.out_features();
  const int64_t tiles = (out_features + kTileRows - 1) / kTileRows;
  if (rows == 0 || tiles == 0) return;
  // W4A8 emulation: the rows as FP8 e4m3 per token would carry them.
  std::vector<float> quantized;
  if (w.fp8_activations()) {
    quantized.resize(static_cast<size_t>(rows * n));
    for (int64_t r = 0; r < rows; ++r) quant::fp8_e4m3_round_trip_row(x + r * x_stride, n, quantized.data() + r * n);
    x = quantized.data();
    x_stride = n;
  }
  // Enough multiply-adds per chunk (~256K) to pay for a hand-off.
  const int64_t min_tiles = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, rows * n * kTileRows));
  parallel_for(tiles, min_tiles, [&](int64_t begin, int64_t end) {
    std::vector<float> wt(static_cast<size_t>(kTileRows * n), 0.0f);
    float result[kTileRows];
    for (int64_t tile = begin; tile < end; ++tile) {
      const int64_t o0 = tile * kTileRows;
      const int64_t count = std::min(kTileRows, out_features - o0);
      for (int64_t k = 0; k < count; ++k) w.decode_row(o0 + k, wt.data() + k * n);
      if (count < kTileRows) std::fill(wt.begin() + count * n, wt.end(), 0.0f);
      for (int64_t r = 0; r < rows; ++r) {
        dot_tile(x + r * x_stride, wt.data(), n, result);
        float* o = out + r * out_stride + o0;
        for (int64_t k = 0; k < count; ++k) o[k] = result[k];
      }
    }
  });
}

std::unique_ptr<Linear> CpuBackend::load_linear(std::span<const LinearSource> parts) {
  auto linear = std::make_unique<CpuLinear>(parts);
  linear->quantize_activations(options_.fp8_activations);
  return linear;
}

std::unique_ptr<Linear> CpuBackend::load_gate_up_linear(const LinearSource& gate, const LinearSource& up) {
  if (gate.out_features != up.out_features) {
    throw Error("load_gate_up_linear: " + describe_source(gate) + " and " + describe_source(up) + " differ in size");
  }
  const LinearSource parts[] = {gate, up};
  return load_linear(parts);
}

void CpuBackend::gated_linear(const Linear& gate_up, const Tensor& x, Activation act, Tensor out) {
  CpuBuffer both(x.rows, gate_up.out_features(), DType::F32);
  linear(gate_up, x, both.view());
  gated_activation(both.view(), act, out);
}

std::unique_ptr<Linear> CpuBackend::linear_from_table(const Tensor& table) {
  return std::make_unique<CpuLinear>(table);
}

void CpuBackend::linear(const Linear& weight, const Tensor& x, Tensor out) {
  const auto* w = dynamic_cast<const CpuLinear*>(&weight);
  if (w == nullptr) throw Error("linear: the weight was not loaded by the CPU backend");
  expect_tensor(x, DType::F32, -1, w->in_features(), "linear", "x");
  expect_tensor(out, DType::F32, x.rows, w->out_features(), "linear", "out");
  // Each row is read while outputs are written: an aliased out would feed outputs back as inputs.
  if (x.numel() > 0 && x.data == out.data) throw Error("linear: out " + out.describe() + " aliases x");
  linear_rows(*w, x.ptr<float>(), x.stride, x.rows, out.ptr<float>(), out.stride);
}

}  // namespace adallm::backend::cpu
