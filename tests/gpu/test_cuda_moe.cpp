// The MoE ops of the CUDA backend against the CPU backend (label `gpu`): the BF16 router linear (our BF16
// GEMV up to 32 tokens, cuBLAS above), moe_route on the same logits, and moe_experts with NVFP4 and BF16
// experts at token counts that take every path — the device-sorted grouped GEMVs (up to 1,024 (token, k)
// pairs: 1, 5, 40 and 128 tokens at top-8) and the host-sorted per-expert GEMMs above (150 tokens) — with
// 64 experts, so that some get several tokens (passes of 8 rows), some one and some none.
//
// Tolerances: the router's products are exact in fp32 (bf16 inputs) and only the summation order differs:
// NMSE ≤ 1e-10. Routing on identical logits must choose identical experts (ties are improbable with these
// random logits, and the kernel breaks them like the CPU: the lower index first); weights within 1e-6. The
// experts' outputs: the GPU rounds its activations to bf16 between gate/up and down (2^-9 relative), so
// NMSE ≤ 1e-4; an expert's rows read from another expert or a pair dropped gives NMSE ≥ 1e-2.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/float_codecs.h"
#include "quant/nvfp4.h"
#include "logits_compare.h"

namespace adallm::backend {
namespace {

constexpr int64_t kExperts = 64, kHidden = 256, kInter = 96, kTopK = 8;

std::vector<float> random_bf16(size_t n, std::mt19937& rng, float lo, float hi) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = bf16_to_f32(f32_to_bf16(d(rng)));
  return v;
}

using test::nmse;

// Every expert's weights, in both forms the loaders take.
struct ExpertWeights {
  std::vector<std::vector<float>> gate, up, down;               // fp32 values (bf16-exact)
  std::vector<std::vector<uint16_t>> gate16, up16, down16;      // the same as bf16
  std::vector<quant::Nvfp4Tensor> gate4, up4, down4;            // quantized
  std::vector<uint16_t> router;                                 // [kExperts, kHidden] bf16
};

ExpertWeights make_weights(std::mt19937& rng) {
  ExpertWeights w;
  const auto bf16 = [](const std::vector<float>& v) {
    std::vector<uint16_t> out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = f32_to_bf16(v[i]);
    return out;
  };
  const auto quantize = [](const std::vector<float>& v, int64_t rows, int64_t cols) {
    return quant::nvfp4_quantize_modelopt(v, rows, cols, quant::modelopt_weight_scale_2(quant::abs_max(v)));
  };
  for (int64_t e = 0; e < kExperts; ++e) {
    w.gate.push_back(random_bf16(kInter * kHidden, rng, -0.2f, 0.2f));
    w.up.push_back(random_bf16(kInter * kHidden, rng, -0.2f, 0.2f));
    w.down.push_back(random_bf16(kHidden * kInter, rng, -0.2f, 0.2f));
    w.gate16.push_back(bf16(w.gate.back()));
    w.up16.push_back(bf16(w.up.back()));
    w.down16.push_back(bf16(w.down.back()));
    w.gate4.push_back(quantize(w.gate.back(), kInter, kHidden));
    w.up4.push_back(quantize(w.up.back(), kInter, kHidden));
    w.down4.push_back(quantize(w.down.back(), kHidden, kInter));
  }
  w.router = bf16(random_bf16(kExperts * kHidden, rng, -0.3f, 0.3f));
  return w;
}

LinearSource source(const std::string& name, int64_t rows, int64_t cols, const quant::Nvfp4Tensor* q,
                    const std::vector<uint16_t>* dense) {
  LinearSource s;
  s.name = name;
  s.out_features = rows;
  s.in_features = cols;
  if (q != nullptr) {
    s.nvfp4 = q->view();
  } else {
    s.dense = dense->data();
    s.dense_dtype = DType::BF16;
  }
  return s;
}

struct Outputs {
  std::vector<float> logits, ids, weights, out;
};

std::vector<float> read(Backend& b, const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  b.to_host(t, v);
  return v;
}

Outputs run(Backend& b, const ExpertWeights& w, bool nvfp4, const std::vector<float>& x_values,
            const std::vector<float>& logits_in, int64_t tokens) {
  std::vector<ExpertSource> sources(static_cast<size_t>(kExperts));
  for (size_t e = 0; e < sources.size(); ++e) {
    sources[e].gate_proj = source("gate_proj", kInter, kHidden, nvfp4 ? &w.gate4[e] : nullptr, &w.gate16[e]);
    sources[e].up_proj = source("up_proj", kInter, kHidden, nvfp4 ? &w.up4[e] : nullptr, &w.up16[e]);
    sources[e].down_proj = source("down_proj", kHidden, kInter, nvfp4 ? &w.down4[e] : nullptr, &w.down16[e]);
  }
  auto experts = b.load_experts(sources);
  auto router = b.load_linear(std::vector<LinearSource>{source("router", kExperts, kHidden, nullptr, &w.router)});
  auto x = b.upload(HostArray{"x", x_values.data(), DType::F32, tokens, kHidden}, b.activation_dtype());
  auto logits = b.alloc(tokens, kExperts, DType::F32);
  b.linear(*router, x->view(), logits->view());
  // Routing from the same logits on both backends (the router's own small differences could flip a choice).
  auto same_logits = b.upload(HostArray{"logits", logits_in.data(), DType::F32, tokens, kExperts}, DType::F32);
  auto ids = b.alloc(tokens, kTopK, DType::I32);
  auto weights = b.alloc(tokens, kTopK, DType::F32);
  b.moe_route(same_logits->view(), kTopK, /*renormalize=*/true, ids->view(), weights->view());
  auto out = b.alloc(tokens, kHidden, b.activation_dtype());
  b.moe_experts(*experts, x->view(), ids->view(), weights->view(), Activation::silu, out->view());
  return Outputs{read(b, logits->view()), read(b, ids->view()), read(b, weights->view()), read(b, out->view())};
}

class CudaMoe : public ::testing::TestWithParam<int64_t> {};

TEST_P(CudaMoe, MatchesTheCpuBackend) {
  const int64_t tokens = GetParam();
  std::mt19937 rng(static_cast<uint32_t>(1000 + tokens));
  const ExpertWeights w = make_weights(rng);
  const std::vector<float> x = random_bf16(static_cast<size_t>(tokens * kHidden), rng, -1.0f, 1.0f);
  const std::vector<float> logits = random_bf16(static_cast<size_t>(tokens * kExperts), rng, -3.0f, 3.0f);
  auto cpu = make_cpu_backend(2);
  auto cuda = make_cuda_backend();
  for (const bool nvfp4 : {true, false}) {
    SCOPED_TRACE(nvfp4 ? "NVFP4 experts" : "BF16 experts");
    const Outputs want = run(*cpu, w, nvfp4, x, logits, tokens);
    const Outputs got = run(*cuda, w, nvfp4, x, logits, tokens);
    EXPECT_LE(nmse(got.logits, want.logits), 1e-10) << "router";
    ASSERT_EQ(got.ids, want.ids) << "expert choices";
    for (size_t i = 0; i < want.weights.size(); ++i) ASSERT_NEAR(got.weights[i], want.weights[i], 1e-6) << "weight " << i;
    EXPECT_LE(nmse(got.out, want.out), 1e-4) << "experts' combined output";
  }
}

INSTANTIATE_TEST_SUITE_P(Tokens, CudaMoe, ::testing::Values(1, 5, 40, 128, 150),
                         [](const ::testing::TestParamInfo<int64_t>& param) { return "t" + std::to_string(param.param); });

}  // namespace
}  // namespace adallm::backend
