// What the per-architecture layer code sees: the backend, the config, the weights, the KV cache and the
// activation buffers of one step, plus the blocks every family shares (attention, gated MLP, MoE). Each
// arch/*.cpp writes its decoder layer in these Backend calls only; model.cpp runs embedding, layers and
// the output head.
#pragma once

#include <cstdint>
#include <memory>

#include "backend/backend.h"
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
      topk_ids_, topk_weights_;
};

struct LayerContext {
  backend::Backend& backend;
  const io::ModelConfig& config;
  const ModelWeights& weights;
  backend::KvCache& cache;
  Activations& act;
};

// One decoder layer. On entry residual holds the stream and, for layer > 0, delta holds the previous
// layer's output not yet added to it; on exit delta holds this layer's output.
using LayerFunction = void (*)(LayerContext& ctx, int64_t layer);
LayerFunction layer_function(io::Architecture arch);

void llama_layer(LayerContext& ctx, int64_t layer);
void qwen3_layer(LayerContext& ctx, int64_t layer);
void qwen3_moe_layer(LayerContext& ctx, int64_t layer);
void gemma3_layer(LayerContext& ctx, int64_t layer);

// ---- blocks shared by the families (arch/blocks.cpp) ---------------------------------------------

// hidden = norm(residual) for layer 0, else residual += delta; hidden = norm(residual).
void add_input_norm(LayerContext& ctx, int64_t layer, const backend::Buffer& weight, backend::NormKind kind);
// Self-attention of the normalized input `ctx.act.hidden` into `out` [num_tokens, hidden_size]: fused
// qkv projection, optional per-head q/k RMSNorm, RoPE of the layer's type, KV write, paged attention with
// the layer's sliding window, o_proj.
void attention_block(LayerContext& ctx, int64_t layer, const backend::Buffer* q_norm, const backend::Buffer* k_norm,
                     backend::NormKind kind, backend::Tensor out);
// down(act(gate · hidden) · up · hidden) into out, act being config.hidden_act.
void dense_mlp_block(LayerContext& ctx, int64_t layer, backend::Tensor out);
// Qwen3-MoE sparse block: router → softmax → top-k (→ renormalize) → experts, into out.
void moe_block(LayerContext& ctx, int64_t layer, backend::Tensor out);

}  // namespace adallm::model::arch
