// Quantization config → one internal description, whatever wrote it: ModelOpt (hf_quant_config.json,
// preferred when present, and/or config.json quantization_config with quant_method "modelopt"),
// compressed-tensors (quant_method "compressed-tensors", format "nvfp4-pack-quantized"), or none (a BF16
// or FP16 checkpoint). Which tensors a module actually holds is checked later by the checkpoint ledger.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace adallm::io {

enum class QuantFormat { none, modelopt, compressed_tensors };
enum class KvCacheQuant { none, fp8_e4m3 };

const char* quant_format_name(QuantFormat format);

struct QuantConfig {
  QuantFormat format = QuantFormat::none;
  std::string quant_algo;             // "NVFP4" or "W4A16_NVFP4" (ModelOpt spelling; CT maps to these)
  bool activations_quantized = false;  // W4A4 checkpoints carry input scales; AdaLLM runs W4A16 anyway
  int64_t group_size = 16;
  // ModelOpt: fnmatch wildcards ("lm_head", "model.layers.*.mlp.gate"); a pattern "foo*" also matches
  // "foo". compressed-tensors: exact module names, or "re:<regex>" matched from the start of the name.
  std::vector<std::string> exclude_modules;
  KvCacheQuant kv_cache = KvCacheQuant::none;
  std::string producer;  // "modelopt 0.31.0", "compressed-tensors 0.12.2", ...
  std::string source;    // the file it came from

  bool quantized() const { return format != QuantFormat::none; }
  // True when `module` (e.g. "model.layers.0.mlp.gate") is listed as unquantized.
  bool is_excluded(std::string_view module) const;
};

// Reads model_dir/hf_quant_config.json if present, else config_json["quantization_config"]. A present but
// unsupported method or algorithm (FP8, INT4 AWQ, MXFP4, ...) is an error naming it.
QuantConfig load_quant_config(const std::filesystem::path& model_dir, const nlohmann::json& config_json);
QuantConfig parse_modelopt_hf_quant_config(const nlohmann::json& hf_quant_config, const std::string& source);
QuantConfig parse_quantization_config(const nlohmann::json& quantization_config, const std::string& source);

// fnmatch-style match of ModelOpt exclude patterns: '*' any run, '?' one char, '[...]' classes.
bool wildcard_match(std::string_view pattern, std::string_view text);

}  // namespace adallm::io
