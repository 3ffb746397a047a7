// The blocks every family shares (see arch.h), written in Backend calls only.
#include "model/arch/arch.h"

#include <algorithm>
#include <optional>
#include <string>

#include "core/error.h"

namespace adallm::model::arch {

void ActivationBuffers::reserve(backend::Backend& b, const io::ModelConfig& c, int64_t n) {
  if (n <= capacity_) return;
  const DType dt = b.activation_dtype();
  const int64_t q_cols = c.num_attention_heads * c.head_dim;
  residual_ = b.alloc(n, c.hidden_size, DType::F32);
  delta_ = b.alloc(n, c.hidden_size, dt);
  hidden_ = b.alloc(n, c.hidden_size, dt);
  qkv_ = b.alloc(n, q_cols + 2 * c.num_key_value_heads * c.head_dim, dt);
  attn_ = b.alloc(n, q_cols, dt);
  const int64_t inter = std::max(c.intermediate_size, c.moe_intermediate_size);
  act_ = b.alloc(n, inter, dt);
  if (c.num_experts > 0) {
    router_logits_ = b.alloc(n, c.num_experts, DType::F32);
    topk_ids_ = b.alloc(n, c.num_experts_per_tok, DType::I32);
    topk_weights_ = b.alloc(n, c.num_experts_per_tok, DType::F32);
  }
  if (const int64_t partials = b.norm_partials(c.hidden_size); partials > 0) {
    norm_partials_ = b.alloc(n, partials, DType::F32);
  }
  capacity_ = n;
}

Activations ActivationBuffers::rows(int64_t n) const {
  if (n > capacity_) {
    throw Error("activations for " + std::to_string(n) + " tokens requested, " + std::to_string(capacity_) + " reserved");
  }
  const auto view = [n](const std::unique_ptr<backend::Buffer>& b) {
    return b ? b->view().row_slice(0, n) : backend::Tensor{};
  };
  return Activations{view(residual_),     view(delta_),    view(hidden_),       view(qkv_),
                     view(attn_),         view(act_),      view(router_logits_), view(topk_ids_),
                     view(topk_weights_), view(norm_partials_)};
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

backend::NormedRows input_norm(LayerContext& ctx, int64_t layer, const backend::Buffer& weight, backend::NormKind kind) {
  if (ctx.next_input) {
    const backend::NormedRows in = *ctx.next_input;
    ctx.next_input.reset();
    return in;
  }
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  if (layer == 0) {
    ctx.backend.rms_norm(ctx.act.residual, weight.view(), eps, kind, ctx.act.hidden);
  } else {
    ctx.backend.add_rms_norm(ctx.act.delta, ctx.act.residual, weight.view(), eps, kind, ctx.act.hidden);
  }
  return backend::NormedRows::plain(ctx.act.hidden);
}

void project_out(LayerContext& ctx, const backend::Linear& weight, const backend::Tensor& x, backend::Tensor out) {
  ctx.backend.linear(weight, x, out);
  if (ctx.comm != nullptr) ctx.comm->all_reduce_sum(out);
}

backend::NormedRows residual_norm(LayerContext& ctx, const backend::Linear& weight, const backend::Tensor& x,
                                  const backend::Buffer& norm_weight, backend::NormKind kind) {
  if (ctx.comm != nullptr) {
    project_out(ctx, weight, x, ctx.act.delta);
    ctx.backend.add_rms_norm(ctx.act.delta, ctx.act.residual, norm_weight.view(),
                             static_cast<float>(ctx.config.rms_norm_eps), kind, ctx.act.hidden);
    return backend::NormedRows::plain(ctx.act.hidden);
  }
  return ctx.backend.linear_residual_norm(weight, x, ctx.act.residual, norm_weight.view(),
                                          static_cast<float>(ctx.config.rms_norm_eps), kind, ctx.act.delta,
                                          ctx.act.hidden, ctx.act.norm_partials);
}

void attention_block(LayerContext& ctx, int64_t layer, const backend::NormedRows& in, const backend::Buffer* q_norm,
                     const backend::Buffer* k_norm, backend::NormKind kind) {
  const io::ModelConfig& c = ctx.config;
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  backend::Backend& b = ctx.backend;
  const backend::Tensor qkv = ctx.act.qkv;
  b.normed_linear(*w.qkv_proj, in, qkv);

  const bool sliding = c.layer_types[static_cast<size_t>(layer)] == io::LayerType::sliding_attention;
  const backend::RopeTable& rope = sliding ? ctx.weights.rope_sliding : ctx.weights.rope_full;
  const backend::Tensor q_norm_view = q_norm ? q_norm->view() : backend::Tensor{};
  const backend::Tensor k_norm_view = k_norm ? k_norm->view() : backend::Tensor{};
  b.qk_norm_rope_kv_write(qkv, c.num_attention_heads, q_norm ? &q_norm_view : nullptr,
                          k_norm ? &k_norm_view : nullptr, static_cast<float>(c.rms_norm_eps), kind, rope,
                          ctx.cache, layer);

  const backend::Tensor q = qkv.col_slice(0, c.num_attention_heads * c.head_dim);
  const std::optional<int64_t> window = sliding ? c.sliding_window : std::nullopt;
  b.attention(q, ctx.cache, layer, static_cast<float>(c.attention_scale), window, ctx.act.attn);
}

namespace {
// act(gate · in) · up · in into act.act's first intermediate_size columns.
backend::Tensor gated_block(LayerContext& ctx, int64_t layer, const backend::NormedRows& in) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  const backend::Tensor h = ctx.act.act.col_slice(0, w.down_proj->in_features());
  ctx.backend.normed_gated_linear(*w.gate_up_proj, in, mlp_activation(ctx.config), h);
  return h;
}
}  // namespace

void dense_mlp_block(LayerContext& ctx, int64_t layer, const backend::NormedRows& in, backend::Tensor out) {
  const backend::Tensor h = gated_block(ctx, layer, in);
  project_out(ctx, *ctx.weights.layers[static_cast<size_t>(layer)].down_proj, h, out);
}

void dense_mlp_to_residual(LayerContext& ctx, int64_t layer, const backend::NormedRows& in, backend::NormKind kind) {
  if (layer + 1 >= ctx.config.num_hidden_layers) return dense_mlp_block(ctx, layer, in, ctx.act.delta);
  const backend::Tensor h = gated_block(ctx, layer, in);
  const LayerWeights& next = ctx.weights.layers[static_cast<size_t>(layer + 1)];
  ctx.next_input = residual_norm(ctx, *ctx.weights.layers[static_cast<size_t>(layer)].down_proj, h,
                                 *next.input_layernorm, kind);
}

void moe_block(LayerContext& ctx, int64_t layer, backend::Tensor out) {
  const io::ModelConfig& c = ctx.config;
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  backend::Backend& b = ctx.backend;
  b.linear(*w.router, ctx.act.hidden, ctx.act.router_logits);
  b.moe_route(ctx.act.router_logits, c.num_experts_per_tok, c.norm_topk_prob, ctx.act.topk_ids,
              ctx.act.topk_weights);
  b.moe_experts(*w.experts, ctx.act.hidden, ctx.act.topk_ids, ctx.act.topk_weights,
                mlp_activation(ctx.config), out);
  if (ctx.comm != nullptr) ctx.comm->all_reduce_sum(out);  // each rank's share of every expert's rows
}

}  // namespace adallm::model::arch
