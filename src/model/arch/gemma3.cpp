// Gemma3 decoder layer (Gemma3DecoderLayer): four (1 + w) RMSNorms — the attention and MLP outputs are
// normalized before they join the residual — q/k norm in the same form, GeGLU (gelu tanh) MLP, and per
// layer type a sliding window with local RoPE or full attention with the (possibly linear-scaled) global
// RoPE. The softmax scale (query_pre_attn_scalar^-0.5) is config.attention_scale.
#include "model/arch/arch.h"

namespace adallm::model::arch {

void gemma3_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  constexpr auto kind = backend::NormKind::gemma;
  backend::Backend& b = ctx.backend;
  const backend::NormedRows in = input_norm(ctx, layer, *w.input_layernorm, kind);
  attention_block(ctx, layer, in, w.q_norm.get(), w.k_norm.get(), kind);
  project_out(ctx, *w.o_proj, ctx.act.attn, ctx.act.delta);
  b.rms_norm(ctx.act.delta, w.post_attention_layernorm->view(), eps, kind, ctx.act.delta);
  b.add_rms_norm(ctx.act.delta, ctx.act.residual, w.pre_feedforward_layernorm->view(), eps, kind,
                 ctx.act.hidden);
  dense_mlp_block(ctx, layer, backend::NormedRows::plain(ctx.act.hidden), ctx.act.delta);
  b.rms_norm(ctx.act.delta, w.post_feedforward_layernorm->view(), eps, kind, ctx.act.delta);
}

}  // namespace adallm::model::arch
