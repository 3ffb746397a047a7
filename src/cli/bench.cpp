// `adallm bench MODEL | --synthetic NAME`: offline throughput and latency through the serving engine. For
// each batch size, that many requests of --input-len random tokens each generate --output-len tokens
// (greedy, end-of-sequence ignored), all submitted at once; the table gives tokens/s, the decode step's
// time, time to first token, memory (on the GPU the device memory in use, KV pool included; on the CPU the
// host's resident set), and the share of the bandwidth roofline: the bytes a decode step must read
// (weights once, plus every sequence's KV) over the copy bandwidth measured at start (device-to-device on
// the GPU, host memcpy on the CPU).
// The engine is driven directly (no engine thread), as the serving loop would drive it.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/synthetic_model.h"
#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "engine/engine_core.h"
#include "model/footprint.h"
#include "model/synthetic.h"

#ifdef ADALLM_WITH_CUDA
#include "backend/cuda/device.h"
#endif

namespace adallm::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchArgs {
  ModelOptions model;
  std::string synthetic;
  std::vector<int64_t> batches = {1, 4, 16, 64};
  int64_t input_len = 128;
  int64_t output_len = 128;
  int64_t max_num_batched_tokens = 2048;
  SamplingParams sampling = greedy();  // every request's; greedy unless asked
  std::string json_path;

  static SamplingParams greedy() {
    SamplingParams p;
    p.temperature = 0.0f;
    return p;
  }
};

struct BatchResult {
  int64_t batch = 0;
  double seconds = 0, tokens_per_s = 0;
  double decode_ms_per_step = 0, decode_tokens_per_s = 0;
  double ttft_ms_mean = 0, ttft_ms_max = 0;
  int64_t steps = 0;
  uint64_t memory_bytes = 0;
  double roofline_bytes_per_step = 0, roofline_share = 0;
};

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Host memory copy bandwidth, counting bytes read and written (as the GPU benchmarks count a
// device-to-device copy): the best of several copies of a buffer far larger than the caches.
double host_copy_bandwidth() {
  const size_t bytes = size_t{256} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 2);
  double best = 0;
  for (int i = 0; i < 4; ++i) {
    const auto start = Clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    const double s = seconds_between(start, Clock::now());
    best = std::max(best, 2.0 * double(bytes) / s);
    std::swap(a, b);
  }
  return best;
}

// The process's resident memory now (VmRSS): read while a batch's engine and KV cache still exist, it is
// that batch's footprint on the host (the process high-water mark would keep the copy test's buffers).
uint64_t resident_bytes() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;  // in kB
  }
  return 0;
}

bool on_gpu(const BenchArgs& a) { return a.model.device == "cuda"; }

#ifdef ADALLM_WITH_CUDA
double gpu_copy_bandwidth() { return cuda::measure_copy_bandwidth(); }
#else
double gpu_copy_bandwidth() { throw Error("this adallm was built without CUDA"); }
#endif

// Device memory in use (the GPU), or the process's resident set (the CPU).
uint64_t memory_in_use(const backend::Backend& backend) {
  const std::optional<backend::DeviceMemoryInfo> device = backend.device_memory();
  return device ? static_cast<uint64_t>(device->total - device->free) : resident_bytes();
}


