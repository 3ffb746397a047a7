// The options every command that runs a model shares (MODEL and --revision, --device, --kv-cache-dtype,
// --threads, --max-context, --prefill-chunk, --linear-path) and the one place that turns them into a
// backend, a loaded model and a generator or engine. MODEL, for every command, is a local directory or a
// Hugging Face repo id; model_directory() turns it into the directory to load.
// A device that cannot run is an error, never a quiet switch to another.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "backend/backend.h"
#include "engine/engine.h"
#include "engine/generator.h"
#include "model/model.h"

namespace CLI {
class App;
}

namespace adallm::cli {

struct ModelOptions {
  std::string model;     // a model directory (a repo id until model_directory() resolves it)
  std::string revision;  // --revision of a repo id; "" for the default (main)
  std::string device = "cpu";
  std::string kv_cache_dtype = "fp8";
  int threads = 0;  // 0: every core
  int64_t max_context = 0;
  int64_t prefill_chunk = 256;
  // NVFP4 Linear path: auto and w4a16 run bf16 (here fp32) activations; w4a8 quantizes them per token to
  // FP8 e4m3 first (on the CPU an emulation, for measuring its accuracy).
  std::string linear_path = "auto";
  bool no_prefix_caching = false;  // engine commands (run, bench): --no-prefix-caching
  bool enforce_eager = false;      // engine commands: --enforce-eager
  double gpu_memory_utilization = 0.9;  // engine commands on a GPU: the KV pool's share of device memory
  int64_t max_num_seqs = 1;  // engine: sequences in one batch (run: 1; serve: --max-num-seqs)
};

// MODEL -> the directory to load: a local path as it is, a Hugging Face repo id (org/name[@revision],
// or --revision) its snapshot in the Hugging Face cache, downloaded when missing (io/hf_hub.h; the
// environment says where the cache is, the endpoint, the token and whether to stay offline).
std::string model_directory(const std::string& model, const std::string& revision);
// --revision (a branch, tag or commit of a repo id MODEL), for commands that register MODEL themselves.
void add_revision_option(CLI::App& command, std::string& revision);
// The help text of a MODEL argument.
inline constexpr const char* kModelHelp = "model directory, or Hugging Face repo id org/name[@revision]";

// Registers MODEL (required unless `model_required` is false), --revision and the shared options on a
// subcommand.
void add_model_options(CLI::App& command, ModelOptions& options, bool model_required = true);
// The options of the commands that run the serving engine (run, bench): --no-prefix-caching.
void add_engine_options(CLI::App& command, ModelOptions& options);

struct LoadedModel {
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<model::Model> model;
  std::unique_ptr<engine::Generator> generator;  // for scoring (logits, perplexity)
  std::unique_ptr<engine::Engine> engine;        // for generation (run); destroyed first
};

// What load_model() puts beside the model.
enum class Runner { generator, engine, none };

// Builds the backend for options.device, loads the model and a single-sequence generator or the serving
// engine (options.max_num_seqs sequences at a time, --prefill-chunk tokens per step, prefix caching).
LoadedModel load_model(const ModelOptions& options, uint64_t seed = 0, Runner runner = Runner::generator);

}  // namespace adallm::cli
