// The CPU backend's memory (buffers, uploads, read-back), the batch it works on, and its row-wise ops:
// embedding lookup, the two RMSNorm forms, logit-row gathering and sampling (argmax, and the full chain
// through backend::RowSampler, the reference). Linear, attention and MoE live in cpu_linear.cpp,
// cpu_attention.cpp and cpu_moe.cpp.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <string>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_internal.h"
#include "core/error.h"
#include "core/float_codecs.h"
#include "core/parallel.h"

namespace adallm::backend {

std::unique_ptr<Backend> make_cpu_backend(int num_threads, CpuOptions options) {
  if (num_threads < 0) throw Error("CPU backend: num_threads must be >= 0, got " + std::to_string(num_threads));
  set_num_threads(num_threads);
  return std::make_unique<cpu::CpuBackend>(options);
}

namespace cpu {
namespace {

// Rows per parallel chunk so that a chunk holds at least ~16K elements of work.
int64_t row_chunk(int64_t cols) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(cols, 1)); }

float load_element(const void* data, DType dtype, int64_t index) {
  const auto* bytes = static_cast<const unsigned char*>(data);
  if (dtype == DType::F32) {
    float v;
    std::memcpy(&v, bytes + index * 4, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, bytes + index * 2, 2);
  return dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
}

// One row: inv = 1 / sqrt(mean(x²) + eps), then x·inv·w (llama) or x·inv·(1 + w) (gemma), all fp32.
void norm_row(const float* x, const float* w, int64_t n, float eps, NormKind kind, float* out) {
  float sum = 0.0f;
  for (int64_t i = 0; i < n; ++i) sum += x[i] * x[i];
  const float inv = 1.0f / std::sqrt(sum / static_cast<float>(n) + eps);
  if (kind == NormKind::llama) {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * w[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = x[i] * inv * (1.0f + w[i]);
  }
}

}  // namespace

CpuBuffer::CpuBuffer(int64_t rows, int64_t cols, DType dtype) {
  storage_.reset(new std::byte[static_cast<size_t>(rows * cols) * dtype_size(dtype)]());
  view_ = Tensor{storage_.get(), dtype, rows, cols, cols};
}

std::unique_ptr<Buffer> CpuBackend::alloc(int64_t rows, int64_t cols, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::I32) {
    throw Error("CPU backend alloc: activations are F32 (or I32 for routing ids), got " +
                std::string(dtype_name(dtype)));
  }
  if (rows < 0 || cols < 0) throw Error("CPU backend alloc: negative shape " + shape_text(dtype, rows, cols));
  return std::make_unique<CpuBuffer>(rows, cols, dtype);
}

std::unique_ptr<Buffer> CpuBackend::upload(const HostArray& src, DType dtype) {
  check_upload(src, dtype);
  const int64_t n = src.rows * src.cols;
  auto buffer = std::make_unique<CpuBuffer>(src.rows, src.cols, dtype);
  void* dst = buffer->view().data;
  if (dtype == src.dtype) {
    if (n > 0) std::memcpy(dst, src.data, static_cast<size_t>(n) * dtype_size(dtype));
  } else if (dtype == DType::F32) {
    auto* out = static_cast<float*>(dst);
    parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = load_element(src.data, src.dtype, i);
    });
  } else {  // BF16 from F32 or F16: round to nearest even
    auto* out = static_cast<uint16_t*>(dst);
    parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = f32_to_bf16(load_element(src.data, src.dtype, i));
    });
  }
  return buffer;
}