BatchResult run_batch(LoadedModel& m, const BenchArgs& a, int64_t batch, const model::Footprint& footprint,
                      double copy_bandwidth) {
  engine::EngineOptions o;
  o.max_model_len = a.input_len + a.output_len;
  o.max_num_seqs = batch;
  o.max_num_batched_tokens = std::max(a.max_num_batched_tokens, batch);  // every decode fits one step
  o.prefix_caching = !a.model.no_prefix_caching;
  o.enforce_eager = a.model.enforce_eager;
  o.num_pages = batch * ((o.max_model_len + o.page_size - 1) / o.page_size);
  o.kv_cache_dtype = backend::parse_kv_cache_dtype(a.model.kv_cache_dtype);
  engine::EngineCore core(*m.model, *m.backend, o);

  std::mt19937 rng(static_cast<uint32_t>(batch));
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(m.model->config().vocab_size - 1));
  const auto start = Clock::now();
  for (int64_t r = 0; r < batch; ++r) {
    GenerateRequest request;
    request.prompt.resize(static_cast<size_t>(a.input_len));
    for (int32_t& t : request.prompt) t = token(rng);
    request.sampling = a.sampling;
    request.max_tokens = a.output_len;
    core.add(request);
  }

  Progress progress("batch " + std::to_string(batch), static_cast<uint64_t>(batch * a.output_len));
  BatchResult result;
  result.batch = batch;
  std::vector<double> decode_steps;  // steps in which every request decoded one token
  int64_t with_first_token = 0, finished = 0;
  std::vector<double> ttft;
  while (!core.idle()) {
    const auto step_start = Clock::now();
    const std::vector<RequestOutput> events = core.step();
    const double step_seconds = seconds_between(step_start, Clock::now());
    ++result.steps;
    int64_t tokens = 0;
    bool all_decoding = with_first_token == batch && finished == 0;
    for (const RequestOutput& e : events) {
      tokens += static_cast<int64_t>(e.tokens.size());
      if (e.completion_tokens == static_cast<int64_t>(e.tokens.size()) && !e.tokens.empty()) {
        ++with_first_token;
        ttft.push_back(e.time_to_first_token);
      }
      if (e.finished()) {
        ++finished;
        if (e.finish_reason == FinishReason::error) throw Error("bench request failed: " + e.error);
      }
    }
    all_decoding = all_decoding && tokens == batch;
    if (all_decoding) decode_steps.push_back(step_seconds);
    progress.advance(static_cast<uint64_t>(tokens));
  }
  progress.finish();
  result.seconds = seconds_between(start, Clock::now());
  result.memory_bytes = memory_in_use(*m.backend);
  result.tokens_per_s = double(batch * a.output_len) / result.seconds;
  if (!decode_steps.empty()) {
    std::sort(decode_steps.begin(), decode_steps.end());
    result.decode_ms_per_step = 1e3 * decode_steps[decode_steps.size() / 2];
    result.decode_tokens_per_s = double(batch) / (result.decode_ms_per_step / 1e3);
  }
  for (double t : ttft) result.ttft_ms_mean += 1e3 * t / double(ttft.size());
  if (!ttft.empty()) result.ttft_ms_max = 1e3 * *std::max_element(ttft.begin(), ttft.end());
  // A decode step at the median context (input + output / 2) reads the weights once and each sequence's KV.
  const uint64_t kv_per_token =
      o.kv_cache_dtype == backend::KvCacheDType::fp8_e4m3 ? footprint.kv_bytes_per_token_fp8 : footprint.kv_bytes_per_token_bf16;
  result.roofline_bytes_per_step =
      double(footprint.decode_bytes_per_token) + double(batch) * double(a.input_len + a.output_len / 2) * double(kv_per_token);
  if (result.decode_ms_per_step > 0) {
    result.roofline_share = result.roofline_bytes_per_step / copy_bandwidth / (result.decode_ms_per_step / 1e3);
  }
  return result;
}

