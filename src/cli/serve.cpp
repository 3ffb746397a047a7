// `adallm serve MODEL | --synthetic NAME`: the OpenAI-compatible HTTP server over the serving engine. Binds
// loopback unless told otherwise, logs the address it listens on, and shuts down cleanly on SIGINT/SIGTERM
// (open streams end, the engine cancels what is left); a second signal exits at once. --synthetic serves a
// published model's shape with random weights, for measuring the server (bench/http_overhead.sh).
#include <CLI/CLI.hpp>

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "cli/synthetic_model.h"
#include "core/error.h"
#include "core/log.h"
#include "io/generation_config.h"
#include "model/synthetic.h"
#include "server/http_server.h"
#include "server/serving.h"
#include "text/model_text.h"
#include "text/reasoning.h"

namespace adallm::cli {
namespace {

struct ServeArgs {
  ModelOptions model;
  std::string synthetic;
  server::ServerOptions http;
  std::string served_model_name;
  std::string reasoning_parser;  // "" for none
  double sse_keepalive_s = 15;
};

int run_serve(ServeArgs& a) {
  // Signals go to one thread that sigwait()s for them: block them before any other thread (the engine's,
  // the CPU backend's workers, HTTP workers) exists, so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  if (a.synthetic.empty() == a.model.model.empty()) throw Error("give a model directory or --synthetic NAME, not both");
  // A synthetic checkpoint is gigabytes in the temporary directory: an early exit removes it too.
  const std::string synthetic_dir = a.synthetic.empty() ? "" : SyntheticModel::temp_dir(a.synthetic, "serve").string();
  signal(SIGPIPE, SIG_IGN);  // a client that went away is a failed write, not the end of the process

  // Until the server exists (loading a large model takes a while) a signal ends the process at once.
  std::atomic<server::HttpServer*> http_ptr{nullptr};
  std::atomic<bool> finished{false};
  std::thread signal_thread([&] {
    bool stopping = false;
    for (;;) {
      int sig = 0;
      if (sigwait(&signals, &sig) != 0) continue;
      if (finished.load()) return;
      server::HttpServer* http = http_ptr.load();
      if (http == nullptr || stopping) {
        log::warn(http == nullptr ? "signal outside serving (starting or stopping): exiting now"
                                  : "second signal: exiting now");
        if (!synthetic_dir.empty()) {
          std::error_code ignored;
          std::filesystem::remove_all(synthetic_dir, ignored);
        }
        std::_Exit(130);
      }
      stopping = true;
      log::info(sig == SIGINT ? "SIGINT" : "SIGTERM", ": shutting down");
      http->stop();
    }
  });
  // Ends the signal thread however run_serve ends: it wakes on a signal, sees `finished` and returns.
  struct JoinSignalThread {
    std::atomic<bool>& finished;
    std::thread& thread;
    ~JoinSignalThread() {
      finished.store(true);
      kill(getpid(), SIGTERM);
      thread.join();
    }
  } join_signal_thread{finished, signal_thread};

  a.http.sse_keepalive = std::chrono::milliseconds(static_cast<int64_t>(a.sse_keepalive_s * 1000));
  const std::string given = a.synthetic.empty() ? a.model.model : a.synthetic;
  std::optional<SyntheticModel> synthetic;
  if (a.synthetic.empty()) {
    a.model.model = model_directory(a.model.model, a.model.revision);
  } else {
    log::info("writing a synthetic ", a.synthetic, " checkpoint (random NVFP4 weights) to ", synthetic_dir);
    synthetic.emplace(a.synthetic, "serve", /*with_tokenizer=*/true);
    a.model.model = synthetic->dir().string();
  }
  const text::ModelText model_text = text::load_model_text(a.model.model);
  // Checked before the weights load: a model without <think> tags fails in a second, not after minutes.
  const text::ReasoningFormat reasoning =
      a.reasoning_parser.empty() ? text::ReasoningFormat::none : *text::parse_reasoning_format(a.reasoning_parser);
  text::check_reasoning_support(model_text, reasoning);
  const SamplingParams defaults = io::generation_defaults(a.model.model);
  LoadedModel m = load_model(a.model, 0, Runner::engine);
  const std::string name = a.served_model_name.empty() ? given : a.served_model_name;
  server::Serving serving(*m.engine, model_text, defaults, name, reasoning);
  serving.log_tool_support();
  server::HttpServer http(serving, a.http);
  const int port = http.bind();
  http_ptr.store(&http);
  log::info("serving ", name, " (max_model_len ", serving.max_model_len(), ", max_num_seqs ", a.model.max_num_seqs,
            ") on http://", a.http.host, ":", port, "/v1", a.http.api_key.empty() ? "" : " (API key required)");
  try {
    http.listen();
  } catch (...) {
    http_ptr.store(nullptr);
    throw;
  }
  http_ptr.store(nullptr);
  log::info("server stopped");
  return 0;
}

}  // namespace

Command add_serve(CLI::App& app) {
  auto args = std::make_shared<ServeArgs>();
  args->model.max_num_seqs = 16;
  CLI::App* cmd = app.add_subcommand("serve", "serve a model over an OpenAI-compatible HTTP API");
  add_model_options(*cmd, args->model, /*model_required=*/false);
  add_engine_options(*cmd, args->model);
  cmd->add_option("--synthetic", args->synthetic,
                  "serve a published model shape with random NVFP4 weights and a placeholder tokenizer instead of "
                  "MODEL, for measuring speed (written to a temporary directory, removed at exit)")
      ->check(CLI::IsMember(model::preset_names()));
  cmd->add_option("--host", args->http.host, "address to listen on (default 127.0.0.1: this machine only)");
  cmd->add_option("--port", args->http.port, "TCP port (default 8000; 0 picks a free one, logged)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", args->http.api_key,
                  "require `Authorization: Bearer KEY` on every endpoint but /health (or $ADALLM_API_KEY)")
      ->envname("ADALLM_API_KEY");
  cmd->add_option("--served-model-name", args->served_model_name,
                  "the model name of the API (/v1/models, the `model` field); default: MODEL as given");
  cmd->add_option("--max-num-seqs", args->model.max_num_seqs, "sequences the engine batches at once (default 16)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-num-batched-tokens", args->model.prefill_chunk,
                  "tokens per engine step (prefill chunks and decodes together; same as --prefill-chunk)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-body-bytes", args->http.max_body_bytes, "largest request body; larger gets 413 (default 4 MiB)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--http-threads", args->http.threads,
                  "HTTP worker threads: each open stream or idle keep-alive connection holds one (default 64)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--read-timeout-s", args->http.read_timeout_s,
                  "a client silent this long while sending a request is disconnected (default 30)")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--reasoning-parser", args->reasoning_parser,
                  "split a thinking model's <think>...</think> from its chat answers into reasoning_content: qwen3 "
                  "or deepseek_r1 (the same parser; the tag may open in the prompt)")
      ->check(CLI::IsMember({"qwen3", "deepseek_r1"}));
  cmd->add_option("--sse-keepalive-s", args->sse_keepalive_s,
                  "a stream that sent nothing for this long (queued, or a slow step) gets an SSE comment line "
                  "\": keep-alive\" (default 15)")
      ->check(CLI::Range(0.05, 3600.0));
  return [args] { return run_serve(*args); };
}

}  // namespace adallm::cli
