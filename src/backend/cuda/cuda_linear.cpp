// Linear layers on the GPU: NVFP4 weights uploaded and repacked once into the kernels' tile layout
// (kernels/linear), run by the kernel the load-time plan picks for the token count; BF16 weights (an
// unquantized lm_head, MoE routers, BF16 checkpoints) through cuBLAS with fp32 accumulation.
#include <cuda_bf16.h>

#include <string>
#include <vector>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/linear/bf16_gemv.h"
#include "kernels/linear/nvfp4_linear.h"
#include "kernels/norm/rms_norm.h"

namespace adallm::backend::cuda_backend {
namespace {

std::string shape_of(const LinearSource& s) {
  return s.name + " [" + std::to_string(s.out_features) + ", " + std::to_string(s.in_features) + "]";
}

void check_cublas(cublasStatus_t status, const std::string& what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw Error("cuBLAS " + what + " failed: " + cublasGetStatusString(status));
  }
}

// The kind of projection a module name says, for the op profile: "linear q/k/v", "linear down", ...
std::string linear_kind(const std::string& name) {
  for (const char* kind : {"q_proj", "o_proj", "gate_proj", "down_proj", "lm_head"}) {
    if (name.find(kind) != std::string::npos) {
      const std::string k = kind;
      if (k == "q_proj") return "linear q/k/v";
      if (k == "gate_proj") return "linear gate/up";
      if (k == "lm_head") return "lm_head";
      return "linear " + k.substr(0, k.size() - 5);
    }
  }
  if (name.find("embed") != std::string::npos) return "lm_head";
  return name.find("mlp.gate") != std::string::npos ? "linear router" : "linear (other)";
}

}  // namespace

kernels::Nvfp4LinearParams CudaBackend::nvfp4_params(const CudaLinear& w, const Tensor& x, Tensor out,
                                                     kernels::Nvfp4Activation act) const {
  kernels::Nvfp4LinearParams p;
  p.shape = w.shape();
  p.tiles = w.tiles();
  p.row_scale = w.row_scale();
  p.x = x.ptr<__nv_bfloat16>();
  p.x_stride = x.stride;
  p.tokens = x.rows;
  if (out.dtype == DType::BF16) {
    p.out_bf16 = out.ptr<__nv_bfloat16>();
  } else {
    p.out = out.ptr<float>();
  }
  p.out_stride = out.stride;
  p.activation = act;
  return p;
}

