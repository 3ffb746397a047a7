// Llama 3.x decoder layer (LlamaDecoderLayer): pre-norm attention and SwiGLU MLP with RMSNorm
// w · (x · rsqrt(mean(x²) + eps)); no q/k norm. RoPE (default or llama3) comes with the layer's table.
#include "model/arch/arch.h"

namespace adallm::model::arch {

void llama_layer(LayerContext& ctx, int64_t layer) {
  const LayerWeights& w = ctx.weights.layers[static_cast<size_t>(layer)];
  constexpr auto kind = backend::NormKind::llama;
  const backend::NormedRows in = input_norm(ctx, layer, *w.input_layernorm, kind);
  attention_block(ctx, layer, in, nullptr, nullptr, kind);
  const backend::NormedRows mlp_in = residual_norm(ctx, *w.o_proj, ctx.act.attn, *w.post_attention_layernorm, kind);
  dense_mlp_to_residual(ctx, layer, mlp_in, kind);
}

}  // namespace adallm::model::arch