void CpuBackend::to_host(const Tensor& src, std::span<float> dst) {
  if (src.dtype != DType::F32 && src.dtype != DType::I32 && src.dtype != DType::BF16) {
    throw Error("to_host: expected an F32, I32 or BF16 tensor, got " + src.describe());
  }
  expect_tensor(src, src.dtype, -1, -1, "to_host", "src");
  if (static_cast<int64_t>(dst.size()) != src.numel()) {
    throw Error("to_host: dst holds " + std::to_string(dst.size()) + " floats, src is " + src.describe());
  }
  for (int64_t r = 0; r < src.rows; ++r) {
    float* out = dst.data() + r * src.cols;
    if (src.dtype == DType::F32) {
      std::memcpy(out, src.row<float>(r), static_cast<size_t>(src.cols) * sizeof(float));
    } else if (src.dtype == DType::I32) {
      for (int64_t c = 0; c < src.cols; ++c) out[c] = static_cast<float>(src.row<int32_t>(r)[c]);
    } else {
      for (int64_t c = 0; c < src.cols; ++c) out[c] = bf16_to_f32(src.row<uint16_t>(r)[c]);
    }
  }
}

const ForwardBatch& CpuBackend::batch(const char* op) const {
  if (batch_ == nullptr) throw Error(std::string(op) + ": no forward batch; call set_batch first");
  return *batch_;
}

void CpuBackend::embed(const Tensor& table, int64_t first_id, int64_t vocab_size, float scale, Tensor out) {
  const ForwardBatch& b = batch("embed");
  check_embed(table, first_id, vocab_size, b, out);
  parallel_for(b.num_tokens(), row_chunk(table.cols), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t id = b.token_ids[static_cast<size_t>(t)] - first_id;
      float* o = out.row<float>(t);
      if (id < 0 || id >= table.rows) {  // another rank's row
        std::fill(o, o + table.cols, 0.0f);
      } else if (table.dtype == DType::F32) {
        const float* src = table.row<float>(id);
        for (int64_t c = 0; c < table.cols; ++c) o[c] = src[c] * scale;
      } else {
        const uint16_t* src = table.row<uint16_t>(id);
        for (int64_t c = 0; c < table.cols; ++c) o[c] = bf16_to_f32(src[c]) * scale;
      }
    }
  });
}

void CpuBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, NormKind kind, Tensor out) {
  expect_tensor(x, DType::F32, -1, -1, "rms_norm", "x");
  expect_tensor(weight, DType::F32, 1, x.cols, "rms_norm", "weight");
  expect_tensor(out, DType::F32, x.rows, x.cols, "rms_norm", "out");
  parallel_for(x.rows, row_chunk(x.cols), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) norm_row(x.row<float>(r), weight.ptr<float>(), x.cols, eps, kind, out.row<float>(r));
  });
}

void CpuBackend::add_rms_norm(const Tensor& x, Tensor residual, const Tensor& weight, float eps, NormKind kind,
                              Tensor out) {
  expect_tensor(x, DType::F32, -1, -1, "add_rms_norm", "x");
  expect_tensor(residual, DType::F32, x.rows, x.cols, "add_rms_norm", "residual");
  expect_tensor(weight, DType::F32, 1, x.cols, "add_rms_norm", "weight");
  expect_tensor(out, DType::F32, x.rows, x.cols, "add_rms_norm", "out");
  parallel_for(x.rows, row_chunk(x.cols), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      float* res = residual.row<float>(r);
      const float* xr = x.row<float>(r);
      for (int64_t c = 0; c < x.cols; ++c) res[c] += xr[c];
      norm_row(res, weight.ptr<float>(), x.cols, eps, kind, out.row<float>(r));
    }
  });
}

// The CPU writes normalized rows (the add_rms_norm it always ran), so its fixtures' numbers are unchanged.
NormedRows CpuBackend::linear_residual_norm(const Linear& weight, const Tensor& x, Tensor residual,
                                            const Tensor& norm_weight, float eps, NormKind kind, Tensor scratch,
                                            Tensor values, Tensor partials) {
  check_linear_residual_norm(weight, x, residual, norm_weight, scratch, values, partials, 0, DType::F32);
  linear(weight, x, scratch);
  add_rms_norm(scratch, residual, norm_weight, eps, kind, values);
  return NormedRows::plain(values);
}

