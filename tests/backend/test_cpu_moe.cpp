// Gated activations (SiLU, tanh-GELU) on hand-worked values, Qwen3-MoE routing (softmax, top-k with
// ties to the lower index, renormalisation) on typed-out logits, and moe_experts against an fp64
// per-token restatement with dense and NVFP4 experts, odd token counts and out aliasing x.
#include <cmath>

#include "core/float_codecs.h"
#include "cpu_test_util.h"
#include "quant/nvfp4.h"

namespace adallm::backend::test {
namespace {

double silu(double g) { return g / (1 + std::exp(-g)); }
double gelu_tanh(double g) { return 0.5 * g * (1 + std::tanh(std::sqrt(2 / M_PI) * (g + 0.044715 * g * g * g))); }

TEST(CpuMoe, GatedActivationHandValues) {
  auto b = cpu();
  // gate (0, 1, -2), up (5, 2, 3): silu(0) = 0, silu(1) = 1/(1+e^-1) = 0.7310586, silu(-2) = -0.2384058;
  // gelu_tanh(1) = 0.8411920, gelu_tanh(-2) = -0.0454023.
  auto gu = upload_f32(*b, {0, 1, -2, 5, 2, 3}, 1, 6);
  auto out = b->alloc(1, 3, DType::F32);
  b->gated_activation(gu->view(), Activation::silu, out->view());
  expect_near_all(read(*b, out->view()), {0.0, 0.7310586 * 2, -0.2384058 * 3}, 1e-6, 1e-7, "silu");
  b->gated_activation(gu->view(), Activation::gelu_tanh, out->view());
  expect_near_all(read(*b, out->view()), {0.0, 0.8411920 * 2, -0.0454023 * 3}, 1e-5, 1e-7, "gelu_tanh");
  // Random rows, odd widths, out written into the gate half (aliasing by column slice).
  const int64_t rows = 7, n = 83;
  const auto xs = random_floats(size_t(rows * 2 * n), 3, -6, 6);
  for (Activation act : {Activation::silu, Activation::gelu_tanh}) {
    auto g = upload_f32(*b, xs, rows, 2 * n);
    std::vector<double> expected;
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t i = 0; i < n; ++i) {
        const double gate = xs[size_t(r * 2 * n + i)], up = xs[size_t(r * 2 * n + n + i)];
        expected.push_back((act == Activation::silu ? silu(gate) : gelu_tanh(gate)) * up);
      }
    }
    b->gated_activation(g->view(), act, g->view().col_slice(0, n));
    expect_near_all(read(*b, g->view().col_slice(0, n)), expected, 1e-5, 1e-6, "random");
  }
  auto odd = b->alloc(1, 5, DType::F32);
  expect_error([&] { b->gated_activation(odd->view(), Activation::silu, out->view()); }, "odd column count");
}

TEST(CpuMoe, RouteSoftmaxTopKAndTies) {
  auto b = cpu();
  // Token 0: logits (0, ln 2, ln 4, ln 2) -> probs (1, 2, 4, 2)/9; top-2 = expert 2 (4/9), then the tie
  // 1 vs 3 goes to 1 (2/9). Token 1: all equal -> experts 0, 1 at 1/4 each.
  const float ln2 = std::log(2.0f), ln4 = std::log(4.0f);
  auto logits = upload_f32(*b, {0, ln2, ln4, ln2, 1, 1, 1, 1}, 2, 4);
  auto ids = b->alloc(2, 2, DType::I32);
  auto weights = b->alloc(2, 2, DType::F32);
  b->moe_route(logits->view(), 2, false, ids->view(), weights->view());
  const int32_t* id = ids->view().ptr<int32_t>();
  EXPECT_EQ(std::vector<int32_t>(id, id + 4), (std::vector<int32_t>{2, 1, 0, 1}));
  expect_near_all(read(*b, weights->view()), {4.0 / 9, 2.0 / 9, 0.25, 0.25}, 1e-6, 0, "softmax weights");
  b->moe_route(logits->view(), 2, true, ids->view(), weights->view());
  expect_near_all(read(*b, weights->view()), {2.0 / 3, 1.0 / 3, 0.5, 0.5}, 1e-6, 0, "renormalized");
  auto ids3 = b->alloc(2, 5, DType::I32);
  auto w3 = b->alloc(2, 5, DType::F32);
  expect_error([&] { b->moe_route(logits->view(), 5, true, ids3->view(), w3->view()); }, "top_k 5");
  auto wrong = b->alloc(2, 2, DType::F32);
  expect_error([&] { b->moe_route(logits->view(), 2, true, wrong->view(), weights->view()); }, "topk_ids expected I32");
}

