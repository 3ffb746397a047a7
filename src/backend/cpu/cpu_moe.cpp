// The gated MLP activation and Qwen3-MoE on the CPU: routing (softmax, top-k, optional renormalisation)
// and the experts, run per expert over the tokens routed to it so each expert's weights are decoded once
// per step. Expert parallelism and load balancing are left to the CUDA backend.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cpu/cpu_internal.h"
#include "core/error.h"
#include "core/parallel.h"

namespace adallm::backend::cpu {

void gated_activation_row(const float* gate, const float* up, int64_t n, Activation act, float* out) {
  if (act == Activation::silu) {
    for (int64_t i = 0; i < n; ++i) {
      const float g = gate[i];
      out[i] = g / (1.0f + std::exp(-g)) * up[i];
    }
  } else {
    const float k = std::sqrt(2.0f / 3.14159265358979323846f);
    for (int64_t i = 0; i < n; ++i) {
      const float g = gate[i];
      out[i] = 0.5f * g * (1.0f + std::tanh(k * (g + 0.044715f * g * g * g))) * up[i];
    }
  }
}

CpuExperts::CpuExperts(std::span<const ExpertSource> experts, bool fp8_activations) {
  check_experts(experts, hidden_size_, moe_intermediate_size_);
  for (const ExpertSource& e : experts) {
    const LinearSource fused[] = {e.gate_proj, e.up_proj};
    gate_up_.push_back(std::make_unique<CpuLinear>(fused));
    down_.push_back(std::make_unique<CpuLinear>(std::span<const LinearSource>(&e.down_proj, 1)));
    gate_up_.back()->quantize_activations(fp8_activations);
    down_.back()->quantize_activations(fp8_activations);
  }
  num_experts_ = static_cast<int64_t>(experts.size());
}

std::unique_ptr<Experts> CpuBackend::load_experts(std::span<const ExpertSource> experts) {
  return std::make_unique<CpuExperts>(experts, options_.fp8_activations);
}

void CpuBackend::gated_activation(const Tensor& gate_up, Activation act, Tensor out) {
  expect_tensor(gate_up, DType::F32, -1, -1, "gated_activation", "gate_up");
  if (gate_up.cols % 2 != 0) {
    throw Error("gated_activation: gate_up expected [rows, 2 * n], got an odd column count: " + gate_up.describe());
  }
  const int64_t n = gate_up.cols / 2;
  expect_tensor(out, DType::F32, gate_up.rows, n, "gated_activation", "out");
  parallel_for(gate_up.rows, std::max<int64_t>(1, 8192 / std::max<int64_t>(n, 1)), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float* g = gate_up.row<float>(r);
      gated_activation_row(g, g + n, n, act, out.row<float>(r));
    }
  });
}

void CpuBackend::moe_route(const Tensor& router_logits, int64_t top_k, bool renormalize, Tensor topk_ids,
                           Tensor topk_weights) {
  check_moe_route(router_logits, top_k, topk_ids, topk_weights);
  const int64_t num_experts = router_logits.cols;
  parallel_for(router_logits.rows, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> probs(static_cast<size_t>(num_experts));
    std::vector<int32_t> order(static_cast<size_t>(num_experts));
    for (int64_t t = begin; t < end; ++t) {
      const float* logits = router_logits.row<float>(t);
      const float max_logit = *std::max_element(logits, logits + num_experts);
      float sum = 0.0f;
      for (int64_t e = 0; e < num_experts; ++e) {
        probs[static_cast<size_t>(e)] = std::exp(logits[e] - max_logit);
        sum += probs[static_cast<size_t>(e)];
      }
      for (float& p : probs) p /= sum;
      for (int64_t e = 0; e < num_experts; ++e) order[static_cast<size_t>(e)] = static_cast<int32_t>(e);
      // Descending probability; equal probabilities keep the lower expert index first.
      std::partial_sort(order.begin(), order.begin() + top_k, order.end(), [&](int32_t a, int32_t b) {
        const float pa = probs[static_cast<size_t>(a)];
        const float pb = probs[static_cast<size_t>(b)];
        return pa > pb || (pa == pb && a < b);
      });
      float top_sum = 0.0f;
      for (int64_t k = 0; k < top_k; ++k) top_sum += probs[static_cast<size_t>(order[static_cast<size_t>(k)])];
      int32_t* ids = topk_ids.row<int32_t>(t);
      float* weights = topk_weights.row<float>(t);
      for (int64_t k = 0; k < top_k; ++k) {
        const int32_t e = order[static_cast<size_t>(k)];
        ids[k] = e;
        weights[k] = renormalize ? probs[static_cast<size_t>(e)] / top_sum : probs[static_cast<size_t>(e)];
      }
    }
  });
}