namespace {

// Rows in the first NormedRows form (see backend.h): values · s(t), the partials summed in column order.
void normalize_rows(const NormedRows& x, Tensor out) {
  const int64_t n = x.values.cols;
  parallel_for(x.values.rows, row_chunk(n), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* partial = x.partials.row<float>(r);
      float sum = 0.0f;
      for (int64_t j = 0; j < x.partials.cols; ++j) sum += partial[j];
      const float inv = 1.0f / std::sqrt(sum / static_cast<float>(n) + x.eps);
      const float* v = x.values.row<float>(r);
      float* o = out.row<float>(r);
      for (int64_t c = 0; c < n; ++c) o[c] = v[c] * inv;
    }
  });
}

}  // namespace

void CpuBackend::normed_linear(const Linear& weight, const NormedRows& x, Tensor out) {
  check_normed_rows(x, weight.in_features(), DType::F32, "normed_linear");
  if (x.partials.cols == 0) return linear(weight, x.values, out);
  CpuBuffer rows(x.values.rows, x.values.cols, DType::F32);
  normalize_rows(x, rows.view());
  linear(weight, rows.view(), out);
}

void CpuBackend::normed_gated_linear(const Linear& gate_up, const NormedRows& x, Activation act, Tensor out) {
  check_normed_rows(x, gate_up.in_features(), DType::F32, "normed_gated_linear");
  if (x.partials.cols == 0) return gated_linear(gate_up, x.values, act, out);
  CpuBuffer rows(x.values.rows, x.values.cols, DType::F32);
  normalize_rows(x, rows.view());
  gated_linear(gate_up, rows.view(), act, out);
}

void CpuBackend::gather_logit_rows(const Tensor& x, Tensor out) {
  const ForwardBatch& b = batch("gather_logit_rows");
  expect_tensor(x, DType::F32, b.num_tokens(), -1, "gather_logit_rows", "x");
  expect_tensor(out, DType::F32, static_cast<int64_t>(b.logit_rows.size()), x.cols, "gather_logit_rows", "out");
  for (size_t i = 0; i < b.logit_rows.size(); ++i) {
    const int32_t r = b.logit_rows[i];
    if (r < 0 || r >= x.rows) {
      throw Error("gather_logit_rows: logit row " + std::to_string(r) + " is not one of " + std::to_string(x.rows) +
                  " tokens");
    }
    std::memmove(out.row<float>(static_cast<int64_t>(i)), x.row<float>(r), static_cast<size_t>(x.cols) * sizeof(float));
  }
}

void CpuBackend::mask_logits(Tensor logits, std::span<const uint32_t> bitmask) {
  check_mask_logits(logits, bitmask);
  const int64_t words = (logits.cols + 31) / 32;
  for (int64_t r = 0; r < logits.rows; ++r) {
    float* row = logits.row<float>(r);
    const uint32_t* mask = bitmask.data() + r * words;
    for (int64_t i = 0; i < logits.cols; ++i) {
      if (!((mask[i / 32] >> (i % 32)) & 1u)) row[i] = -std::numeric_limits<float>::infinity();
    }
  }
}

void CpuBackend::argmax_rows(const Tensor& logits, Tensor ids) {
  check_argmax_rows(logits, ids);
  for (int64_t r = 0; r < logits.rows; ++r) {
    const float* row = logits.row<float>(r);
    int32_t best = kArgmaxNoFinite;
    float best_value = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < logits.cols; ++i) {
      const float v = row[i];
      if (!(v < std::numeric_limits<float>::infinity())) {  // NaN or +inf
        best = kArgmaxNonFinite;
        break;
      }
      if (v > best_value) {  // strict: the lowest index wins a tie
        best_value = v;
        best = static_cast<int32_t>(i);
      }
    }
    ids.row<int32_t>(r)[0] = best;
  }
}