struct ExpertWeights {
  std::vector<float> gate, up, down;  // decoded fp32
  std::vector<uint16_t> gate_bf16, up_bf16, down_bf16;
  quant::Nvfp4Tensor gate_q, up_q, down_q;
};

TEST(CpuMoe, ExpertsAgainstFp64) {
  auto b = cpu();
  const int64_t num_experts = 5, hidden = 32, inter = 48, top_k = 2;
  for (bool nvfp4 : {false, true}) {
    std::vector<ExpertWeights> ws(num_experts);
    std::vector<ExpertSource> sources(num_experts);
    for (int64_t e = 0; e < num_experts; ++e) {
      ExpertWeights& w = ws[size_t(e)];
      const auto make = [&](int64_t rows, int64_t cols, uint32_t seed, std::vector<float>& decoded,
                            std::vector<uint16_t>& bf16, quant::Nvfp4Tensor& q, const std::string& name) {
        const auto raw = random_floats(size_t(rows * cols), seed, -0.5f, 0.5f);
        LinearSource s;
        s.name = name;
        s.out_features = rows;
        s.in_features = cols;
        decoded.resize(raw.size());
        if (nvfp4) {
          q = quant::nvfp4_quantize_modelopt(raw, rows, cols, quant::modelopt_weight_scale_2(quant::abs_max(raw)));
          quant::nvfp4_dequantize(q.view(), decoded);
          s.nvfp4 = q.view();
        } else {
          bf16.resize(raw.size());
          for (size_t i = 0; i < raw.size(); ++i) decoded[i] = bf16_to_f32(bf16[i] = f32_to_bf16(raw[i]));
          s.dense = bf16.data();
        }
        return s;
      };
      const auto seed = uint32_t(100 * e + 1);
      sources[size_t(e)].gate_proj = make(inter, hidden, seed, w.gate, w.gate_bf16, w.gate_q, "gate");
      sources[size_t(e)].up_proj = make(inter, hidden, seed + 1, w.up, w.up_bf16, w.up_q, "up");
      sources[size_t(e)].down_proj = make(hidden, inter, seed + 2, w.down, w.down_bf16, w.down_q, "down");
    }
    auto experts = b->load_experts(sources);
    EXPECT_EQ(experts->num_experts(), num_experts);
    EXPECT_EQ(experts->moe_intermediate_size(), inter);
    for (int64_t tokens : {1, 7, 83}) {
      const auto xs = random_floats(size_t(tokens * hidden), uint32_t(tokens), -2, 2);
      const auto logits = random_floats(size_t(tokens * num_experts), uint32_t(tokens + 1), -2, 2);
      auto x = upload_f32(*b, xs, tokens, hidden);
      auto lg = upload_f32(*b, logits, tokens, num_experts);
      auto ids = b->alloc(tokens, top_k, DType::I32);
      auto weights = b->alloc(tokens, top_k, DType::F32);
      b->moe_route(lg->view(), top_k, true, ids->view(), weights->view());
      std::vector<double> expected(size_t(tokens * hidden));
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t k = 0; k < top_k; ++k) {
          const int32_t e = ids->view().ptr<int32_t>()[t * top_k + k];
          const double wk = weights->view().ptr<float>()[t * top_k + k];
          const ExpertWeights& w = ws[size_t(e)];
          std::vector<double> h(static_cast<size_t>(inter));
          for (int64_t i = 0; i < inter; ++i) {
            double g = 0, u = 0;
            for (int64_t c = 0; c < hidden; ++c) {
              g += double(xs[size_t(t * hidden + c)]) * w.gate[size_t(i * hidden + c)];
              u += double(xs[size_t(t * hidden + c)]) * w.up[size_t(i * hidden + c)];
            }
            h[size_t(i)] = silu(g) * u;
          }
          for (int64_t c = 0; c < hidden; ++c) {
            double y = 0;
            for (int64_t i = 0; i < inter; ++i) y += h[size_t(i)] * w.down[size_t(c * inter + i)];
            expected[size_t(t * hidden + c)] += wk * y;
          }
        }
      }
      b->moe_experts(*experts, x->view(), ids->view(), weights->view(), Activation::silu, x->view());  // out aliases x
      expect_near_all(read(*b, x->view()), expected, 1e-4, 1e-5, "moe_experts");
    }
  }
}