void CpuBackend::moe_experts(const Experts& experts, const Tensor& x, const Tensor& topk_ids,
                             const Tensor& topk_weights, Activation act, Tensor out) {
  const auto* ex = dynamic_cast<const CpuExperts*>(&experts);
  if (ex == nullptr) throw Error("moe_experts: the experts were not loaded by the CPU backend");
  const int64_t hidden = ex->hidden_size();
  const int64_t inter = ex->moe_intermediate_size();
  const int64_t top_k = check_moe_experts(x, topk_ids, topk_weights, out, hidden, DType::F32);
  const int64_t num_tokens = x.rows;

  // (token, k) pairs per expert, in token order.
  std::vector<std::vector<int64_t>> routed(static_cast<size_t>(ex->num_experts()));
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int64_t k = 0; k < top_k; ++k) {
      const int32_t e = topk_ids.row<int32_t>(t)[k];
      if (e < 0 || e >= ex->num_experts()) {
        throw Error("moe_experts: token " + std::to_string(t) + " is routed to expert " + std::to_string(e) +
                    ", outside the layer's " + std::to_string(ex->num_experts()) + " experts");
      }
      routed[static_cast<size_t>(e)].push_back(t * top_k + k);
    }
  }
  // Every expert output is kept until the end, so out may alias x, and the weighted sum runs in k order.
  std::vector<float> y(static_cast<size_t>(num_tokens * top_k * hidden));
  std::vector<float> xs, gate_up, h, ys;
  for (int64_t e = 0; e < ex->num_experts(); ++e) {
    const std::vector<int64_t>& pairs = routed[static_cast<size_t>(e)];
    const auto n = static_cast<int64_t>(pairs.size());
    if (n == 0) continue;
    xs.resize(static_cast<size_t>(n * hidden));
    gate_up.resize(static_cast<size_t>(n * 2 * inter));
    h.resize(static_cast<size_t>(n * inter));
    ys.resize(static_cast<size_t>(n * hidden));
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(xs.data() + i * hidden, x.row<float>(pairs[static_cast<size_t>(i)] / top_k),
                  static_cast<size_t>(hidden) * sizeof(float));
    }
    linear_rows(ex->gate_up(e), xs.data(), hidden, n, gate_up.data(), 2 * inter);
    for (int64_t i = 0; i < n; ++i) {
      const float* g = gate_up.data() + i * 2 * inter;
      gated_activation_row(g, g + inter, inter, act, h.data() + i * inter);
    }
    linear_rows(ex->down(e), h.data(), inter, n, ys.data(), hidden);
    for (int64_t i = 0; i < n; ++i) {
      std::memcpy(y.data() + pairs[static_cast<size_t>(i)] * hidden, ys.data() + i * hidden,
                  static_cast<size_t>(hidden) * sizeof(float));
    }
  }
  for (int64_t t = 0; t < num_tokens; ++t) {
    float* o = out.row<float>(t);
    const float* w = topk_weights.row<float>(t);
    std::fill(o, o + hidden, 0.0f);
    for (int64_t k = 0; k < top_k; ++k) {
      const float* yk = y.data() + (t * top_k + k) * hidden;
      for (int64_t c = 0; c < hidden; ++c) o[c] += w[k] * yk[c];
    }
  }
}

}  // namespace adallm::backend::cpu
