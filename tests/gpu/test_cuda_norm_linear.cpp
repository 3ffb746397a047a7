// The decode fusion of RMSNorm into the NVFP4 GEMV on the CUDA backend (label `gpu`), against the CPU
// backend's plain ops: linear_residual_norm (o_proj / down adding into the residual and leaving the next
// block's input) feeding normed_linear (q/k/v) and normed_gated_linear (gate/up + act), over token counts
// where the norm is folded into the GEMV's epilogues (up to 8 tokens: partial sums per row tile) and above
// (the GEMV or the GEMM, then add_rms_norm: normalized rows), hidden sizes that are and are not multiples of 64 (the
// GEMV's tail tile), both norm forms, and a BF16 consumer (cuBLAS), which reads the rows made plain.
//
// Both backends get the same bf16-rounded inputs and the same NVFP4 weights. Tolerances: the GPU rounds
// its activations to bf16 (2^-9 relative) and sums in another order, so NMSE ≤ 1e-5 for the residual
// update and the normalized rows and ≤ 1e-4 for the outputs read through another bf16 rounding; an
// indexing or scaling error (a wrong row's scale, a tile's partial sum missing) gives NMSE of 1e-3 or more.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/error.h"
#include "core/float_codecs.h"
#include "quant/nvfp4.h"
#include "logits_compare.h"

namespace adallm::backend {
namespace {

std::vector<float> random_bf16(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(d(rng)));
  return v;
}

quant::Nvfp4Tensor random_nvfp4(int64_t rows, int64_t cols, std::mt19937& rng) {
  const std::vector<float> w = random_bf16(static_cast<size_t>(rows * cols), rng, -1.0f, 1.0f);
  return quant::nvfp4_quantize_modelopt(w, rows, cols, quant::modelopt_weight_scale_2(quant::abs_max(w)));
}

LinearSource source(const std::string& name, const quant::Nvfp4Tensor& w) {
  LinearSource s;
  s.name = name;
  s.out_features = w.rows;
  s.in_features = w.cols;
  s.nvfp4 = w.view();
  return s;
}

using test::nmse;

struct Case {
  int64_t tokens, hidden, k_o, qkv, inter;
  NormKind kind;
};

struct Inputs {
  quant::Nvfp4Tensor o, qkv, gate, up;
  std::vector<uint16_t> dense;  // a BF16 consumer [qkv, hidden]
  std::vector<float> norm_weight, x, residual;
};

struct Outputs {
  std::vector<float> delta;       // residual after - before
  std::vector<float> normalized;  // the NormedRows as plain rows
  std::vector<float> qkv, act, dense;
  int64_t partials = 0;  // columns the backend wrote
};

std::vector<float> read(Backend& b, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  b.to_host(t, v);
  return v;
}

Outputs run(Backend& b, const Case& c, const Inputs& in) {
  const DType dt = b.activation_dtype();
  const int64_t t = c.tokens, n = c.hidden;
  auto o = b.load_linear(std::vector<LinearSource>{source("o_proj", in.o)});
  auto qkv = b.load_linear(std::vector<LinearSource>{source("qkv_proj", in.qkv)});
  auto gate_up = b.load_gate_up_linear(source("gate_proj", in.gate), source("up_proj", in.up));
  LinearSource dense_source;
  dense_source.name = "dense_proj";
  dense_source.out_features = c.qkv;
  dense_source.in_features = n;
  dense_source.dense = in.dense.data();
  dense_source.dense_dtype = DType::BF16;
  auto dense = b.load_linear(std::vector<LinearSource>{dense_source});

  auto norm_weight = b.upload(HostArray{"norm", in.norm_weight.data(), DType::F32, 1, n}, DType::F32);
  auto x = b.upload(HostArray{"x", in.x.data(), DType::F32, t, c.k_o}, dt);
  auto residual = b.upload(HostArray{"residual", in.residual.data(), DType::F32, t, n}, DType::F32);
  auto scratch = b.alloc(t, n, dt);
  auto values = b.alloc(t, n, dt);
  const int64_t p = b.norm_partials(n);
  auto partials = p > 0 ? b.alloc(t, p, DType::F32) : nullptr;
  auto qkv_out = b.alloc(t, c.qkv, dt);
  auto act_out = b.alloc(t, c.inter, dt);
  auto dense_out = b.alloc(t, c.qkv, dt);

  const float eps = 1e-6f;
  const NormedRows normed = b.linear_residual_norm(*o, x->view(), residual->view(), norm_weight->view(), eps, c.kind,
                                                   scratch->view(), values->view(), partials ? partials->view() : Tensor{});
  b.normed_linear(*qkv, normed, qkv_out->view());
  b.normed_gated_linear(*gate_up, normed, Activation::silu, act_out->view());
  b.normed_linear(*dense, normed, dense_out->view());

  Outputs out;
  out.partials = normed.partials.cols;
  out.delta = read(b, residual->view());
  for (size_t i = 0; i < out.delta.size(); ++i) out.delta[i] -= in.residual[i];
  out.normalized = read(b, normed.values);
  if (normed.partials.cols > 0) {
    const std::vector<float> sums = read(b, normed.partials);
    for (int64_t r = 0; r < t; ++r) {
      double sum = 0.0;
      for (int64_t j = 0; j < normed.partials.cols; ++j) sum += sums[static_cast<size_t>(r * normed.partials.cols + j)];
      const double s = 1.0 / std::sqrt(sum / double(n) + eps);
      for (int64_t col = 0; col < n; ++col) out.normalized[static_cast<size_t>(r * n + col)] *= static_cast<float>(s);
    }
  }
  out.qkv = read(b, qkv_out->view());
  out.act = read(b, act_out->view());
  out.dense = read(b, dense_out->view());
  return out;
}

class CudaNormLinear : public ::testing::TestWithParam<Case> {};

TEST_P(CudaNormLinear, MatchesTheCpuBackend) {
  const Case c = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(c.tokens * 131 + c.hidden));
  Inputs in;
  in.o = random_nvfp4(c.hidden, c.k_o, rng);
  in.qkv = random_nvfp4(c.qkv, c.hidden, rng);
  in.gate = random_nvfp4(c.inter, c.hidden, rng);
  in.up = random_nvfp4(c.inter, c.hidden, rng);
  for (float v : random_bf16(static_cast<size_t>(c.qkv * c.hidden), rng, -0.1f, 0.1f)) in.dense.push_back(f32_to_bf16(v));
  // Gemma's weights are stored zero-centred, Llama's around 1.
  in.norm_weight = random_bf16(static_cast<size_t>(c.hidden), rng, c.kind == NormKind::gemma ? -0.5f : 0.5f,
                               c.kind == NormKind::gemma ? 0.5f : 1.5f);
  in.x = random_bf16(static_cast<size_t>(c.tokens * c.k_o), rng, -1.0f, 1.0f);
  in.residual = random_bf16(static_cast<size_t>(c.tokens * c.hidden), rng, -4.0f, 4.0f);

