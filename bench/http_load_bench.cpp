// HTTP load generator for an OpenAI-compatible server (`adallm serve`, or any other): N concurrent clients,
// each sending streaming /v1/completions requests one after another (end-of-sequence ignored, so every
// request generates --max-tokens), until --requests have been sent or --duration has passed. Prompts are
// --prompt-len random token ids (the endpoint's token-id prompt: no tokenizer needed here) or a fixed
// --prompt text. It starts nothing itself; bench/http_overhead.sh starts the server and compares with
// `adallm bench`. Prints requests/s, generated tokens/s, TTFT, inter-token latency (the gaps between
// streamed chunks) and time per output token percentiles, and failures; exit code 1 when any request failed.
#include <CLI/CLI.hpp>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

struct Args {
  std::string url = "http://127.0.0.1:8000";
  std::string model;    // "" leaves the field out: the server's model
  std::string api_key;  // or $OPENAI_API_KEY
  int clients = 64;
  int64_t requests = 0;   // 0: until --duration
  double duration = 0;    // seconds; 0: until --requests
  int64_t max_tokens = 128;
  int64_t prompt_len = 128;
  std::string prompt;     // set: this text instead of random token ids
  int32_t vocab_size = 0;  // 0: the ids of the byte range, which every vocabulary has
  uint64_t seed = 0;
  std::string json_path;
};

// One request as the client saw it.
struct Outcome {
  bool ok = false;
  std::string error;
  double ttft = 0;     // seconds to the first chunk with text
  double latency = 0;  // seconds to the end of the stream
  int64_t completion_tokens = 0;
  std::vector<double> gaps;  // seconds between successive chunks with text
};

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

// Reads the server-sent events of one streamed completion: a `data: {json}` line per chunk, `data: [DONE]`
// last, an `error` object in place of a chunk when the server failed it mid-stream.
class SseReader {
 public:
  SseReader(Outcome& out, Clock::time_point start) : out_(out), start_(start) {}

  bool feed(const char* data, size_t size) {
    buffer_.append(data, size);
    for (size_t end; (end = buffer_.find('\n')) != std::string::npos;) {
      std::string line = buffer_.substr(0, end);
      buffer_.erase(0, end + 1);
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.rfind("data: ", 0) == 0 && !event(line.substr(6))) return false;
    }
    return true;
  }
  bool done() const { return done_; }

 private:
  bool event(const std::string& data) {
    if (data == "[DONE]") {
      done_ = true;
      return true;
    }
    const json chunk = json::parse(data, nullptr, false);
    if (chunk.is_discarded()) return fail("a chunk is not JSON: " + data.substr(0, 200));
    if (chunk.contains("error")) return fail("error event: " + chunk["error"].dump());
    if (chunk.contains("usage") && chunk["usage"].is_object()) {
      out_.completion_tokens = chunk["usage"].value("completion_tokens", int64_t{0});
    }
    if (!chunk.contains("choices") || !chunk["choices"].is_array()) return true;
    for (const json& choice : chunk["choices"]) {
      if (!choice.contains("text") || !choice["text"].is_string() || choice["text"].get_ref<const std::string&>().empty()) {
        continue;
      }
      const double now = seconds_since(start_);
      if (last_ < 0) {
        out_.ttft = now;
      } else {
        out_.gaps.push_back(now - last_);
      }
      last_ = now;
    }
    return true;
  }
  bool fail(std::string message) {
    out_.error = std::move(message);
    return false;
  }

  Outcome& out_;
  Clock::time_point start_;
  std::string buffer_;
  double last_ = -1;
  bool done_ = false;
};

json request_body(const Args& a, std::mt19937_64& rng) {
  json body = {{"max_tokens", a.max_tokens},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}},
               {"ignore_eos", true}};
  if (!a.model.empty()) body["model"] = a.model;
  if (!a.prompt.empty()) {
    body["prompt"] = a.prompt;
  } else {
    // Fresh random ids per request: no two prompts share a prefix-cache page.
    std::uniform_int_distribution<int32_t> id(0, (a.vocab_size > 0 ? a.vocab_size : 256) - 1);
    std::vector<int32_t> ids(static_cast<size_t>(a.prompt_len));
    for (int32_t& t : ids) t = id(rng);
    body["prompt"] = ids;
  }
  return body;
}