// W4A8 emulation reaches the experts: NVFP4 experts see FP8-rounded activations (other outputs than the
// default backend's), BF16 experts do not (the same outputs).
TEST(CpuMoe, Fp8ActivationsApplyToNvfp4ExpertsOnly) {
  auto plain = cpu();
  auto w4a8 = make_cpu_backend(0, CpuOptions{.fp8_activations = true});
  const int64_t num_experts = 3, hidden = 32, inter = 48, top_k = 2, tokens = 7;
  for (bool nvfp4 : {true, false}) {
    std::vector<std::vector<float>> raw;
    std::vector<quant::Nvfp4Tensor> q;
    std::vector<std::vector<uint16_t>> bf16;
    raw.reserve(3 * num_experts);
    q.reserve(3 * num_experts);
    bf16.reserve(3 * num_experts);
    const auto make = [&](int64_t rows, int64_t cols, uint32_t seed) {
      raw.push_back(random_floats(size_t(rows * cols), seed, -0.5f, 0.5f));
      LinearSource s;
      s.name = "expert";
      s.out_features = rows;
      s.in_features = cols;
      if (nvfp4) {
        q.push_back(quant::nvfp4_quantize_modelopt(raw.back(), rows, cols,
                                                   quant::modelopt_weight_scale_2(quant::abs_max(raw.back()))));
        s.nvfp4 = q.back().view();
      } else {
        bf16.emplace_back(raw.back().size());
        for (size_t i = 0; i < raw.back().size(); ++i) bf16.back()[i] = f32_to_bf16(raw.back()[i]);
        s.dense = bf16.back().data();
      }
      return s;
    };
    std::vector<ExpertSource> sources(num_experts);
    for (int64_t e = 0; e < num_experts; ++e) {
      sources[size_t(e)].gate_proj = make(inter, hidden, uint32_t(10 * e + 1));
      sources[size_t(e)].up_proj = make(inter, hidden, uint32_t(10 * e + 2));
      sources[size_t(e)].down_proj = make(hidden, inter, uint32_t(10 * e + 3));
    }
    const auto xs = random_floats(size_t(tokens * hidden), 5, -2, 2);
    const auto logits = random_floats(size_t(tokens * num_experts), 6, -2, 2);
    const auto run = [&](Backend& b) {
      auto experts = b.load_experts(sources);
      auto x = upload_f32(b, xs, tokens, hidden);
      auto lg = upload_f32(b, logits, tokens, num_experts);
      auto ids = b.alloc(tokens, top_k, DType::I32);
      auto weights = b.alloc(tokens, top_k, DType::F32);
      b.moe_route(lg->view(), top_k, true, ids->view(), weights->view());
      auto out = b.alloc(tokens, hidden, DType::F32);
      b.moe_experts(*experts, x->view(), ids->view(), weights->view(), Activation::silu, out->view());
      return read(b, out->view());
    };
    if (nvfp4) {
      EXPECT_NE(run(*w4a8), run(*plain));
    } else {
      EXPECT_EQ(run(*w4a8), run(*plain));
    }
  }
}

TEST(CpuMoe, ExpertErrors) {
  auto b = cpu();
  std::vector<uint16_t> w(16 * 16);
  ExpertSource e;
  for (LinearSource* s : {&e.gate_proj, &e.up_proj, &e.down_proj}) {
    s->out_features = 16;
    s->in_features = 16;
    s->dense = w.data();
  }
  e.gate_proj.name = "experts.0.gate_proj";
  e.up_proj.name = "experts.0.up_proj";
  e.down_proj.name = "experts.0.down_proj";
  ExpertSource bad = e;
  bad.down_proj.name = "experts.1.down_proj";
  bad.down_proj.in_features = 8;
  const ExpertSource two[] = {e, bad};
  expect_error([&] { b->load_experts(two); }, "experts.1.down_proj [16, 8]");
  auto experts = b->load_experts({&e, 1});
  auto x = b->alloc(2, 16, DType::F32);
  auto ids = b->alloc(2, 1, DType::I32);
  auto weights = b->alloc(2, 1, DType::F32);
  ids->view().ptr<int32_t>()[1] = 1;
  expect_error([&] { b->moe_experts(*experts, x->view(), ids->view(), weights->view(), Activation::silu, x->view()); },
               "routed to expert 1");
}

}  // namespace
}  // namespace adallm::backend::test
