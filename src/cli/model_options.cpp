// Backend choice and model loading for the model-running commands (see model_options.h).
#include "cli/model_options.h"

#include <CLI/CLI.hpp>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "core/log.h"
#include "io/hf_hub.h"

#ifdef ADALLM_WITH_CUDA
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#endif

namespace adallm::cli {

std::string model_directory(const std::string& model, const std::string& revision) {
  return io::resolve_model(model, revision, io::HubSettings::from_environment()).string();
}

void add_revision_option(CLI::App& command, std::string& revision) {
  command.add_option("--revision", revision, "branch, tag or commit of a Hugging Face repo id MODEL (default main)");
}

void add_model_options(CLI::App& command, ModelOptions& o, bool model_required) {
  command.add_option("model", o.model, kModelHelp)->required(model_required);
  add_revision_option(command, o.revision);
  command.add_option("--device", o.device, "cpu or cuda (default cpu)")->check(CLI::IsMember({"cpu", "cuda"}));
  command.add_option("--kv-cache-dtype", o.kv_cache_dtype, "fp8 (e4m3, per-layer scales) or bf16 (default fp8)")
      ->check(CLI::IsMember({"fp8", "bf16"}));
  command.add_option("--threads", o.threads, "CPU threads (default: all cores)")->check(CLI::NonNegativeNumber);
  command.add_option("--max-context,--max-model-len", o.max_context,
                     "tokens the KV cache holds (default: min(max_position_embeddings, 8192))")
      ->check(CLI::NonNegativeNumber);
  command.add_option("--prefill-chunk", o.prefill_chunk, "tokens per forward step while prefilling (default 256)")
      ->check(CLI::PositiveNumber);
  command.add_option("--linear-path", o.linear_path,
                     "NVFP4 layers: w4a16 (bf16 activations), w4a8 (activations per token to FP8 e4m3; emulated on "
                     "the CPU) or auto (default: w4a16)")
      ->check(CLI::IsMember({"auto", "w4a16", "w4a8"}));
}

void add_engine_options(CLI::App& command, ModelOptions& o) {
  command.add_flag("--no-prefix-caching", o.no_prefix_caching,
                   "compute every prompt in full instead of reusing the KV pages of earlier identical prefixes");
  command.add_flag("--enforce-eager", o.enforce_eager,
                   "with --device cuda: issue every step's kernels one by one instead of replaying the decode steps' "
                   "CUDA graphs recorded at start");
  command.add_option("--gpu-memory-utilization", o.gpu_memory_utilization,
                     "with --device cuda: the share of device memory the engine may fill; the KV pool gets what is "
                     "left after the weights and a full-size step (default 0.9)")
      ->check(CLI::Range(0.01, 1.0));
}

namespace {

std::unique_ptr<backend::Backend> make_backend(const ModelOptions& o) {
  if (o.device == "cpu") {
    return backend::make_cpu_backend(o.threads, backend::CpuOptions{.fp8_activations = o.linear_path == "w4a8"});
  }
#ifdef ADALLM_WITH_CUDA
  if (cuda::list_devices().empty()) {
    throw Error("--device cuda: no CUDA GPU is visible").hint("use --device cpu");
  }
  return backend::make_cuda_backend(backend::CudaOptions{.device = 0, .linear_path = kernels::parse_linear_path(o.linear_path)});
#else
  throw Error("--device cuda: this adallm was built without CUDA (ADALLM_CUDA=OFF)").hint("use --device cpu");
#endif
}

}  // namespace

LoadedModel load_model(const ModelOptions& o, uint64_t seed, Runner runner) {
  LoadedModel loaded;
  loaded.backend = make_backend(o);
  loaded.model = model::Model::load(o.model, *loaded.backend);
  if (o.linear_path == "w4a8") {
    if (!loaded.model->quant().quantized()) {
      throw Error("--linear-path w4a8: " + o.model + " has no NVFP4 weights (w4a8 quantizes the activations of NVFP4 "
                  "layers)")
          .hint("use an NVFP4 checkpoint, or drop --linear-path");
    }
    if (o.device == "cpu") {
      log::info("NVFP4 layers: W4A8 emulated on the CPU (each token's activations rounded to FP8 e4m3 first)");
    }
  }
  const backend::KvCacheDType kv_cache_dtype = backend::parse_kv_cache_dtype(o.kv_cache_dtype);
  if (kv_cache_dtype == backend::KvCacheDType::fp8_e4m3 && !loaded.model->has_kv_scales()) {
    log::info("the checkpoint has no FP8 KV-cache scales: the FP8 cache uses scale 1.0");
  }
  if (runner == Runner::none) return loaded;
  if (runner == Runner::engine) {
    engine::EngineOptions e;
    e.max_model_len = o.max_context;
    e.max_num_seqs = o.max_num_seqs;
    e.max_num_batched_tokens = o.prefill_chunk;
    e.kv_cache_dtype = kv_cache_dtype;
    e.seed = seed;
    e.prefix_caching = !o.no_prefix_caching;
    e.enforce_eager = o.enforce_eager;
    e.gpu_memory_utilization = o.gpu_memory_utilization;
    loaded.engine = std::make_unique<engine::Engine>(*loaded.model, *loaded.backend, e);
    return loaded;
  }
  engine::GeneratorOptions g;
  g.max_context = o.max_context;
  g.prefill_chunk = o.prefill_chunk;
  g.kv_cache_dtype = kv_cache_dtype;
  g.seed = seed;
  loaded.generator = std::make_unique<engine::Generator>(*loaded.model, *loaded.backend, g);
  return loaded;
}

}  // namespace adallm::cli
