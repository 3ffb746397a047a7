// The options every command that runs a model shares (--device, --kv-cache-dtype, --threads,
// --max-context) and the one place that turns them into a backend, a loaded model and a generator.
// A device that cannot run is an error, never a quiet switch to another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "engine/generator.h"
#include "model/model.h"

namespace CLI {
class App;
}

namespace adallm::cli {

struct ModelOptions {
  std::string model;  // a model directory
  std::string device = "cpu";
  std::string kv_cache_dtype = "fp8";
  int threads = 0;  // 0: every core
  int64_t max_context = 0;
  int64_t prefill_chunk = 256;
};

// Registers MODEL and the shared options on a subcommand.
void add_model_options(CLI::App& command, ModelOptions& options);

struct LoadedModel {
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<engine::Generator> generator;
};

// Builds the backend for options.device, loads the model and a single-sequence generator.
LoadedModel load_model(const ModelOptions& options, uint64_t seed = 0);

}  // namespace adallm::cli
