// Metrics counting and the Prometheus text rendering (see metrics.h).
#include "server/metrics.h"

#include <sstream>

namespace adallm::server {

void Metrics::submitted(int64_t prompt_tokens) {
  waiting_.fetch_add(1);
  prompt_tokens_.fetch_add(prompt_tokens);
}

void Metrics::Histogram::observe(double seconds, int64_t times) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (seconds <= bounds[i]) {
      counts[i] += times;
      break;
    }
  }
  count += times;
  sum += seconds * static_cast<double>(times);
}

void Metrics::Histogram::render(std::ostream& os, const char* name, const char* help, const std::string& labels) const {
  os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << " histogram\n";
  int64_t cumulative = 0;
  for (size_t i = 0; i < bounds.size(); ++i) {
    cumulative += counts[i];
    os << name << "_bucket{" << labels << ",le=\"" << bounds[i] << "\"} " << cumulative << '\n';
  }
  os << name << "_bucket{" << labels << ",le=\"+Inf\"} " << count << '\n'
     << name << "_sum{" << labels << "} " << sum << '\n'
     << name << "_count{" << labels << "} " << count << '\n';
}

void Metrics::first_token(double seconds) {
  waiting_.fetch_sub(1);
  running_.fetch_add(1);
  const std::lock_guard<std::mutex> lock(mutex_);
  ttft_.observe(seconds, 1);
}

void Metrics::inter_token(double seconds, int64_t tokens) {
  const std::lock_guard<std::mutex> lock(mutex_);
  inter_token_.observe(seconds, tokens);
}

void Metrics::prefix_cache(int64_t queried, int64_t hits) {
  prefix_cache_queries_.fetch_add(queried);
  prefix_cache_hits_.fetch_add(hits);
}

void Metrics::generated(int64_t tokens) { generation_tokens_.fetch_add(tokens); }

void Metrics::finished(const std::string& reason, bool had_token) {
  (had_token ? running_ : waiting_).fetch_sub(1);
  if (reason == "stop") finished_stop_.fetch_add(1);
  else if (reason == "length") finished_length_.fetch_add(1);
  else if (reason == "cancelled") finished_cancelled_.fetch_add(1);
  else finished_error_.fetch_add(1);
}

void Metrics::http_request(int status) {
  if (status >= 500) http_5xx_.fetch_add(1);
  else if (status >= 400) http_4xx_.fetch_add(1);
  else http_2xx_.fetch_add(1);
}

std::string Metrics::render(const std::string& model_name, const KvGauges& kv) const {
  std::ostringstream os;
  // Prometheus label values escape backslash, quote and newline.
  std::string label;
  for (char c : model_name) {
    if (c == '\\' || c == '"') label += '\\';
    if (c == '\n') {
      label += "\\n";
      continue;
    }
    label += c;
  }
  const std::string model = "model_name=\"" + label + "\"";
  const auto gauge = [&](const char* name, const char* help, const char* type, int64_t value) {
    os << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n'
       << name << '{' << model << "} " << value << '\n';
  };
  gauge("adallm_num_requests_running", "Engine requests that have produced a token and not finished.", "gauge",
        running_.load());
  gauge("adallm_num_requests_waiting", "Engine requests submitted that have no token yet.", "gauge", waiting_.load());
  gauge("adallm_kv_cache_pages_used", "KV cache pages held by sequences (free and evictable cached pages excluded).",
        "gauge", kv.pages_used);
  gauge("adallm_kv_cache_pages_total", "KV cache pages in the pool.", "gauge", kv.num_pages);
  gauge("adallm_prompt_tokens_total", "Prompt tokens submitted to the engine.", "counter", prompt_tokens_.load());
  gauge("adallm_generation_tokens_total", "Tokens generated.", "counter", generation_tokens_.load());
  // vLLM's pair: the hit rate is hits / queries over any window.
  gauge("adallm_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache at admission.", "counter",
        prefix_cache_queries_.load());
  gauge("adallm_prefix_cache_hits_total", "Prompt tokens whose KV the prefix cache held at admission.", "counter",
        prefix_cache_hits_.load());
  os << "# HELP adallm_request_success_total Engine requests finished, by finish reason.\n"
     << "# TYPE adallm_request_success_total counter\n";
  const std::pair<const char*, int64_t> reasons[] = {{"stop", finished_stop_.load()},
                                                     {"length", finished_length_.load()},
                                                     {"cancelled", finished_cancelled_.load()},
                                                     {"error", finished_error_.load()}};
  for (const auto& [reason, count] : reasons) {
    os << "adallm_request_success_total{" << model << ",finished_reason=\"" << reason << "\"} " << count << '\n';
  }
  os << "# HELP adallm_http_responses_total HTTP responses, by status class.\n"
     << "# TYPE adallm_http_responses_total counter\n";
  const std::pair<const char*, int64_t> classes[] = {{"2xx", http_2xx_.load()}, {"4xx", http_4xx_.load()},
                                                     {"5xx", http_5xx_.load()}};
  for (const auto& [cls, count] : classes) os << "adallm_http_responses_total{status=\"" << cls << "\"} " << count << '\n';
  const std::lock_guard<std::mutex> lock(mutex_);
  ttft_.render(os, "adallm_time_to_first_token_seconds", "Seconds from submission to the first token.", model);
  inter_token_.render(os, "adallm_inter_token_latency_seconds",
                      "Seconds between successive tokens of a request (the first token excluded).", model);
  return os.str();
}

}  // namespace adallm::server
