// Qwen3 dense decoder layer (Qwen3DecoderLayer): Llama's layer plus q_norm / k_norm, an RMSNorm over
// head_dim shared by all heads, applied per head after the projection and before RoPE (never on V).
#include "model/arch/arch.h"

namespace adallm::model::arch {

void qwen3_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  constexpr auto kind = backend::NormKind::llama;
  const backend::NormedRows in = input_norm(ctx, layer, *w.input_layernorm, kind);
  attention_block(ctx, layer, in, w.q_norm.get(), w.k_norm.get(), kind);
  const backend::NormedRows mlp_in = residual_norm(ctx, *w.o_proj, ctx.act.attn, *w.post_attention_layernorm, kind);
  dense_mlp_to_residual(ctx, layer, mlp_in, kind);
}

}  // namespace adallm::model::arch
