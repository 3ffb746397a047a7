// Synthetic checkpoints of published model shapes (Qwen3-8B, Llama-3.1-8B, Qwen3-30B-A3B, Gemma3-27B) for
// tests and benchmarks that need the real sizes but not real weights. The tensor list is derived from a
// config exactly as the ledger expects it; data are zeros in a sparse file (no disk blocks) except the
// per-tensor scales, which must be valid. Random weights for numerics are the caller's business.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/dtype.h"
#include "io/model_config.h"

namespace adallm::model {

enum class SyntheticLayout { bf16, nvfp4_modelopt, nvfp4_compressed_tensors };

// What a synthetic tensor holds: zeros (a sparse hole), ones, or random values (BF16 only).
enum class SyntheticFill { zeros, ones, random };

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  SyntheticFill fill = SyntheticFill::zeros;
};

// config.json of a published model: "qwen3-8b", "llama-3.1-8b", "qwen3-30b-a3b", "gemma3-27b".
nlohmann::json preset_config(std::string_view preset);
std::vector<std::string> preset_names();

// Every tensor a checkpoint of `config` holds in `layout` (lm_head, embeddings, norms and routers BF16).
std::vector<TensorSpec> checkpoint_layout(const io::ModelConfig& config, SyntheticLayout layout);

// Writes config.json (+ hf_quant_config.json for ModelOpt) and one sparse model.safetensors into `dir`.
// `varied`: the token embeddings, the lm_head, MoE routers and NVFP4 linear layers (codes and block scales)
// get random values and the norms ones, so that hidden states, sampled tokens and expert choices differ
// between tokens as in a real model and no kernel is timed on zeros (benchmarks: with all zeros every token
// would pick the same experts, and a GEMM on zeros may run faster than on data). Without it everything but
// the per-tensor scales is zeros in a sparse file (quick to write, for the layout tests).
void write_synthetic_checkpoint(const std::filesystem::path& dir, const nlohmann::json& config_json,
                                SyntheticLayout layout, bool varied = false);

// One safetensors file holding `specs` in order: zeros in a sparse file unless a spec's fill says otherwise;
// F32 scalars are valid scales (weight_scale_2 = 1/2688, weight_global_scale = 2688).
void write_sparse_safetensors(const std::filesystem::path& file, const std::vector<TensorSpec>& specs);

}  // namespace adallm::model
