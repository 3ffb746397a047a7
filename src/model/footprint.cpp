// Footprint arithmetic over a bound ModelTensors.
#include "model/footprint.h"

#include <fstream>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/quant_config.h"
#include "io/safetensors.h"

namespace adallm::model {
namespace {

void tally_tensor(Footprint& f, const io::TensorInfo* t) {
  if (t == nullptr) return;
  StorageTally& s = f.storage[std::string(dtype_name(t->dtype))];
  s.tensors += 1;
  s.parameters += t->numel();
  s.bytes += t->nbytes;
  f.total_parameters += t->numel();
  f.tensor_bytes += t->nbytes;
}

void tally_linear(Footprint& f, const LinearTensors& lin) {
  if (!lin.nvfp4) {
    tally_tensor(f, lin.weight);
    f.dense_linears += 1;
    return;
  }
  f.nvfp4_linears += 1;
  StorageTally& packed = f.storage["NVFP4"];
  packed.tensors += 1;
  packed.parameters += lin.parameters();
  packed.bytes += lin.weight->nbytes;
  StorageTally& block = f.storage["NVFP4 block scales"];
  block.tensors += 1;
  block.bytes += lin.weight_scale->nbytes;
  StorageTally& tensor_scale = f.storage["NVFP4 tensor scales"];
  tensor_scale.tensors += lin.input_scale ? 2 : 1;
  tensor_scale.bytes += lin.input_scale ? 8 : 4;
  f.total_parameters += lin.parameters();
  f.tensor_bytes += lin.weight->nbytes + lin.weight_scale->nbytes + (lin.input_scale ? 8 : 4);
}

std::vector<const io::TensorInfo*> norms(const LayerTensors& layer) {
  return {layer.input_layernorm, layer.post_attention_layernorm, layer.pre_feedforward_layernorm,
          layer.post_feedforward_layernorm, layer.attn.q_norm, layer.attn.k_norm};
}

uint64_t norm_bytes(const LayerTensors& layer) {
  uint64_t bytes = 0;
  for (const io::TensorInfo* t : norms(layer)) bytes += t ? t->nbytes : 0;
  return bytes;
}

uint64_t mlp_bytes(const MlpTensors& m) {
  return m.gate_proj.stored_bytes() + m.up_proj.stored_bytes() + m.down_proj.stored_bytes();
}
int64_t mlp_parameters(const MlpTensors& m) {
  return m.gate_proj.parameters() + m.up_proj.parameters() + m.down_proj.parameters();
}

}  // namespace

Footprint compute_footprint(const ModelTensors& model, const io::ModelConfig& config) {
  Footprint f;
  tally_tensor(f, model.embed_tokens);
  tally_tensor(f, model.norm);
  for (const LayerTensors& layer : model.layers) {
    for (const io::TensorInfo* t : norms(layer)) tally_tensor(f, t);
    if (layer.moe) tally_tensor(f, layer.moe->router);
  }
  for (const LinearTensors* lin : model.linears()) {
    if (lin == &model.lm_head && model.lm_head_tied) continue;
    tally_linear(f, *lin);
  }

  const uint64_t kv_elements_per_token = static_cast<uint64_t>(2 * config.num_hidden_layers *
                                                               config.num_key_value_heads * config.head_dim);
  f.kv_bytes_per_token_fp8 = kv_elements_per_token;
  f.kv_bytes_per_token_bf16 = kv_elements_per_token * 2;

  // Decode read set: one embedding row, every layer's attention, norms and active MLP, final norm, lm_head.
  uint64_t bytes = model.embed_tokens->nbytes / static_cast<uint64_t>(config.vocab_size);
  int64_t params = config.hidden_size;
  for (const LayerTensors& layer : model.layers) {
    bytes += norm_bytes(layer);
    for (const LinearTensors* lin : {&layer.attn.q_proj, &layer.attn.k_proj, &layer.attn.v_proj, &layer.attn.o_proj}) {
      bytes += lin->stored_bytes();
      params += lin->parameters();
    }
    if (layer.mlp) {
      bytes += mlp_bytes(*layer.mlp);
      params += mlp_parameters(*layer.mlp);
    }
    if (layer.moe && !layer.moe->experts.empty()) {
      bytes += layer.moe->router->nbytes;
      params += layer.moe->router->numel();
      // Experts are equal in size; a token reads num_experts_per_tok of them.
      bytes += mlp_bytes(layer.moe->experts.front()) * static_cast<uint64_t>(config.num_experts_per_tok);
      params += mlp_parameters(layer.moe->experts.front()) * config.num_experts_per_tok;
    }
  }
  bytes += model.norm->nbytes;
  bytes += model.lm_head.stored_bytes();
  params += model.lm_head.parameters();
  f.decode_bytes_per_token = bytes;
  f.active_parameters = params;
  return f;
}

Footprint checkpoint_footprint(const std::filesystem::path& dir) {
  const io::ModelConfig config = io::load_model_config(dir / "config.json");
  nlohmann::json raw;
  {
    std::ifstream in(dir / "config.json");
    raw = nlohmann::json::parse(in, nullptr, false);
  }
  const io::QuantConfig quant = io::load_quant_config(dir, raw);
  return compute_footprint(bind_checkpoint(io::Checkpoint::open(dir), config, quant), config);
}

}  // namespace adallm::model
