// Llama 3.x decoder layer (LlamaDecoderLayer): pre-norm attention and SwiGLU MLP with RMSNorm
// w · (x · rsqrt(mean(x²) + eps)); no q/k norm. RoPE (default or llama3) comes with the layer's table.
#include "model/arch/arch.h"

namespace adallm::model::arch {

void llama_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  const auto eps = static_cast<float>(ctx.config.rms_norm_eps);
  add_input_norm(ctx, layer, *w.input_layernorm, backend::NormKind::llama);
  attention_block(ctx, layer, nullptr, nullptr, backend::NormKind::llama, ctx.act.delta);
  ctx.backend.add_rms_norm(ctx.act.delta, ctx.act.residual, w.post_attention_layernorm->view(), eps,
                           backend::NormKind::llama, ctx.act.hidden);
  dense_mlp_block(ctx, layer, ctx.act.delta);
}

}  // namespace adallm::model::arch
