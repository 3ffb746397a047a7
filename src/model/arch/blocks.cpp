// The blocks every family shares (see arch.h), written in Backend calls only.
#include "model/arch/arch.h"

#include <algorithm>
#include <optional>
#include <string>

#include "core/error.h"

namespace adallm::model::arch {

Activations::Activations(backend::Backend& b, const io::ModelConfig& c, int64_t n) {
  const int64_t q_cols = c.num_attention_heads * c.head_dim;
  residual = b.alloc(n, c.hidden_size, DType::F32);
  delta = b.alloc(n, c.hidden_size, DType::F32);
  hidden = b.alloc(n, c.hidden_size, DType::F32);
  qkv = b.alloc(n, q_cols + 2 * c.num_key_value_heads * c.head_dim, DType::F32);
  attn = b.alloc(n, q_cols, DType::F32);
  const int64_t inter = std::max(c.intermediate_size, c.moe_intermediate_size);
  gate_up = b.alloc(n, 2 * inter, DType::F32);
  act = b.alloc(n, inter, DType::F32);
  if (c.num_experts > 0) {
    router_logits = b.alloc(n, c.num_experts, DType::F32);
    topk_ids = b.alloc(n, c.num_experts_per_tok, DType::I32);
    topk_weights = b.alloc(n, c.num_experts_per_tok, DType::F32);
  }
}

LayerFunction layer_function(io::Architecture arch) {
  switch (arch) {
    case io::Architecture::llama: return llama_layer;
    case io::Architecture::qwen3: return qwen3_layer;
    case io::Architecture::qwen3_moe: return qwen3_moe_layer;
    case io::Architecture::gemma3: return gemma3_layer;
  }
  throw Error("no layer function for architecture " + std::to_string(static_cast<int>(arch)));
}

namespace {
backend::Activation mlp_activation(const io::ModelConfig& config) {
  return config.hidden_act == io::Activation::gelu_tanh ? backend::Activation::gelu_tanh : backend::Activation::silu;
}
}  // namespace

void add_input_norm(LayerContext& ctx, int64_t layer, const backend::Buffer& weight, backend::NormKind kind) {
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  if (layer == 0) {
    ctx.backend.rms_norm(ctx.act.residual->view(), weight.view(), eps, kind, ctx.act.hidden->view());
  } else {
    ctx.backend.add_rms_norm(ctx.act.delta->view(), ctx.act.residual->view(), weight.view(), eps, kind,
                             ctx.act.hidden->view());
  }
}

void attention_block(LayerContext& ctx, int64_t layer, const backend::Buffer* q_norm, const backend::Buffer* k_norm,
                     backend::NormKind kind, backend::Tensor out) {
  const io::ModelConfig& c = ctx.config;
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  backend::Backend& b = ctx.backend;
  const backend::Tensor qkv = ctx.act.qkv->view();
  b.linear(*w.qkv_proj, ctx.act.hidden->view(), qkv);

  const bool sliding = c.layer_types[static_cast<size_t>(layer)] == io::LayerType::sliding_attention;
  const backend::RopeTable& rope = sliding ? ctx.weights.rope_sliding : ctx.weights.rope_full;
  const backend::Tensor q_norm_view = q_norm ? q_norm->view() : backend::Tensor{};
  const backend::Tensor k_norm_view = k_norm ? k_norm->view() : backend::Tensor{};
  b.qk_norm_rope_kv_write(qkv, c.num_attention_heads, q_norm ? &q_norm_view : nullptr,
                          k_norm ? &k_norm_view : nullptr, static_cast<float>(c.rms_norm_eps), kind, rope,
                          ctx.cache, layer);

  const backend::Tensor q = qkv.col_slice(0, c.num_attention_heads * c.head_dim);
  const std::optional<int64_t> window = sliding ? c.sliding_window : std::nullopt;
  b.attention(q, ctx.cache, layer, static_cast<float>(c.attention_scale), window, ctx.act.attn->view());
  b.linear(*w.o_proj, ctx.act.attn->view(), out);
}

void dense_mlp_block(LayerContext& ctx, int64_t layer, backend::Tensor out) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  const int64_t inter = w.down_proj->in_features();
  const backend::Tensor gate_up = ctx.act.gate_up->view().col_slice(0, 2 * inter);
  const backend::Tensor h = ctx.act.act->view().col_slice(0, inter);
  ctx.backend.linear(*w.gate_up_proj, ctx.act.hidden->view(), gate_up);
  ctx.backend.gated_activation(gate_up, mlp_activation(ctx.config), h);
  ctx.backend.linear(*w.down_proj, h, out);
}

void moe_block(LayerContext& ctx, int64_t layer, backend::Tensor out) {
  const io::ModelConfig& c = ctx.config;
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  backend::Backend& b = ctx.backend;
  b.linear(*w.router, ctx.act.hidden->view(), ctx.act.router_logits->view());
  b.moe_route(ctx.act.router_logits->view(), c.num_experts_per_tok, c.norm_topk_prob, ctx.act.topk_ids->view(),
              ctx.act.topk_weights->view());
  b.moe_experts(*w.experts, ctx.act.hidden->view(), ctx.act.topk_ids->view(), ctx.act.topk_weights->view(),
                mlp_activation(ctx.config), out);
}

}  // namespace adallm::model::arch