  auto cpu = make_cpu_backend(2);
  auto cuda = make_cuda_backend();
  const Outputs want = run(*cpu, c, in);
  const Outputs got = run(*cuda, c, in);

  // The CUDA backend folds the norm into the GEMV's epilogues at small decode batches (up to 8 tokens): this
  // test must see both forms.
  if (c.tokens <= 8) {
    EXPECT_EQ(got.partials, (c.hidden + 15) / 16) << "the fused form (one partial per row tile)";
  } else if (c.tokens > 64) {
    EXPECT_EQ(got.partials, 0) << "normalized rows above the GEMV's range";
  }
  EXPECT_EQ(want.partials, 0);
  EXPECT_LE(nmse(got.delta, want.delta), 1e-5) << "residual update";
  EXPECT_LE(nmse(got.normalized, want.normalized), 1e-5) << "normalized rows";
  EXPECT_LE(nmse(got.qkv, want.qkv), 1e-4) << "normed_linear";
  EXPECT_LE(nmse(got.act, want.act), 1e-4) << "normed_gated_linear";
  EXPECT_LE(nmse(got.dense, want.dense), 1e-4) << "normed_linear on a BF16 weight";
}

INSTANTIATE_TEST_SUITE_P(Shapes, CudaNormLinear,
                         ::testing::Values(Case{1, 1024, 512, 384, 256, NormKind::llama},
                                           Case{1, 208, 96, 80, 48, NormKind::gemma},
                                           Case{3, 208, 1024, 160, 112, NormKind::llama},
                                           Case{8, 1024, 512, 384, 256, NormKind::gemma},
                                           Case{17, 336, 128, 96, 64, NormKind::llama},
                                           Case{32, 1024, 512, 384, 256, NormKind::llama},
                                           Case{100, 1024, 512, 384, 256, NormKind::llama},
                                           Case{100, 208, 96, 80, 48, NormKind::gemma}),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           const Case& c = param.param;
                           return "t" + std::to_string(c.tokens) + "_h" + std::to_string(c.hidden) +
                                  (c.kind == NormKind::gemma ? "_gemma" : "_llama");
                         });

TEST(CudaNormLinear, RefusesPartialsNarrowerThanTheRowTiles) {
  auto b = make_cuda_backend();
  std::mt19937 rng(5);
  const quant::Nvfp4Tensor w = random_nvfp4(256, 64, rng);
  auto o = b->load_linear(std::vector<LinearSource>{source("o_proj", w)});
  auto x = b->alloc(1, 64, DType::BF16);
  auto residual = b->alloc(1, 256, DType::F32);
  auto norm_weight = b->alloc(1, 256, DType::F32);
  auto scratch = b->alloc(1, 256, DType::BF16);
  auto values = b->alloc(1, 256, DType::BF16);
  auto partials = b->alloc(1, 15, DType::F32);  // 16 row tiles
  try {
    b->linear_residual_norm(*o, x->view(), residual->view(), norm_weight->view(), 1e-6f, NormKind::llama, scratch->view(),
                            values->view(), partials->view());
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("partials"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace adallm::backend
