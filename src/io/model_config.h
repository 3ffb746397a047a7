// Hugging Face config.json → ModelConfig for the families AdaLLM runs: llama, qwen3, qwen3_moe,
// gemma3_text and gemma3 (text part under text_config). Both the legacy fields (rope_theta, rope_scaling
// with `type` or `rope_type`, rope_local_base_freq, sliding_window_pattern) and the transformers 5 form
// (rope_parameters keyed by layer type, layer_types) are read. A field that changes the math and is not
// supported is an error naming it; defaults are those of the transformers config classes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace adallm::io {

enum class Architecture { llama, qwen3, qwen3_moe, gemma3 };
enum class LayerType { full_attention, sliding_attention };
enum class Activation { silu, gelu_tanh };

const char* architecture_name(Architecture arch);
const char* layer_type_name(LayerType type);

// One RoPE configuration (NeoX rotate_half form). rope_type: "default", "linear", "llama3" or "yarn".
struct RopeConfig {
  std::string rope_type = "default";
  double theta = 10000.0;
  double factor = 1.0;                      // linear, llama3, yarn
  double low_freq_factor = 1.0;             // llama3
  double high_freq_factor = 4.0;            // llama3
  int64_t original_max_position_embeddings = 0;  // llama3, yarn
  double beta_fast = 32.0;                  // yarn
  double beta_slow = 1.0;                   // yarn
  std::optional<double> attention_factor;   // yarn: default 0.1 * ln(factor) + 1 when unset
  double partial_rotary_factor = 1.0;       // only 1.0 is supported
};

struct ModelConfig {
  std::string model_type;  // as written: "llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"
  Architecture arch = Architecture::llama;
  bool multimodal_wrapper = false;  // gemma3 (text_config inside a vision-language config)

  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 0;
  double rms_norm_eps = 1e-6;
  bool tie_word_embeddings = false;
  Activation hidden_act = Activation::silu;

  // Attention softmax scale: head_dim^-0.5, or query_pre_attn_scalar^-0.5 for gemma3.
  double attention_scale = 0.0;
  std::optional<double> query_pre_attn_scalar;
  std::vector<LayerType> layer_types;  // one per layer
  std::optional<int64_t> sliding_window;  // keys per window, current token included
  RopeConfig rope_full;     // full_attention layers (all layers when there is no sliding window)
  RopeConfig rope_sliding;  // sliding_attention layers

  // qwen3_moe
  int64_t num_experts = 0;
  int64_t num_experts_per_tok = 0;
  int64_t moe_intermediate_size = 0;
  int64_t decoder_sparse_step = 1;
  std::vector<int64_t> mlp_only_layers;
  bool norm_topk_prob = false;

  // gemma3: x = embed * sqrt(hidden_size) rounded to the embedding dtype; norms are (1 + w).
  bool scale_embeddings = false;
  bool gemma_norm = false;

  std::string torch_dtype;  // "bfloat16", "float16", ... ("" when absent)
  std::vector<int64_t> bos_token_ids;
  std::vector<int64_t> eos_token_ids;

  bool is_moe_layer(int64_t layer) const;
  const RopeConfig& rope_for_layer(int64_t layer) const;
};

// `source` names the file in errors ("config.json" path).
ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source);
ModelConfig load_model_config(const std::filesystem::path& config_json);

}  // namespace adallm::io