CudaLinear::CudaLinear(std::span<const LinearSource> parts, const kernels::Nvfp4LinearPlan& plan, bool gate_up,
                       cudaStream_t stream) {
  if (parts.empty()) throw Error("load_linear: no parts given");
  in_features_ = parts.front().in_features;
  for (const LinearSource& s : parts) {
    if (!name_.empty()) name_ += " + ";
    name_ += s.name;
    if (s.in_features != in_features_) {
      throw Error("load_linear: " + shape_of(s) + " does not share in_features " + std::to_string(in_features_) +
                  " with " + parts.front().name);
    }
    if (s.nvfp4.has_value() != parts.front().nvfp4.has_value()) {
      throw Error("load_linear: " + name_ + " mixes NVFP4 and dense parts, which the CUDA backend does not fuse");
    }
    if (s.out_features <= 0 || s.in_features <= 0) throw Error("load_linear: empty weight " + shape_of(s));
    out_features_ += s.out_features;
  }
  if (gate_up && (parts.size() != 2 || parts[0].out_features != parts[1].out_features)) {
    throw Error("load_experts: " + name_ + ": a gate/up pair needs two parts of equal size");
  }
  nvfp4_ = parts.front().nvfp4.has_value();
  const int64_t n = out_features_, k = in_features_;

  if (!nvfp4_) {
    kind_ = Kind::bf16;
    for (const LinearSource& s : parts) {
      if (s.dense == nullptr) throw Error("load_linear: " + shape_of(s) + " has no data");
      if (s.dense_dtype != DType::BF16) {
        throw Error("load_linear: " + shape_of(s) + " is " + std::string(dtype_name(s.dense_dtype)) +
                    "; the CUDA backend runs dense linear layers in BF16 only")
            .hint("use a BF16 or NVFP4 checkpoint, or --device cpu");
      }
    }
    dense_ = DeviceMemory(static_cast<size_t>(n * k) * 2);
    int64_t row = 0;
    for (const LinearSource& s : parts) {
      ADALLM_CUDA_CHECK(cudaMemcpy(dense_.as<uint16_t>() + row * k, s.dense, static_cast<size_t>(s.out_features * k) * 2,
                                   cudaMemcpyHostToDevice));
      row += s.out_features;
    }
    dense_ptr_ = dense_.get();
    return;
  }

  kind_ = Kind::nvfp4;
  if (k % 16 != 0) throw Error("load_linear: " + name_ + " has in_features " + std::to_string(k) + ", not a multiple of 16");
  std::vector<float> row_scale;
  row_scale.reserve(static_cast<size_t>(n));
  DeviceMemory packed(static_cast<size_t>(n * k / 2)), scales(static_cast<size_t>(n * k / 16));
  int64_t row = 0;
  for (const LinearSource& s : parts) {
    const quant::Nvfp4View& v = *s.nvfp4;
    if (v.rows != s.out_features || v.cols != s.in_features || !v.packed || !v.scales) {
      throw Error("load_linear: " + shape_of(s) + ": its NVFP4 view is [" + std::to_string(v.rows) + ", " +
                  std::to_string(v.cols) + "] or has no data");
    }
    ADALLM_CUDA_CHECK(cudaMemcpy(packed.as<uint8_t>() + row * k / 2, v.packed, static_cast<size_t>(v.rows * k / 2),
                                 cudaMemcpyHostToDevice));
    ADALLM_CUDA_CHECK(cudaMemcpy(scales.as<uint8_t>() + row * k / 16, v.scales, static_cast<size_t>(v.rows * k / 16),
                                 cudaMemcpyHostToDevice));
    row_scale.insert(row_scale.end(), static_cast<size_t>(v.rows), v.weight_scale_2);
    row += s.out_features;
  }
  shape_ = kernels::Nvfp4TiledShape{n, k, gate_up};
  tiles_ = DeviceMemory(static_cast<size_t>(shape_.tile_bytes()));
  row_scale_ = DeviceMemory(static_cast<size_t>(n) * sizeof(float));
  ADALLM_CUDA_CHECK(cudaMemcpy(row_scale_.get(), row_scale.data(), row_scale.size() * sizeof(float), cudaMemcpyHostToDevice));
  DeviceMemory bad(sizeof(int));
  ADALLM_CUDA_CHECK(cudaMemsetAsync(bad.get(), 0, sizeof(int), stream));
  kernels::nvfp4_repack(packed.as<uint8_t>(), scales.as<uint8_t>(), shape_, tiles_.as<uint8_t>(), bad.as<int>(), stream,
                        plan.layout());
  int bad_scales = 0;
  ADALLM_CUDA_CHECK(cudaMemcpyAsync(&bad_scales, bad.get(), sizeof(int), cudaMemcpyDeviceToHost, stream));
  ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream));
  if (bad_scales > 0) {
    throw Error("load_linear: " + name_ + " has " + std::to_string(bad_scales) +
                " negative or NaN block scales (weight_scale); an NVFP4 checkpoint's block scales are finite and >= 0");
  }
}

CudaLinear::CudaLinear(const Tensor& table) {
  if (table.dtype != DType::BF16 || !table.contiguous()) {
    throw Error("linear_from_table: the CUDA backend reads a tied lm_head from a contiguous BF16 table, got " +
                table.describe());
  }
  kind_ = Kind::bf16;
  name_ = "lm_head (tied to the embedding table)";
  out_features_ = table.rows;
  in_features_ = table.cols;
  dense_ptr_ = table.data;
}

std::unique_ptr<Linear> CudaBackend::load_linear(std::span<const LinearSource> parts) {
  return std::make_unique<CudaLinear>(parts, plan_, false, stream_);
}

std::unique_ptr<Linear> CudaBackend::load_gate_up_linear(const LinearSource& gate, const LinearSource& up) {
  if (gate.out_features != up.out_features) {
    throw Error("load_gate_up_linear: " + shape_of(gate) + " and " + shape_of(up) + " differ in size");
  }
  const LinearSource parts[] = {gate, up};
  return std::make_unique<CudaLinear>(parts, plan_, gate.nvfp4.has_value(), stream_);
}

void CudaBackend::gated_linear(const Linear& weight, const Tensor& x, Activation act, Tensor out) {
  const auto* w = dynamic_cast<const CudaLinear*>(&weight);
  if (w == nullptr) throw Error("gated_linear: the weight was not loaded by the CUDA backend");
  if (w->kind() == CudaLinear::Kind::nvfp4) {
    if (!w->shape().gate_up) throw Error("gated_linear: " + w->name() + " was not loaded by load_gate_up_linear");
    const OpScope scope(*this, "linear gate/up + act");
    run_linear(*w, x, out, act == Activation::silu ? kernels::Nvfp4Activation::silu : kernels::Nvfp4Activation::gelu_tanh);
    return;
  }
  // BF16 weights: cuBLAS into a scratch [rows, 2 n], then the activation.
  const int64_t width = w->out_features();
  auto* both = static_cast<__nv_bfloat16*>(gate_up_workspace_.get(static_cast<size_t>(x.rows * width) * 2, stream_));
  const Tensor gate_up{both, DType::BF16, x.rows, width, width};
  {
    const OpScope scope(*this, "linear gate/up");
    run_linear(*w, x, gate_up, kernels::Nvfp4Activation::none);
  }
  gated_activation(gate_up, act, out);
}

