// `adallm run MODEL ["prompt"]`: generation in the terminal, streaming tokens as they come. With a prompt
// it answers once; without, it is an interactive session that keeps the history (`\q` or end of input
// quits, Ctrl-C stops the current answer and returns to the prompt). A model with a chat template is
// chatted with unless --no-chat; otherwise the text is continued as is.
#include <CLI/CLI.hpp>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "adallm/request.h"
#include "adallm/sampling_params.h"
#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "io/generation_config.h"
#include "text/detokenizer.h"
#include "text/model_text.h"

namespace adallm::cli {
namespace {

using ordered_json = nlohmann::ordered_json;

struct RunArgs {
  ModelOptions model;
  std::string prompt;
  std::optional<float> temperature, top_p, min_p, repetition_penalty;
  std::optional<int32_t> top_k;
  int64_t max_tokens = 256;
  std::optional<uint64_t> seed;
  bool ignore_eos = false;
  bool chat = false;
  bool no_chat = false;
  std::string system;
};

std::atomic<bool> g_cancel{false};
extern "C" void on_sigint(int) { g_cancel.store(true); }

// The model's own defaults (generation_config.json), command-line values win.
SamplingParams sampling_params(const RunArgs& a) {
  SamplingParams p = io::generation_defaults(a.model.model);
  if (a.temperature) p.temperature = *a.temperature;
  if (a.top_p) p.top_p = *a.top_p;
  if (a.top_k) p.top_k = *a.top_k;
  if (a.min_p) p.min_p = *a.min_p;
  if (a.repetition_penalty) p.repetition_penalty = *a.repetition_penalty;
  p.seed = a.seed;
  p.validate();
  return p;
}

class Session {
 public:
  Session(const RunArgs& a, LoadedModel& m, const text::ModelText& t)
      : args_(a), model_(m), text_(t), params_(sampling_params(a)) {
    if (a.chat && a.no_chat) throw Error("--chat and --no-chat exclude each other");
    if (a.chat && !t.chat_template) {
      throw Error("--chat: the model has no chat template").file(a.model.model).hint("use --no-chat");
    }
    chat_ = t.chat_template.has_value() && !a.no_chat;
    if (!a.ignore_eos) stop_ids_ = t.eos_token_ids;
    if (chat_ && !a.system.empty()) messages_.push_back({{"role", "system"}, {"content", a.system}});
    if (!chat_ && !a.system.empty()) throw Error("--system needs chat mode");
  }

  // Answers one user turn, streaming to stdout; the turn and the answer join the history.
  void turn(const std::string& user) {
    std::vector<int32_t> prompt;
    if (chat_) {
      messages_.push_back({{"role", "user"}, {"content", user}});
      const std::string rendered = text_.chat_template->render(text_.template_context(messages_, true));
      prompt = text_.tokenizer->encode(rendered, false);  // the template writes any BOS itself
    } else {
      history_ += user;
      prompt = text_.tokenizer->encode(history_, true);
      std::fputs(user.c_str(), stdout);
    }
    text::IncrementalDetokenizer detok(*text_.tokenizer, true);
    std::string answer;
    const auto print = [&](const std::string& piece) {
      answer += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
    };
    g_cancel.store(false);
    GenerateRequest request;
    request.prompt = std::move(prompt);
    request.sampling = params_;
    request.max_tokens = args_.max_tokens;
    request.stop_token_ids = stop_ids_;
    const std::shared_ptr<engine::RequestStream> stream = model_.engine->submit(request);
    RequestOutput event, last;
    bool cancel_sent = false;
    while (stream->next(event)) {
      for (int32_t id : event.tokens) print(detok.push(id));
      if (event.finished()) last = event;
      if (!cancel_sent && g_cancel.load()) {  // Ctrl-C: the engine ends the answer at its next step
        stream->cancel();
        cancel_sent = true;
      }
    }
    print(detok.flush());
    std::fputs("\n", stdout);
    std::fflush(stdout);
    if (chat_) {
      messages_.push_back({{"role", "assistant"}, {"content", answer}});
    } else {
      history_ += answer;
    }
    if (last.finish_reason == FinishReason::error) throw Error("generation failed: " + last.error);
    const double decode_seconds = last.elapsed - last.time_to_first_token;
    const double decode_rate = last.completion_tokens > 1 && decode_seconds > 0
                                   ? double(last.completion_tokens - 1) / decode_seconds
                                   : 0.0;
    std::fprintf(stderr, "[%lld tokens, %s; prompt %lld tokens (%lld cached) in %.2f s; %.1f tokens/s]\n",
                 static_cast<long long>(last.completion_tokens), finish_reason_name(last.finish_reason),
                 static_cast<long long>(last.prompt_tokens), static_cast<long long>(last.cached_tokens),
                 last.time_to_first_token, decode_rate);
  }

 private:
  const RunArgs& args_;
  LoadedModel& model_;
  const text::ModelText& text_;
  SamplingParams params_;
  bool chat_ = false;
  std::vector<int32_t> stop_ids_;
  ordered_json messages_ = ordered_json::array();
  std::string history_;  // completion mode: everything said so far
};

int run_run(const RunArgs& a) {
  const text::ModelText model_text = text::load_model_text(a.model.model);
  LoadedModel m = load_model(a.model, a.seed.value_or(0), Runner::engine);
  Session session(a, m, model_text);
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
  cmd->add_flag("--chat", args->chat, "use the chat template (the default when the model has one)");
  cmd->add_flag("--no-chat", args->no_chat, "continue the raw text instead of chatting");
  cmd->add_option("--system", args->system, "a system message (chat mode)");
  return [args] {
    args->model.model = model_directory(args->model.model, args->model.revision);
    return run_run(*args);
  };
}

}  // namespace adallm::cli
