// Qwen3-MoE decoder layer (Qwen3MoeDecoderLayer): Qwen3's attention, then either the sparse block
// (softmax over all experts → top-k → renormalize only if norm_topk_prob; no shared expert) or, for
// layers in mlp_only_layers or off the decoder_sparse_step, a dense SwiGLU MLP.
#include "model/arch/arch.h"

namespace adallm::model::arch {

void qwen3_moe_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  constexpr auto kind = backend::NormKind::llama;
  const backend::NormedRows in = input_norm(ctx, layer, *w.input_layernorm, kind);
  attention_block(ctx, layer, in, w.q_norm.get(), w.k_norm.get(), kind);
  if (ctx.config.is_moe_layer(layer)) {
    // The router and the experts read plain normalized rows.
    project_out(ctx, *w.o_proj, ctx.act.attn, ctx.act.delta);
    ctx.backend.add_rms_norm(ctx.act.delta, ctx.act.residual, w.post_attention_layernorm->view(),
                             static_cast<float>(ctx.config.rms_norm_eps), kind, ctx.act.hidden);
    moe_block(ctx, layer, ctx.act.delta);
  } else {
    const backend::NormedRows mlp_in = residual_norm(ctx, *w.o_proj, ctx.act.attn, *w.post_attention_layernorm, kind);
    dense_mlp_to_residual(ctx, layer, mlp_in, kind);
  }
}

}  // namespace adallm::model::arch