std::unique_ptr<Linear> CudaBackend::linear_from_table(const Tensor& table) {
  return std::make_unique<CudaLinear>(table);
}

void CudaBackend::linear(const Linear& weight, const Tensor& x, Tensor out) {
  const auto* w = dynamic_cast<const CudaLinear*>(&weight);
  if (w == nullptr) throw Error("linear: the weight was not loaded by the CUDA backend");
  const OpScope scope(*this, profiling_ ? linear_kind(w->name()) : std::string());
  run_linear(*w, x, out, kernels::Nvfp4Activation::none);
}

void CudaBackend::run_linear(const CudaLinear& w, const Tensor& x, Tensor out, kernels::Nvfp4Activation act,
                             const NormedRows* norm) {
  const std::string op = "linear " + w.name();
  const int64_t width = act == kernels::Nvfp4Activation::none ? w.out_features() : w.out_features() / 2;
  expect_tensor(x, DType::BF16, -1, w.in_features(), op.c_str(), "x");
  if (out.dtype != DType::BF16 && out.dtype != DType::F32) throw Error(op + ": out must be BF16 or F32, got " + out.describe());
  expect_tensor(out, out.dtype, x.rows, width, op.c_str(), "out");
  if (x.rows == 0) return;
  if (w.kind() == CudaLinear::Kind::nvfp4) {
    kernels::Nvfp4LinearParams p = nvfp4_params(w, x, out, act);
    if (norm != nullptr && norm->partials.cols > 0) {
      p.x_partials = norm->partials.ptr<float>();
      p.x_partials_stride = norm->partials.stride;
      p.x_partials_count = static_cast<int>(norm->partials.cols);
      p.x_eps = norm->eps;
    }
    const int64_t bytes = plan_.workspace_bytes(p.shape, p.tokens);
    void* workspace = bytes > 0 ? linear_workspace_.get(static_cast<size_t>(bytes), stream_) : nullptr;
    kernels::nvfp4_linear(plan_, p, workspace, stream_);
    return;
  }
  if (norm != nullptr && norm->partials.cols > 0) throw Error(op + ": cuBLAS reads normalized rows only");
  if (act != kernels::Nvfp4Activation::none) throw Error(op + ": a fused activation needs NVFP4 weights");
  // Few tokens and few rows (at most a row tile of 16 per SM): our BF16 GEMV — an MoE router (128 × 2048)
  // takes 4.0 µs there against 9.0 through cuBLAS; on wide weights cuBLAS streams better (an lm_head of
  // 151,936 × 4096 at batch 1: 553 µs against 433). H100, docs/performance.md, session 13.
  kernels::Bf16GemvParams g;
  g.w = static_cast<const __nv_bfloat16*>(w.dense());
  g.x = x.ptr<__nv_bfloat16>();
  g.x_stride = x.stride;
  g.n = w.out_features();
  g.k = w.in_features();
  g.tokens = x.rows;
  if (out.dtype == DType::BF16) {
    g.out_bf16 = out.ptr<__nv_bfloat16>();
  } else {
    g.out = out.ptr<float>();
  }
  g.out_stride = out.stride;
  if ((g.n + 15) / 16 <= plan_.multiprocessors && kernels::bf16_gemv_supported(g)) {
    kernels::bf16_gemv(g, stream_);
    return;
  }
  // Row-major out [T, N] = x [T, K] · Wᵀ is, column-major, out (N × T) = Wᵀ (N × K, W stored K × N) · x (K × T).
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.out_features()), static_cast<int>(x.rows),
                            static_cast<int>(w.in_features()), &one, w.dense(), CUDA_R_16BF,
                            static_cast<int>(w.in_features()), x.data, CUDA_R_16BF, static_cast<int>(x.stride), &zero,
                            out.data, out.dtype == DType::BF16 ? CUDA_R_16BF : CUDA_R_32F, static_cast<int>(out.stride),
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               op + " (cublasGemmEx)");
}

int64_t CudaBackend::norm_partials(int64_t features) const {
  return fold_norms_ ? (features + kernels::kNvfp4TileRows - 1) / kernels::kNvfp4TileRows : 0;
}

