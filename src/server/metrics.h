// The server's Prometheus metrics, counted by the serving layer from what it sees of each request (the
// engine thread is not asked): requests running (admitted: a first token came) and waiting (submitted,
// no token yet), prompt and generated tokens, finished requests by reason, a time-to-first-token
// histogram, and the KV pages in use (the engine's, handed to render()). Thread-safe; GET /metrics renders it in the Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace adallm::server {

class Metrics {
 public:
  // Upper bounds (seconds) of the time-to-first-token buckets.
  static constexpr std::array<double, 12> kTtftBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};

  void submitted(int64_t prompt_tokens);         // one engine request queued
  void first_token(double time_to_first_token);  // it left the queue: waiting -> running
  void generated(int64_t tokens);
  // It ended; `had_token` says whether first_token() was called for it.
  void finished(const std::string& reason, bool had_token);
  void http_request(int status);

  // What the engine reports of its KV cache at render time (Engine::kv_stats).
  struct KvGauges {
    int64_t pages_used = 0;
    int64_t num_pages = 0;
  };
  std::string render(const std::string& model_name, const KvGauges& kv) const;

 private:
  std::atomic<int64_t> waiting_{0}, running_{0};
  std::atomic<int64_t> prompt_tokens_{0}, generation_tokens_{0};
  std::atomic<int64_t> finished_stop_{0}, finished_length_{0}, finished_cancelled_{0}, finished_error_{0};
  std::atomic<int64_t> http_2xx_{0}, http_4xx_{0}, http_5xx_{0};
  mutable std::mutex mutex_;
  std::array<int64_t, kTtftBuckets.size()> ttft_counts_{};  // per bucket (not cumulative)
  int64_t ttft_count_ = 0;
  double ttft_sum_ = 0.0;
};

}  // namespace adallm::server
