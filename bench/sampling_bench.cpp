// Sampling on the GPU (Backend::sample_rows, and Backend::logprobs_rows with 0, 5 and 20 alternatives):
// `rows` rows of a `vocab`-sized fp32 logits row sampled with a few knob sets (greedy, temperature alone,
// Qwen3's top_k 20 + top_p 0.95, top_p 0.9 alone, a flat distribution whose top_p set is most of the
// vocabulary, penalties over a 1,024-token history). Reports µs per call and the rate at which the kernel
// goes over the logits (bytes of one read of the rows per second; the kernel reads a row once per pass, up
// to ~12 passes with top_k and top_p), and the ratio of that one-read rate to the copy bandwidth measured
// in the same run. The logits rotate through buffers of > 256 MB in all, so that a call finds its rows in
// DRAM, as a decode step's sampling does only in part (lm_head has just written them).
//
//   sampling_bench [--rows 1,8,32,64] [--vocab 151936]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#include "backend/sampling.h"
#include "core/error.h"

using namespace adallm;

namespace {

int run(int argc, char** argv) {
  CLI::App app{"GPU sampling (Backend::sample_rows): us per call over rows x vocab fp32 logits"};
  std::vector<int64_t> rows_list{1, 8, 32, 64};
  int64_t vocab = 151936, calls = 20;
  app.add_option("--rows", rows_list, "rows sampled per call")->delimiter(',');
  app.add_option("--vocab", vocab, "vocabulary size");
  app.add_option("--calls", calls, "timed calls per configuration");
  CLI11_PARSE(app, argc, argv);

  const double copy = cuda::measure_copy_bandwidth();
  auto b = backend::make_cuda_backend();
  std::printf("sample_rows on %s: vocab %lld fp32 logits per row; copy %.0f GB/s\n", b->name().c_str(),
              static_cast<long long>(vocab), copy / 1e9);
  std::printf("%-26s %6s %10s %10s %8s\n", "knobs", "rows", "us/call", "GB/s", "of copy");
  std::vector<int32_t> history(1024);
  std::mt19937 rng(3);
  for (int32_t& t : history) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  struct Knobs {
    const char* name;
    std::function<void(backend::SamplingRow&)> set;
  };
  const std::vector<Knobs> knobs = {
      {"greedy", [](backend::SamplingRow& r) { r.temperature = 0.0f; }},
      {"temperature 1", [](backend::SamplingRow& r) { r.temperature = 1.0f; }},
      {"top_k 20, top_p 0.95", [](backend::SamplingRow& r) { r.temperature = 0.6f, r.top_k = 20, r.top_p = 0.95f; }},
      {"top_p 0.9", [](backend::SamplingRow& r) { r.temperature = 0.8f, r.top_p = 0.9f; }},
      {"flat: T 3, top_p 0.99", [](backend::SamplingRow& r) { r.temperature = 3.0f, r.top_p = 0.99f; }},
      {"penalties, top_p 0.9", [&](backend::SamplingRow& r) {
         r.temperature = 0.8f, r.top_p = 0.9f, r.repetition_penalty = 1.1f, r.presence_penalty = 0.5f;
         r.prompt_tokens = std::span<const int32_t>(history).first(512);
         r.output_tokens = std::span<const int32_t>(history).subspan(512);
       }},
  };
  for (const int64_t rows : rows_list) {
    // Random logits (sigma 3: a peaked distribution, as a trained model's), rotated over enough buffers.
    std::vector<float> host(static_cast<size_t>(rows * vocab));
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (float& v : host) v = normal(rng);
    const double bytes = double(rows * vocab) * 4.0;
    const int64_t buffers = std::max<int64_t>(2, static_cast<int64_t>(256e6 / bytes) + 1);
    std::vector<std::unique_ptr<backend::Buffer>> logits;
    for (int64_t i = 0; i < buffers; ++i) {
      logits.push_back(b->upload(backend::HostArray{"logits", host.data(), DType::F32, rows, vocab}, DType::F32));
    }
    auto ids = b->alloc(rows, 1, DType::I32);
    for (const Knobs& k : knobs) {
      std::vector<backend::SamplingRow> sampling(static_cast<size_t>(rows));
      for (size_t r = 0; r < sampling.size(); ++r) {
        k.set(sampling[r]);
        sampling[r].uniform = (static_cast<double>(r) + 0.5) / static_cast<double>(rows);
      }
      // Penalties change the logits in place: the timed calls see rows penalized several times, which
      // costs the same.
      for (int64_t i = 0; i < buffers; ++i) b->sample_rows(logits[static_cast<size_t>(i)]->view(), sampling, ids->view());
      backend::set_op_profiling(*b, true);
      for (int64_t i = 0; i < calls; ++i) {
        b->sample_rows(logits[static_cast<size_t>(i % buffers)]->view(), sampling, ids->view());
      }
      const std::vector<backend::OpTime> times = backend::take_op_profile(*b);
      backend::set_op_profiling(*b, false);
      const double us = times.at(0).gpu_ms * 1e3 / double(calls);
      std::printf("%-26s %6lld %10.1f %10.0f %7.1f%%\n", k.name, static_cast<long long>(rows), us, bytes / us / 1e3,
                  100.0 * bytes / (us / 1e6) / copy);
    }
    // Backend::logprobs_rows over the same rows (two passes over each row, then the top_n selection).
    auto chosen = b->alloc(rows, 1, DType::F32);
    auto top_ids = b->alloc(rows, backend::kMaxTopLogprobs, DType::I32);
    auto top_lp = b->alloc(rows, backend::kMaxTopLogprobs, DType::F32);
    for (const int64_t top_n : {int64_t{0}, int64_t{5}, backend::kMaxTopLogprobs}) {
      const auto call = [&](int64_t i) {
        b->logprobs_rows(logits[static_cast<size_t>(i % buffers)]->view(), ids->view(), top_n, chosen->view(),
                         top_ids->view().col_slice(0, top_n), top_lp->view().col_slice(0, top_n));
      };
      for (int64_t i = 0; i < buffers; ++i) call(i);
      backend::set_op_profiling(*b, true);
      for (int64_t i = 0; i < calls; ++i) call(i);
      const std::vector<backend::OpTime> times = backend::take_op_profile(*b);
      backend::set_op_profiling(*b, false);
      const double us = times.at(0).gpu_ms * 1e3 / double(calls);
      const std::string name = "logprobs, top " + std::to_string(top_n);
      std::printf("%-26s %6lld %10.1f %10.0f %7.1f%%\n", name.c_str(), static_cast<long long>(rows), us,
                  bytes / us / 1e3, 100.0 * bytes / (us / 1e6) / copy);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sampling_bench: %s\n", e.what());
    return 1;
  }
}
