// `adallm run MODEL ["prompt"]`: generation in the terminal, streaming tokens as they come. With a prompt
// it answers once; without, it is an interactive session that keeps the history (`\q` or end of input
// quits, Ctrl-C stops the current answer and returns to the prompt). A model with a chat template is
// chatted with unless --no-chat; otherwise the text is continued as is. Each turn is a request to the
// server's serving layer (server/serving.h), so that run and serve share chat templating, sampling
// defaults, stop handling, detokenizing and finish reasons.
#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "io/generation_config.h"
#include "server/openai_request.h"
#include "server/serving.h"
#include "text/model_text.h"

namespace adallm::cli {
namespace {

struct RunArgs {
  ModelOptions model;
  std::string prompt;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int32_t> top_k;
  int64_t max_tokens = 256;
  std::optional<uint64_t> seed;
  bool ignore_eos = false;
  std::vector<std::string> stop;
  bool chat = false;
  bool no_chat = false;
  std::string system;
};

std::atomic<bool> g_cancel{false};
extern "C" void on_sigint(int) { g_cancel.store(true); }

class Session {
 public:
  Session(const RunArgs& a, const text::ModelText& t, server::Serving& serving) : args_(a), serving_(serving) {
    if (a.chat && a.no_chat) throw Error("--chat and --no-chat exclude each other");
    if (a.chat && !t.chat_template) {
      throw Error("--chat: the model has no chat template").file(a.model.model).hint("use --no-chat");
    }
    chat_ = t.chat_template.has_value() && !a.no_chat;
    if (chat_ && !a.system.empty()) messages_.push_back({"system", a.system, {}, {}});
    if (!chat_ && !a.system.empty()) throw Error("--system needs chat mode");
  }

  // Answers one user turn, streaming to stdout; the turn and the answer join the history.
  void turn(const std::string& user) {
    std::unique_ptr<server::Generation> generation;
    if (chat_) {
      messages_.push_back({"user", user, {}, {}});
      server::ChatRequest request;
      fill(request);
      request.messages = messages_;
      generation = serving_.chat(request);
    } else {
      history_ += user;
      server::CompletionRequest request;
      fill(request);
      request.prompts.push_back({false, history_, {}});
      generation = serving_.complete(request);
      std::fputs(user.c_str(), stdout);
    }
    std::string answer, finish_reason;
    const auto print = [&](const std::string& piece) {
      answer += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    };
    g_cancel.store(false);
    std::vector<server::ChoiceDelta> deltas;
    while (!generation->done()) {
      if (g_cancel.load()) {  // Ctrl-C: the answer ends here, what it has so far stays in the history
        generation->cancel();
        finish_reason = "cancelled";
        break;
      }
      if (!generation->wait(std::chrono::milliseconds(100))) continue;
      deltas.clear();
      try {
        generation->next(deltas);
      } catch (const std::exception& e) {  // the engine failed it: end the line the answer was on
        std::fputs("\n", stdout);
        throw Error(e.what());
      }
      for (const server::ChoiceDelta& d : deltas) {
        print(d.text);
        if (!d.finish_reason.empty()) finish_reason = d.finish_reason;
      }
    }
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (chat_) {
      messages_.push_back({"assistant", answer, {}, {}});
    } else {
      history_ += answer;
    }
    const server::Usage usage = generation->usage();
    const server::Generation::Timing timing = generation->timing(0);
    const double decode_seconds = timing.elapsed - timing.time_to_first_token;
    const double decode_rate = usage.completion_tokens > 1 && decode_seconds > 0
                                   ? double(usage.completion_tokens - 1) / decode_seconds
                                   : 0.0;
    std::fprintf(stderr, "[%lld tokens, %s; prompt %lld tokens (%lld cached) in %.2f s; %.1f tokens/s]\n",
                 static_cast<long long>(usage.completion_tokens), finish_reason.c_str(),
                 static_cast<long long>(usage.prompt_tokens), static_cast<long long>(usage.cached_tokens),
                 timing.time_to_first_token, decode_rate);
  }

 private:
  // The command line as a request's fields; what it leaves unset comes from generation_config.json, as
  // for the server's requests.
  void fill(server::CommonFields& request) const {
    server::SamplingFields& s = request.sampling;
    s.temperature = args_.temperature;
    s.top_p = args_.top_p;
    s.top_k = args_.top_k;
    s.min_p = args_.min_p;
    s.repetition_penalty = args_.repetition_penalty;
    if (args_.seed) s.seed = static_cast<int64_t>(*args_.seed);
    request.max_tokens = args_.max_tokens;
    request.max_tokens_up_to_context = true;  // --max-tokens is a cap: a full context ends the answer
    request.ignore_eos = args_.ignore_eos;
    request.stop = args_.stop;
  }

  const RunArgs& args_;
  server::Serving& serving_;
  bool chat_ = false;
  std::vector<server::ChatMessage> messages_;
  std::string history_;  // completion mode: everything said so far
};

int run_run(const RunArgs& a) {
  const text::ModelText model_text = text::load_model_text(a.model.model);
  LoadedModel m = load_model(a.model, a.seed.value_or(0), Runner::engine);
  server::Serving serving(*m.engine, model_text, io::generation_defaults(a.model.model), a.model.model);
  Session session(a, model_text, serving);
  if (!a.prompt.empty()) {
    session.turn(a.prompt);
    return 0;
  }
  std::fprintf(stderr, "%s — type a message, \\q to quit, Ctrl-C stops an answer\n", m.model->describe().c_str());
  std::string line;
  while (true) {
    std::fputs("> ", stdout);
    std::fflush(stdout);
    std::signal(SIGINT, SIG_DFL);  // at the prompt Ctrl-C ends the program
    if (!std::getline(std::cin, line) || line == "\\q") break;
    if (line.empty()) continue;
    std::signal(SIGINT, on_sigint);  // while answering it only stops the answer
    session.turn(line);
  }
  std::signal(SIGINT, SIG_DFL);
  return 0;
}

}  // namespace

Command add_run(CLI::App& app) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* cmd = app.add_subcommand("run", "generate text from a prompt, or chat interactively");
  add_model_options(*cmd, args->model);
  add_engine_options(*cmd, args->model);
  cmd->add_option("prompt", args->prompt, "the prompt; without one, an interactive session starts");
  cmd->add_option("--temperature", args->temperature, "0 = greedy (default: the model's generation_config, else 1)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", args->top_p, "nucleus sampling mass in (0, 1]");
  cmd->add_option("--top-k", args->top_k, "keep the k most likely tokens (0 = all)");
  cmd->add_option("--min-p", args->min_p, "drop tokens below min_p times the top probability");
  cmd->add_option("--repetition-penalty", args->repetition_penalty, "> 1 discourages repeats");
  cmd->add_option("--max-tokens", args->max_tokens, "tokens to generate per answer (default 256)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", args->seed, "seed of the sampler: the same seed reproduces a run");
  cmd->add_flag("--ignore-eos", args->ignore_eos, "keep generating past end-of-sequence tokens");
  cmd->add_option("--stop", args->stop, "end the answer before this text (repeatable; as the API's `stop`)")
      ->allow_extra_args(false);  // one text per --stop: the prompt may follow
  cmd->add_flag("--chat", args->chat, "use the chat template (the default when the model has one)");
  cmd->add_flag("--no-chat", args->no_chat, "continue the raw text instead of chatting");
  cmd->add_option("--system", args->system, "a system message (chat mode)");
  return [args] {
    args->model.model = model_directory(args->model.model, args->model.revision);
    return run_run(*args);
  };
}

}  // namespace adallm::cli