int run_bench(BenchArgs a) {
  if (a.synthetic.empty() == a.model.model.empty()) throw Error("give a model directory or --synthetic NAME, not both");
  if (a.input_len < 1 || a.output_len < 1) throw Error("--input-len and --output-len must be at least 1");
  a.sampling.validate();
  if (a.batches.empty()) throw Error("--batch needs at least one size");
  for (int64_t b : a.batches) {
    if (b < 1) throw Error("--batch sizes must be at least 1, got " + std::to_string(b));
  }
  std::optional<SyntheticModel> synthetic;
  if (a.synthetic.empty()) {
    a.model.model = model_directory(a.model.model, a.model.revision);
  } else {
    synthetic.emplace(a.synthetic, "bench", /*with_tokenizer=*/false);
    a.model.model = synthetic->dir().string();
  }

  const model::Footprint footprint = model::checkpoint_footprint(a.model.model);
  LoadedModel m = load_model(a.model, 0, Runner::none);
  const double copy_bandwidth = on_gpu(a) ? gpu_copy_bandwidth() : host_copy_bandwidth();
  std::printf("adallm bench: %s on %s; copy bandwidth %.1f GB/s (read + write); input %lld, output %lld tokens\n",
              m.model->describe().c_str(), m.backend->name().c_str(), copy_bandwidth / 1e9,
              static_cast<long long>(a.input_len), static_cast<long long>(a.output_len));
  std::printf("sampling: %s\n", a.sampling.temperature == 0.0f
                                   ? "greedy"
                                   : ("temperature " + std::to_string(a.sampling.temperature) + ", top_k " +
                                      std::to_string(a.sampling.top_k) + ", top_p " + std::to_string(a.sampling.top_p))
                                         .c_str());
  std::printf("%6s %10s %12s %12s %16s %10s %9s\n", "batch", "tok/s", "decode ms", "decode tok/s", "TTFT ms mean/max",
              "memory GB", "roofline");
  nlohmann::json results = nlohmann::json::array();
  for (int64_t batch : a.batches) {
    const BatchResult r = run_batch(m, a, batch, footprint, copy_bandwidth);
    // No step had every request decoding (a budget too small for the prompts to overlap): no decode figures.
    const bool decoded = r.decode_ms_per_step > 0;
    char decode[64] = "           -            -", roofline[16] = "        -";
    if (decoded) {
      std::snprintf(decode, sizeof(decode), "%12.3f %12.1f", r.decode_ms_per_step, r.decode_tokens_per_s);
      std::snprintf(roofline, sizeof(roofline), "%8.1f%%", 100.0 * r.roofline_share);
    }
    std::printf("%6lld %10.1f %s %7.1f / %6.1f %10.2f %s\n", static_cast<long long>(r.batch), r.tokens_per_s, decode,
                r.ttft_ms_mean, r.ttft_ms_max, double(r.memory_bytes) / 1e9, roofline);
    std::fflush(stdout);
    results.push_back({{"batch", r.batch},
                       {"seconds", r.seconds},
                       {"steps", r.steps},
                       {"tokens_per_s", r.tokens_per_s},
                       {"decode_ms_per_step", decoded ? nlohmann::json(r.decode_ms_per_step) : nlohmann::json()},
                       {"decode_tokens_per_s", decoded ? nlohmann::json(r.decode_tokens_per_s) : nlohmann::json()},
                       {"ttft_ms_mean", r.ttft_ms_mean},
                       {"ttft_ms_max", r.ttft_ms_max},
                       {"memory_bytes", r.memory_bytes},
                       {"roofline_bytes_per_step", r.roofline_bytes_per_step},
                       {"roofline_share", decoded ? nlohmann::json(r.roofline_share) : nlohmann::json()}});
  }
  if (!a.json_path.empty()) {
    const nlohmann::json j = {{"model", m.model->describe()},
                              {"device", m.backend->name()},
                              {"copy_bandwidth_bytes_per_s", copy_bandwidth},
                              {"memory", on_gpu(a) ? "device memory in use at the end of each batch (KV pool included)"
                                                   : "resident set of the process at the end of each batch (host)"},
                              {"input_len", a.input_len},
                              {"temperature", a.sampling.temperature},
                              {"top_k", a.sampling.top_k},
                              {"top_p", a.sampling.top_p},
                              {"output_len", a.output_len},
                              {"kv_cache_dtype", a.model.kv_cache_dtype},
                              {"results", results}};
    std::ofstream out(a.json_path);
    if (!out) throw Error("cannot write the JSON report").file(a.json_path);
    out << j.dump(2) << "\n";
  }
  return 0;
}

}  // namespace

Command add_bench(CLI::App& app) {
  auto args = std::make_shared<BenchArgs>();
  CLI::App* cmd = app.add_subcommand("bench", "offline throughput and latency through the serving engine");
  add_model_options(*cmd, args->model, /*model_required=*/false);
  add_engine_options(*cmd, args->model);
  cmd->add_option("--synthetic", args->synthetic,
                  "a published model shape (random NVFP4 weights, embeddings and routers) instead of MODEL")
      ->check(CLI::IsMember(model::preset_names()));
  cmd->add_option("--batch", args->batches, "batch sizes, e.g. 1,4,16,64")->delimiter(',');
  cmd->add_option("--input-len", args->input_len, "prompt tokens per request (default 128)");
  cmd->add_option("--output-len", args->output_len, "generated tokens per request (default 128)");
  cmd->add_option("--max-num-batched-tokens", args->max_num_batched_tokens,
                  "tokens per engine step (default 2048; at least the batch size is used)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--temperature", args->sampling.temperature, "sampling temperature of every request (default 0: greedy)");
  cmd->add_option("--top-k", args->sampling.top_k, "top_k of every request (default 0: off)");
  cmd->add_option("--top-p", args->sampling.top_p, "top_p of every request (default 1: off)");
  cmd->add_option("--json", args->json_path, "also write the results as JSON to this file");
  return [args] { return run_bench(*args); };
}

}  // namespace adallm::cli
