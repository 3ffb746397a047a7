// One decode step of a whole model on the GPU, eager and replayed as a CUDA graph (Model::enable_graphs),
// the eager one split by op: `batch` sequences of
// `context` tokens each decode one token per step through Model::forward on the CUDA backend. Prints
// the step's wall time, tokens/s, the GPU time of each kind of op (CUDA events around every op), the
// share of the step spent in the linear layers, and the weight-read roofline against the device-to-device
// copy bandwidth measured in the same run. Weights: a model directory, or a synthetic checkpoint of a
// published shape (`--synthetic qwen3-8b`: random NVFP4 codes and block scales, random embeddings).
//
//   decode_step_bench --synthetic qwen3-8b [--batch 1,8,32] [--context 1024] [--steps 50] [--kv-cache-dtype fp8]
//                     [--separate-norms] [--attention-warps 0|4|16]
//
// Several batch sizes run one after another on the same loaded model (one checkpoint write and load).
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#include "core/error.h"
#include "core/log.h"
#include "model/footprint.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "decode_batch.h"

namespace fs = std::filesystem;
using namespace adallm;

namespace {

// One batch size on the loaded model: eager steps, graph steps, then eager steps with every op timed.
void run_batch(backend::Backend& backend, model::Model& model, const model::Footprint& footprint, double copy,
               int64_t batch, int64_t context, int64_t steps, const std::string& kv) {
  const int64_t page_size = 16;
  const int64_t pages = batch * ((context + page_size - 1) / page_size);
  // One page more for the graph's padding rows (unused at a batch size the graph holds exactly).
  auto cache = backend.alloc_kv_cache(model.kv_cache_spec(pages + 1, page_size, backend::parse_kv_cache_dtype(kv)));
  const backend::ForwardBatch b = bench::decode_batch(batch, context, page_size);
  model.reserve(batch, batch);
  std::vector<float> logits;
  for (int i = 0; i < 5; ++i) model.forward(b, *cache, logits);  // warm-up: scratch sizes, cuBLAS plans

  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) model.forward(b, *cache, logits);  // each step ends reading the logits back
  const double step_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count() / double(steps);

  model::GraphPlan plan;
  plan.batch_sizes = {batch};
  plan.max_pages_per_seq = b.max_pages_per_seq;
  plan.pad_page = static_cast<int32_t>(pages);
  plan.max_keys = static_cast<int32_t>(context);
  model.enable_graphs(plan, *cache);
  for (int i = 0; i < 5; ++i) model.forward(b, *cache, logits);
  const auto graph_start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) model.forward(b, *cache, logits);
  const double graph_ms = std::chrono::duration<double, std::milli>(Clock::now() - graph_start).count() / double(steps);
  model.disable_graphs();

  backend::set_op_profiling(backend, true);
  const auto profiled_start = Clock::now();
  for (int64_t i = 0; i < steps; ++i) model.forward(b, *cache, logits);
  const double profiled_ms =
      std::chrono::duration<double, std::milli>(Clock::now() - profiled_start).count() / double(steps);
  const std::vector<backend::OpTime> ops = backend::take_op_profile(backend);
  backend::set_op_profiling(backend, false);

  const double kv_bytes = double(batch) * double(context) *
                          double(kv == "fp8" ? footprint.kv_bytes_per_token_fp8 : footprint.kv_bytes_per_token_bf16);
  const double bytes = double(footprint.decode_bytes_per_token) + kv_bytes;
  std::printf("%s on %s: batch %lld, context %lld, KV %s; copy bandwidth %.0f GB/s\n", model.describe().c_str(),
              backend.name().c_str(), static_cast<long long>(batch), static_cast<long long>(context), kv.c_str(),
              copy / 1e9);
  std::printf("step %.3f ms eager (%.1f tok/s); weights + KV read per step %.3f GB -> roofline %.3f ms, %.1f %% of it\n",
              step_ms, double(batch) * 1e3 / step_ms, bytes / 1e9, bytes / copy * 1e3, 100.0 * bytes / copy * 1e3 / step_ms);
  std::printf("step %.3f ms as a CUDA graph (%.1f tok/s, %.1f %% of the roofline)\n", graph_ms,
              double(batch) * 1e3 / graph_ms, 100.0 * bytes / copy * 1e3 / graph_ms);
  // An op's GPU time runs from the event before it to the event after it, so the events' own cost and any
  // wait for the host to issue the op count too: shares are of the profiled step (events on), whose
  // ops cover it end to end; the host column is the host's time issuing each op.
  std::printf("profiled step %.3f ms (events around every op)\n", profiled_ms);
  std::printf("%-24s %8s %12s %8s %12s\n", "op", "calls", "us per step", "share", "host us");
  double host_ms = 0, gpu_ms = 0, linear_ms = 0;
  for (const backend::OpTime& op : ops) {
    host_ms += op.host_ms;
    gpu_ms += op.gpu_ms;
    if (op.op.rfind("linear", 0) == 0 || op.op == "lm_head") linear_ms += op.gpu_ms;
    std::printf("%-24s %8lld %12.1f %7.1f%% %12.1f\n", op.op.c_str(), static_cast<long long>(op.calls / steps),
                op.gpu_ms * 1e3 / double(steps), 100.0 * op.gpu_ms / double(steps) / profiled_ms,
                op.host_ms * 1e3 / double(steps));
  }
  const auto line = [&](const char* what, double ms) {
    std::printf("%-24s %8s %12.1f %7.1f%%\n", what, "", ms * 1e3, 100.0 * ms / profiled_ms);
  };
  line("ops in all (GPU)", gpu_ms / double(steps));
  line("linear layers + lm_head", linear_ms / double(steps));
  line("between ops", profiled_ms - gpu_ms / double(steps));
  line("host issuing ops", host_ms / double(steps));
}