void CpuBackend::copy(const Tensor& src, Tensor dst) {
  check_copy(src, dst);
  const size_t bytes = static_cast<size_t>(src.cols) * dtype_size(src.dtype);
  for (int64_t r = 0; r < src.rows; ++r) {
    std::memmove(static_cast<std::byte*>(dst.data) + r * dst.stride * static_cast<int64_t>(dtype_size(dst.dtype)),
                 static_cast<const std::byte*>(src.data) + r * src.stride * static_cast<int64_t>(dtype_size(src.dtype)), bytes);
  }
}

// The reference: the normalizer in double, the top entries by a partial sort of (logit desc, id asc).
void CpuBackend::logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, Tensor chosen, Tensor top_ids,
                               Tensor top_logprobs) {
  check_logprobs_rows(logits, ids, top_n, chosen, top_ids, top_logprobs);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<int32_t>& order = logprob_order_;
  order.resize(static_cast<size_t>(logits.cols));
  for (int64_t r = 0; r < logits.rows; ++r) {
    const std::span<const float> row(logits.row<float>(r), static_cast<size_t>(logits.cols));
    const int32_t id = ids.row<int32_t>(r)[0];
    if (row_fault(row) != RowFault::none) {
      chosen.row<float>(r)[0] = nan;
      for (int64_t j = 0; j < top_n; ++j) top_ids.row<int32_t>(r)[j] = -1, top_logprobs.row<float>(r)[j] = nan;
      continue;
    }
    double max = -std::numeric_limits<double>::infinity();
    for (float v : row) max = std::max(max, static_cast<double>(v));
    double sum = 0.0;
    for (float v : row) sum += std::exp(static_cast<double>(v) - max);
    const double lse = max + std::log(sum);
    const auto logprob = [&](int32_t i) { return static_cast<float>(static_cast<double>(row[static_cast<size_t>(i)]) - lse); };
    chosen.row<float>(r)[0] = id >= 0 && id < logits.cols ? logprob(id) : nan;
    if (top_n == 0) continue;
    for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
    const int64_t n = std::min(top_n, logits.cols);
    std::partial_sort(order.begin(), order.begin() + n, order.end(), [&](int32_t a, int32_t b) {
      const float va = row[static_cast<size_t>(a)], vb = row[static_cast<size_t>(b)];
      return va > vb || (va == vb && a < b);
    });
    for (int64_t j = 0; j < top_n; ++j) {
      top_ids.row<int32_t>(r)[j] = j < n ? order[static_cast<size_t>(j)] : -1;
      top_logprobs.row<float>(r)[j] = j < n ? logprob(order[static_cast<size_t>(j)]) : nan;
    }
  }
}

void CpuBackend::sample_rows(Tensor logits, std::span<const SamplingRow> rows, Tensor ids) {
  check_sample_rows(logits, rows, ids);
  const auto vocab_size = static_cast<size_t>(logits.cols);
  for (int64_t r = 0; r < logits.rows; ++r) {
    float* values = logits.row<float>(r);
    const SamplingRow& row = rows[static_cast<size_t>(r)];
    int32_t& id = ids.row<int32_t>(r)[0];
    // Refused rows become codes, as in argmax_rows, rather than the RowSampler's errors: the engine fails
    // that one request and the batch goes on.
    const RowFault fault = row_fault({values, vocab_size});
    if (fault != RowFault::none) {
      id = fault == RowFault::non_finite ? kArgmaxNonFinite : kArgmaxNoFinite;
      continue;
    }
    id = sampler_.sample({values, vocab_size}, row);
    if (!row.penalized()) continue;
    // Penalties touch only the listed tokens; the sampler drew from their double values, the tensor gets
    // them rounded to fp32.
    const std::span<const double> penalized = sampler_.penalized_logits();
    for (int32_t token : row.prompt_tokens) values[token] = static_cast<float>(penalized[static_cast<size_t>(token)]);
    for (int32_t token : row.output_tokens) values[token] = static_cast<float>(penalized[static_cast<size_t>(token)]);
  }
}

}  // namespace cpu
}  // namespace adallm::backend
