// The server's Prometheus metrics, counted by the serving layer from what it sees of each request (the
// engine thread is not asked): requests running (admitted: a first token came) and waiting (submitted,
// no token yet), prompt and generated tokens, finished requests by reason, time-to-first-token and
// inter-token latency histograms (the engine's own timestamps, so HTTP and detokenizing are left out),
// prefix-cache queries and hits in prompt tokens, and the KV pages in use (the engine's, handed to
// render()). Thread-safe; GET /metrics renders it in the Prometheus text format.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <vector>

namespace adallm::server {

class Metrics {
 public:
  // Upper bounds (seconds) of the time-to-first-token buckets.
  static constexpr std::array<double, 12> kTtftBuckets = {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
  // Upper bounds (seconds) of the inter-token latency buckets: a GPU decode step is milliseconds, a CPU
  // one up to seconds.
  static constexpr std::array<double, 14> kInterTokenBuckets = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075,
                                                                0.1,   0.25,   0.5,   1,    2.5,   5,    10};

  void submitted(int64_t prompt_tokens);         // one engine request queued
  void first_token(double time_to_first_token);  // it left the queue: waiting -> running
  // `tokens` more tokens of a request came `seconds` after its previous one, evenly spaced.
  void inter_token(double seconds, int64_t tokens = 1);
  // At admission: the request's prompt tokens looked up in the prefix cache and how many were found there.
  void prefix_cache(int64_t queried, int64_t hits);
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
  // Counts per bucket (not cumulative) over fixed upper bounds; Metrics' mutex guards it.
  struct Histogram {
    explicit Histogram(std::span<const double> bucket_bounds)
        : bounds(bucket_bounds), counts(bucket_bounds.size(), 0) {}
    void observe(double seconds, int64_t times);
    void render(std::ostream& os, const char* name, const char* help, const std::string& labels) const;
    std::span<const double> bounds;
    std::vector<int64_t> counts;
    int64_t count = 0;
    double sum = 0.0;
  };

  std::atomic<int64_t> waiting_{0}, running_{0};
  std::atomic<int64_t> prompt_tokens_{0}, generation_tokens_{0};
  std::atomic<int64_t> prefix_cache_queries_{0}, prefix_cache_hits_{0};
  std::atomic<int64_t> finished_stop_{0}, finished_length_{0}, finished_cancelled_{0}, finished_error_{0};
  std::atomic<int64_t> http_2xx_{0}, http_4xx_{0}, http_5xx_{0};
  mutable std::mutex mutex_;
  Histogram ttft_{kTtftBuckets};
  Histogram inter_token_{kInterTokenBuckets};
};

}  // namespace adallm::server
