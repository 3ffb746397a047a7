// Qwen3 dense decoder layer (Qwen3DecoderLayer): Llama's layer plus q_norm / k_norm, an RMSNorm over
// head_dim shared by all heads, applied per head after the projection and before RoPE (never on V).
#include "model/arch/arch.h"

namespace adallm::model::arch {

void qwen3_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  add_input_norm(ctx, layer, *w.input_layernorm, backend::NormKind::llama);
  attention_block(ctx, layer, w.q_norm.get(), w.k_norm.get(), backend::NormKind::llama, ctx.act.delta);
  ctx.backend.add_rms_norm(ctx.act.delta, ctx.act.residual, w.post_attention_layernorm->view(), eps,
                           backend::NormKind::llama, ctx.act.hidden);
  dense_mlp_block(ctx, layer, ctx.act.delta);
}

}  // namespace adallm::model::arch
