// The checkpoint ledger: for one architecture, where every weight the model needs is stored, checked for
// name, dtype and shape before anything is loaded. All problems are reported together, and a tensor that
// nothing consumed is an error unless the architecture lists it as ignorable (rotary inv_freq, the vision
// tower of a Gemma3 multimodal checkpoint). Uploading, repacking and the forward pass are left to others.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/quant_config.h"
#include "io/safetensors.h"

namespace adallm::model {

// One Linear (y = x W^T) as stored: BF16/F16/F32 [out, in], or NVFP4 (U8 [out, in/2] + F8_E4M3 [out, in/16]
// + per-tensor scale). Fused groups (q/k/v, gate/up) stay separate shards, each with its own
// weight_scale_2: exact even when a producer gave the members different scales.
struct LinearTensors {
  std::string module;  // "model.layers.0.self_attn.q_proj"
  int64_t out_features = 0;
  int64_t in_features = 0;
  bool nvfp4 = false;
  const io::TensorInfo* weight = nullptr;        // dense [out, in] or packed U8 [out, in/2]
  const io::TensorInfo* weight_scale = nullptr;  // F8_E4M3 [out, in/16]; NVFP4 only
  float weight_scale_2 = 1.0f;                   // ModelOpt multiplier convention (CT: 1 / weight_global_scale)
  std::optional<float> input_scale;              // ModelOpt convention; unused by W4A16 execution

  uint64_t stored_bytes() const;
  int64_t parameters() const { return out_features * in_features; }
};

struct AttentionTensors {
  LinearTensors q_proj, k_proj, v_proj, o_proj;
  const io::TensorInfo* q_norm = nullptr;  // [head_dim]; qwen3, qwen3_moe, gemma3
  const io::TensorInfo* k_norm = nullptr;
  // FP8 KV-cache scales (real = fp8 * scale); 1.0 when the checkpoint has none.
  float k_scale = 1.0f;
  float v_scale = 1.0f;
  bool has_kv_scales = false;
};

struct MlpTensors {
  LinearTensors gate_proj, up_proj, down_proj;
};

struct MoeTensors {
  const io::TensorInfo* router = nullptr;  // [num_experts, hidden_size], mlp.gate
  std::vector<MlpTensors> experts;
};

struct LayerTensors {
  const io::TensorInfo* input_layernorm = nullptr;
  const io::TensorInfo* post_attention_layernorm = nullptr;
  const io::TensorInfo* pre_feedforward_layernorm = nullptr;   // gemma3 only
  const io::TensorInfo* post_feedforward_layernorm = nullptr;  // gemma3 only
  AttentionTensors attn;
  std::optional<MlpTensors> mlp;
  std::optional<MoeTensors> moe;
};

struct ModelTensors {
  std::string prefix;  // "model.", "model.language_model." or "language_model.model."
  const io::TensorInfo* embed_tokens = nullptr;
  std::vector<LayerTensors> layers;
  const io::TensorInfo* norm = nullptr;
  // The output projection; for tied embeddings it is a view of embed_tokens (never scaled).
  LinearTensors lm_head;
  bool lm_head_tied = false;
  std::vector<std::string> ignored;  // tensors present and deliberately unused
  std::vector<std::string> warnings;  // disagreements between the quant config and the tensors present

  // Every Linear of the model in a stable order: per layer q, k, v, o, then MLP or experts; lm_head last.
  std::vector<const LinearTensors*> linears() const;
};

// Binds every tensor the architecture needs. Throws one adallm::Error listing every missing or mismatched
// tensor (name, expected, found, file), then one listing every unconsumed tensor.
ModelTensors bind_checkpoint(const io::Checkpoint& checkpoint, const io::ModelConfig& config,
                             const io::QuantConfig& quant);

// The fp32 value of a 0-d or [1] F32/BF16/F16 tensor (scales); throws naming the tensor otherwise.
float read_scalar(const io::TensorInfo& tensor);

}  // namespace adallm::model