// NVFP4 weights at up to kFoldNormTokens tokens fold the norm into the GEMV's epilogue (one partial sum per
// row tile); anything else runs the linear and add_rms_norm and writes normalized rows.
NormedRows CudaBackend::linear_residual_norm(const Linear& weight, const Tensor& x, Tensor residual,
                                             const Tensor& norm_weight, float eps, NormKind kind, Tensor scratch,
                                             Tensor values, Tensor partials) {
  const auto* w = dynamic_cast<const CudaLinear*>(&weight);
  if (w == nullptr) throw Error("linear_residual_norm: the weight was not loaded by the CUDA backend");
  const int64_t n = w->out_features();
  const bool fused = fold_norms_ && w->kind() == CudaLinear::Kind::nvfp4 && x.rows <= kFoldNormTokens &&
                     x.rows <= plan_.gemv_limit(w->shape());
  check_linear_residual_norm(weight, x, residual, norm_weight, scratch, values, partials,
                             fused ? norm_partials(n) : 0, DType::BF16);
  if (!fused) {
    linear(weight, x, scratch);
    add_rms_norm(scratch, residual, norm_weight, eps, kind, values);
    return NormedRows::plain(values);
  }
  const NormedRows out{values, partials.col_slice(0, norm_partials(n)), eps};
  if (x.rows == 0) return out;
  const OpScope scope(*this, profiling_ ? linear_kind(w->name()) : std::string());
  kernels::Nvfp4LinearParams p = nvfp4_params(*w, x, values, kernels::Nvfp4Activation::none);
  p.residual = residual.ptr<float>();
  p.residual_stride = residual.stride;
  p.norm_weight = norm_weight.ptr<float>();
  p.norm_gemma = kind == NormKind::gemma;
  p.norm_partials = out.partials.ptr<float>();
  p.norm_partials_stride = out.partials.stride;
  kernels::nvfp4_linear(plan_, p, nullptr, stream_);
  return out;
}

void CudaBackend::normed_linear(const Linear& weight, const NormedRows& x, Tensor out) {
  check_normed_rows(x, weight.in_features(), DType::BF16, "normed_linear");
  if (x.partials.cols == 0) return linear(weight, x.values, out);
  const auto* w = dynamic_cast<const CudaLinear*>(&weight);
  if (w == nullptr) throw Error("normed_linear: the weight was not loaded by the CUDA backend");
  if (!applies_norm(*w, x)) return linear(weight, normalized(x), out);
  const OpScope scope(*this, profiling_ ? linear_kind(w->name()) : std::string());
  run_linear(*w, x.values, out, kernels::Nvfp4Activation::none, &x);
}

void CudaBackend::normed_gated_linear(const Linear& gate_up, const NormedRows& x, Activation act, Tensor out) {
  check_normed_rows(x, gate_up.in_features(), DType::BF16, "normed_gated_linear");
  const auto* w = dynamic_cast<const CudaLinear*>(&gate_up);
  if (x.partials.cols > 0 && w != nullptr && applies_norm(*w, x)) {
    if (!w->shape().gate_up) throw Error("normed_gated_linear: " + w->name() + " was not loaded by load_gate_up_linear");
    const OpScope scope(*this, "linear gate/up + act");
    run_linear(*w, x.values, out, act == Activation::silu ? kernels::Nvfp4Activation::silu : kernels::Nvfp4Activation::gelu_tanh,
               &x);
    return;
  }
  gated_linear(gate_up, x.partials.cols == 0 ? x.values : normalized(x), act, out);
}

bool CudaBackend::applies_norm(const CudaLinear& w, const NormedRows& x) const {
  return w.kind() == CudaLinear::Kind::nvfp4 && x.values.rows <= plan_.gemv_limit(w.shape());
}

Tensor CudaBackend::normalized(const NormedRows& x) {
  const OpScope scope(*this, "normalize_rows");
  const int64_t rows = x.values.rows, cols = x.values.cols;
  auto* data = static_cast<__nv_bfloat16*>(normalize_workspace_.get(static_cast<size_t>(rows * cols) * 2, stream_));
  const Tensor out{data, DType::BF16, rows, cols, cols};
  kernels::NormalizeRowsParams p;
  p.rows = rows;
  p.cols = cols;
  p.values = x.values.data;
  p.values_stride = x.values.stride;
  p.partials = x.partials.ptr<float>();
  p.partials_stride = x.partials.stride;
  p.partials_count = static_cast<int>(x.partials.cols);
  p.eps = x.eps;
  p.out = data;
  p.out_stride = cols;
  kernels::normalize_rows(p, stream_);
  return out;
}

}  // namespace adallm::backend::cuda_backend
