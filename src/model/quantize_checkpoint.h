// `adallm quantize`: a BF16/FP16 Hugging Face checkpoint → an NVFP4 one, in ModelOpt's layout (bit-identical
// to ModelOpt's algorithm) or compressed-tensors'. It lives in model/ rather than quant/ because choosing
// what to quantize and which Linears share a scale (q/k/v, gate/up, per expert) needs the architecture;
// the numerics are quant/nvfp4.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "core/progress.h"

namespace adallm::model {

struct QuantizeOptions {
  enum class Format { modelopt, compressed_tensors };
  Format format = Format::modelopt;
  std::vector<std::string> exclude;  // fnmatch patterns over module names, e.g. "model.layers.0.*"
  bool lm_head = false;              // also quantize an untied lm_head
  uint64_t max_shard_bytes = 5'000'000'000;
  Progress::Mode progress = Progress::Mode::automatic;
};

struct QuantizeReport {
  int64_t quantized_linears = 0;
  int64_t dense_linears = 0;  // excluded by default or by --exclude
  uint64_t bytes_in = 0;
  uint64_t bytes_out = 0;
  std::vector<std::string> files;  // safetensors files written
};

QuantizeReport quantize_checkpoint(const std::filesystem::path& source, const std::filesystem::path& destination,
                                   const QuantizeOptions& options);

}  // namespace adallm::model
