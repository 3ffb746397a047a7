// What a bound checkpoint costs: parameters and bytes per storage type, KV-cache bytes per token, and the
// bytes a batch-1 decode step must read, which is the numerator of every decode roofline AdaLLM reports.
// Presentation (text, JSON) is left to the CLI.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "io/model_config.h"
#include "model/ledger.h"

namespace adallm::model {

struct StorageTally {
  int64_t tensors = 0;
  int64_t parameters = 0;  // logical weights: an NVFP4 byte holds two
  uint64_t bytes = 0;
};

struct Footprint {
  // Keyed by "NVFP4" (packed weights), "NVFP4 block scales", "NVFP4 tensor scales", and the safetensors
  // dtype of everything else ("BF16", "F32", ...). Ignored tensors (vision towers) are not counted.
  std::map<std::string, StorageTally> storage;
  int64_t total_parameters = 0;
  uint64_t tensor_bytes = 0;
  int64_t nvfp4_linears = 0;
  int64_t dense_linears = 0;  // lm_head included when it is not tied
  uint64_t kv_bytes_per_token_fp8 = 0;
  uint64_t kv_bytes_per_token_bf16 = 0;
  // Batch 1, short context: every weight a token passes through (MoE: router + top-k experts per layer),
  // norms, one embedding row and the lm_head.
  uint64_t decode_bytes_per_token = 0;
  int64_t active_parameters = 0;  // parameters behind decode_bytes_per_token
};

Footprint compute_footprint(const ModelTensors& model, const io::ModelConfig& config);
// The same for the checkpoint in `dir`: its config and quantization config read and its tensors bound.
Footprint checkpoint_footprint(const std::filesystem::path& dir);

}  // namespace adallm::model