int run(int argc, char** argv) {
  CLI::App app{"one decode step of a model on the GPU, eager (split by op) and as a CUDA graph"};
  std::string model_dir, synthetic, kv = "fp8";
  std::vector<int64_t> batches{1};
  int64_t context = 1024, steps = 50;
  app.add_option("model", model_dir, "model directory");
  app.add_option("--synthetic", synthetic, "a published shape: qwen3-8b, llama-3.1-8b, qwen3-30b-a3b, gemma3-27b");
  app.add_option("--batch", batches, "sequences decoding together (a comma-separated list runs each in turn)")
      ->delimiter(',')
      ->check(CLI::PositiveNumber);
  app.add_option("--context", context, "keys per sequence (the decoded token's included)")->check(CLI::PositiveNumber);
  app.add_option("--steps", steps, "timed steps")->check(CLI::PositiveNumber);
  app.add_option("--kv-cache-dtype", kv, "fp8 or bf16")->check(CLI::IsMember({"fp8", "bf16"}));
  bool separate_norms = false;
  app.add_flag("--separate-norms", separate_norms, "every RMSNorm its own kernel (not folded into the GEMV)");
  int attention_warps = 0;
  app.add_option("--attention-warps", attention_warps, "warps per decode-attention block: 0 (chosen per launch), 4 or 16")
      ->check(CLI::IsMember({0, 4, 16}));
  CLI11_PARSE(app, argc, argv);
  if (model_dir.empty() == synthetic.empty()) throw Error("give a model directory or --synthetic NAME");

  fs::path dir = model_dir;
  if (!synthetic.empty()) {
    dir = fs::temp_directory_path() / ("adallm-step-bench-" + synthetic + "-" + std::to_string(::getpid()));
    fs::create_directories(dir);
    model::write_synthetic_checkpoint(dir, model::preset_config(synthetic), model::SyntheticLayout::nvfp4_modelopt,
                                      /*varied=*/true);
  }
  struct Cleanup {
    fs::path dir;
    ~Cleanup() {
      std::error_code ignored;
      if (!dir.empty()) fs::remove_all(dir, ignored);
    }
  } cleanup{synthetic.empty() ? fs::path() : dir};

  const double copy = cuda::measure_copy_bandwidth();
  const model::Footprint footprint = model::checkpoint_footprint(dir);
  auto backend = backend::make_cuda_backend(backend::CudaOptions{.fold_norms = !separate_norms, .decode_attention_warps = attention_warps});
  auto m = model::Model::load(dir, *backend);
  for (const int64_t batch : batches) {
    if (batch != batches.front()) std::printf("\n");
    run_batch(*backend, *m, footprint, copy, batch, context, steps, kv);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "decode_step_bench: %s\n", e.what());
    return 1;
  }
}
