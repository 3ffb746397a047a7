// Qwen3-MoE decoder layer (Qwen3MoeDecoderLayer): Qwen3's attention, then either the sparse block
// (softmax over all experts → top-k → renormalize only if norm_topk_prob; no shared expert) or, for
// layers in mlp_only_layers or off the decoder_sparse_step, a dense SwiGLU MLP.
#include "model/arch/arch.h"

namespace adallm::model::arch {

void qwen3_moe_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  add_input_norm(ctx, layer, *w.input_layernorm, backend::NormKind::llama);
  attention_block(ctx, layer, w.q_norm.get(), w.k_norm.get(), backend::NormKind::llama, ctx.act.delta);
  ctx.backend.add_rms_norm(ctx.act.delta, ctx.act.residual, w.post_attention_layernorm->view(), eps,
                           backend::NormKind::llama, ctx.act.hidden);
  if (ctx.config.is_moe_layer(layer)) {
    moe_block(ctx, layer, ctx.act.delta);
  } else {
    dense_mlp_block(ctx, layer, ctx.act.delta);
  }
}

}  // namespace adallm::model::arch
