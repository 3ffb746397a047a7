// What the per-architecture layer code sees: the backend, the config, the weights, the KV cache and the
// activation buffers of one step, plus the blocks every family shares (attention, gated MLP, MoE). Each
// arch/*.cpp writes its decoder layer in these Backend calls only; model.cpp runs embedding, layers and
// the output head.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "backend/backend.h"
#include "backend/communicator.h"
#include "io/model_config.h"
#include "model/model.h"

namespace adallm::model::arch {

// One step's activations, [num_tokens, ...] views into ActivationBuffers: the residual stream and router
// outputs in F32, the rest in the backend's activation dtype (F32 on the CPU, BF16 on the GPU).
struct Activations {
  backend::Tensor residual;  // [num_tokens, hidden_size] F32, the residual stream
  backend::Tensor delta;     // [num_tokens, hidden_size] a block's output, not yet added
  backend::Tensor hidden;    // [num_tokens, hidden_size] normalized input of a block
  backend::Tensor qkv;       // [num_tokens, (heads + 2 * kv_heads) * head_dim]
  backend::Tensor attn;      // [num_tokens, heads * head_dim]
  backend::Tensor act;       // [num_tokens, intermediate_size]
  backend::Tensor router_logits;  // [num_tokens, num_experts] F32
  backend::Tensor topk_ids;       // [num_tokens, num_experts_per_tok] I32
  backend::Tensor topk_weights;   // [num_tokens, num_experts_per_tok] F32
  // [num_tokens, backend.norm_partials(hidden_size)] F32 for linear_residual_norm; empty when that is 0.
  backend::Tensor norm_partials;
};

// The backend memory behind Activations, allocated once for up to `capacity` tokens (and grown only when
// a larger step comes), so that a step allocates nothing.
class ActivationBuffers {
 public:
  void reserve(backend::Backend& backend, const io::ModelConfig& config, int64_t num_tokens);
  int64_t capacity() const { return capacity_; }
  Activations rows(int64_t num_tokens) const;  // num_tokens <= capacity()

 private:
  int64_t capacity_ = 0;
  std::unique_ptr<backend::Buffer> residual_, delta_, hidden_, qkv_, attn_, act_, router_logits_,
      topk_ids_, topk_weights_, norm_partials_;
};

struct LayerContext {
  backend::Backend& backend;
  const io::ModelConfig& config;  // this rank's heads and intermediate rows under tensor parallelism
  const ModelWeights& weights;
  backend::KvCache& cache;
  Activations& act;
  // Set by a layer whose last block added its output into the residual and left the next layer's
  // normalized input (act.hidden, act.norm_partials); unset when act.delta holds an output not yet added.
  std::optional<backend::NormedRows> next_input;
  // Tensor parallelism (null without): row-parallel projections (o_proj, down_proj) leave partial sums
  // that meet here before they join the residual.
  backend::Communicator* comm = nullptr;
};

// One decoder layer. On entry residual holds the stream and, for layer > 0, either next_input is set or
// delta holds the previous layer's output not yet added; on exit the same holds for the next layer (the
// last layer always leaves its output in delta).
using LayerFunction = void (*)(LayerContext& ctx, int64_t layer);
LayerFunction layer_function(io::Architecture arch);

void llama_layer(LayerContext& ctx, int64_t layer);
void qwen3_layer(LayerContext& ctx, int64_t layer);
void qwen3_moe_layer(LayerContext& ctx, int64_t layer);
void gemma3_layer(LayerContext& ctx, int64_t layer);

// ---- blocks shared by the families (arch/blocks.cpp) ---------------------------------------------

// The layer's normalized input: next_input when the previous layer left it (taken), else hidden =
// norm(residual) for layer 0, or residual += delta; hidden = norm(residual).
backend::NormedRows input_norm(LayerContext& ctx, int64_t layer, const backend::Buffer& weight, backend::NormKind kind);
// out = x Wᵀ of a row-parallel projection (o_proj, down_proj), summed over the ranks under tensor
// parallelism.
void project_out(LayerContext& ctx, const backend::Linear& weight, const backend::Tensor& x, backend::Tensor out);
// residual += x Wᵀ, and the next block's input norm(residual) · norm_weight (into act.hidden and
// act.norm_partials, with act.delta as scratch). Under tensor parallelism the partial sums are reduced
// first and the norm is its own op (a plain input).
backend::NormedRows residual_norm(LayerContext& ctx, const backend::Linear& weight, const backend::Tensor& x,
                                  const backend::Buffer& norm_weight, backend::NormKind kind);
// Self-attention of the normalized input into ctx.act.attn (o_proj is the caller's): fused qkv projection,
// optional per-head q/k RMSNorm, RoPE of the layer's type, KV write, paged attention with the layer's
// sliding window.
void attention_block(LayerContext& ctx, int64_t layer, const backend::NormedRows& in, const backend::Buffer* q_norm,
                     const backend::Buffer* k_norm, backend::NormKind kind);
// down(act(gate · in) · up · in) into out, act being config.hidden_act.
void dense_mlp_block(LayerContext& ctx, int64_t layer, const backend::NormedRows& in, backend::Tensor out);
// The same, its output joining the residual: for a layer followed by another whose input norm has `kind`,
// down's linear_residual_norm leaves that layer's input in next_input; the last layer leaves delta.
void dense_mlp_to_residual(LayerContext& ctx, int64_t layer, const backend::NormedRows& in, backend::NormKind kind);
// Qwen3-MoE sparse block over the normalized input ctx.act.hidden: router → softmax → top-k
// (→ renormalize) → experts, into out.
void moe_block(LayerContext& ctx, int64_t layer, backend::Tensor out);

}  // namespace adallm::model::arch