Outcome send(httplib::Client& client, const Args& a, const std::string& body) {
  Outcome out;
  const auto start = Clock::now();
  SseReader reader(out, start);
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body;
  req.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  if (!a.api_key.empty()) req.headers.emplace("Authorization", "Bearer " + a.api_key);
  int status = 0;
  std::string error_body;
  req.response_handler = [&](const httplib::Response& res) {
    status = res.status;
    return true;
  };
  req.content_receiver = [&](const char* data, size_t size, uint64_t, uint64_t) {
    if (status != 200) {
      error_body.append(data, std::min<size_t>(size, 500));
      return true;
    }
    return reader.feed(data, size);
  };
  const httplib::Result result = client.send(req);
  out.latency = seconds_since(start);
  if (!out.error.empty()) return out;
  if (!result) {
    out.error = "transport: " + httplib::to_string(result.error());
  } else if (status != 200) {
    out.error = "HTTP " + std::to_string(status) + ": " + error_body;
  } else if (!reader.done()) {
    out.error = "the stream ended without data: [DONE]";
  } else if (out.completion_tokens != a.max_tokens) {
    out.error = "usage says " + std::to_string(out.completion_tokens) + " tokens, not the " +
                std::to_string(a.max_tokens) + " asked for with ignore_eos";
  } else {
    out.ok = true;
  }
  return out;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

double mean(const std::vector<double>& v) {
  double sum = 0;
  for (double x : v) sum += x;
  return v.empty() ? 0 : sum / static_cast<double>(v.size());
}

json summary_of(const std::vector<double>& seconds) {
  return {{"mean_ms", 1e3 * mean(seconds)},
          {"p50_ms", 1e3 * percentile(seconds, 50)},
          {"p90_ms", 1e3 * percentile(seconds, 90)},
          {"p99_ms", 1e3 * percentile(seconds, 99)}};
}

int run(const Args& a) {
  if ((a.requests > 0) == (a.duration > 0)) {
    std::fprintf(stderr, "error: give --requests N or --duration SECONDS (one of them)\n");
    return 2;
  }
  if (a.prompt.empty() && a.prompt_len < 1) {
    std::fprintf(stderr, "error: --prompt-len must be at least 1 (or give --prompt TEXT)\n");
    return 2;
  }
  std::mutex mutex;
  std::vector<Outcome> outcomes;
  std::atomic<int64_t> next{0};
  const auto start = Clock::now();
  const auto deadline = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(a.duration));
  std::vector<std::thread> threads;
  for (int c = 0; c < a.clients; ++c) {
    threads.emplace_back([&, c] {
      httplib::Client client(a.url);
      client.set_keep_alive(true);
      client.set_read_timeout(600, 0);  // a queued request waits for a slot; keep-alive comments come meanwhile
      std::mt19937_64 rng(a.seed * 1000003 + static_cast<uint64_t>(c));
      while (a.requests > 0 ? next.fetch_add(1) < a.requests : Clock::now() < deadline) {
        Outcome out = send(client, a, request_body(a, rng).dump());
        const std::lock_guard<std::mutex> lock(mutex);
        outcomes.push_back(std::move(out));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double wall = seconds_since(start);

  int64_t failures = 0, tokens = 0;
  std::vector<double> ttft, gaps, tpot, latency;
  std::vector<std::string> errors;
  for (const Outcome& o : outcomes) {
    if (!o.ok) {
      ++failures;
      if (errors.size() < 5) errors.push_back(o.error);
      continue;
    }
    tokens += o.completion_tokens;
    ttft.push_back(o.ttft);
    latency.push_back(o.latency);
    gaps.insert(gaps.end(), o.gaps.begin(), o.gaps.end());
    if (o.completion_tokens > 1) tpot.push_back((o.latency - o.ttft) / static_cast<double>(o.completion_tokens - 1));
  }
  const auto done = static_cast<int64_t>(outcomes.size()) - failures;
  const auto row = [](const char* name, const std::vector<double>& v) {
    std::printf("%-26s %9.2f %9.2f %9.2f %9.2f\n", name, 1e3 * mean(v), 1e3 * percentile(v, 50), 1e3 * percentile(v, 90),
                1e3 * percentile(v, 99));
  };
  std::printf("http_load_bench: %s, %d clients, prompt %s, max_tokens %lld, %.1f s\n", a.url.c_str(), a.clients,
              a.prompt.empty() ? (std::to_string(a.prompt_len) + " random token ids").c_str() : "fixed text",
              static_cast<long long>(a.max_tokens), wall);
  std::printf("requests: %lld succeeded, %lld failed\n", static_cast<long long>(done), static_cast<long long>(failures));
  for (const std::string& e : errors) std::printf("  failure: %s\n", e.c_str());
  std::printf("requests/s: %.2f\ngenerated tokens/s: %.1f\n", double(done) / wall, double(tokens) / wall);
  std::printf("%-26s %9s %9s %9s %9s\n", "ms", "mean", "p50", "p90", "p99");
  row("time to first token", ttft);
  row("inter-token latency", gaps);
  row("time per output token", tpot);
  row("request latency", latency);
  if (!a.json_path.empty()) {
    const json j = {{"url", a.url},
                    {"clients", a.clients},
                    {"max_tokens", a.max_tokens},
                    {"prompt_len", a.prompt.empty() ? json(a.prompt_len) : json()},
                    {"seconds", wall},
                    {"requests", done},
                    {"failures", failures},
                    {"generated_tokens", tokens},
                    {"requests_per_s", double(done) / wall},
                    {"generated_tokens_per_s", double(tokens) / wall},
                    {"ttft", summary_of(ttft)},
                    {"inter_token_latency", summary_of(gaps)},
                    {"time_per_output_token", summary_of(tpot)},
                    {"request_latency", summary_of(latency)}};
    std::ofstream out(a.json_path);
    if (!out) {
      std::fprintf(stderr, "error: cannot write %s\n", a.json_path.c_str());
      return 2;
    }
    out << j.dump(2) << "\n";
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"HTTP load generator: concurrent streaming /v1/completions clients against a running server"};
  Args a;
  app.add_option("--url", a.url, "the server's base URL (default http://127.0.0.1:8000)");
  app.add_option("--model", a.model, "the request's model field (default: left out, the server's model)");
  app.add_option("--api-key", a.api_key, "sent as Authorization: Bearer KEY (or $OPENAI_API_KEY)")->envname("OPENAI_API_KEY");
  app.add_option("--clients", a.clients, "concurrent streaming clients (default 64)")->check(CLI::PositiveNumber);
  app.add_option("--requests", a.requests, "requests in all, shared by the clients")->check(CLI::PositiveNumber);
  app.add_option("--duration", a.duration, "seconds to keep sending requests")->check(CLI::PositiveNumber);
  app.add_option("--max-tokens", a.max_tokens, "tokens each request generates (ignore_eos; default 128)")
      ->check(CLI::PositiveNumber);
  app.add_option("--prompt-len", a.prompt_len, "random token ids per prompt (default 128)");
  app.add_option("--prompt", a.prompt, "a fixed text prompt instead of random token ids");
  app.add_option("--vocab-size", a.vocab_size, "random ids come from [0, N) (default 256: the byte range)")
      ->check(CLI::PositiveNumber);
  app.add_option("--seed", a.seed, "seed of the random prompts");
  app.add_option("--json", a.json_path, "also write the results as JSON to this file");
  CLI11_PARSE(app, argc, argv);
  return run(a);
}
