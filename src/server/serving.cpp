// The serving layer (see serving.h): request checks against the model, prompt preparation (the chat
// template's variables included), one engine request per choice, and the loop that hands each choice's
// tokens to its ChoiceText.
#include "server/serving.h"

#include <algorithm>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "server/reasoning_constraint.h"
#include "server/tool_call_grammar.h"

namespace adallm::server {

namespace {

std::string finish_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    default: return "";
  }
}

}  // namespace

Generation::~Generation() { cancel(); }

bool Generation::done() const {
  for (const Choice& c : choices_) {
    if (c.finish_reason.empty()) return false;
  }
  return true;
}

void Generation::finish(Choice& c, const std::string& reason) {
  c.finish_reason = c.text->finish_reason(reason);
  serving_.metrics_.finished(reason, c.had_token);
  if (c.stream) c.stream->cancel();  // a stop string: the engine may be a token or more ahead
  c.stream.reset();
}

bool Generation::wait(std::chrono::milliseconds timeout) {
  // Choices step together in the engine: the first unfinished one's event stands for the round.
  for (Choice& c : choices_) {
    if (c.finish_reason.empty()) return c.stream->wait_for(timeout);
  }
  return true;
}

void Generation::cancel() {
  for (Choice& c : choices_) {
    if (c.finish_reason.empty()) finish(c, "cancelled");
  }
}

void Generation::next(std::vector<ChoiceDelta>& out) {
  for (size_t i = 0; i < choices_.size(); ++i) {
    Choice& c = choices_[i];
    if (!c.finish_reason.empty()) continue;
    RequestOutput event;
    if (!c.stream->next(event)) throw ApiError(500, "the engine ended a request without its last event");
    ChoiceDelta delta;
    delta.index = static_cast<int64_t>(i);
    c.cached_tokens = event.cached_tokens;
    c.timing = {event.time_to_first_token, event.elapsed};
    if (!event.tokens.empty()) {
      // The engine's clock: the gaps of its steps, whenever this thread got to read them.
      auto gaps = static_cast<int64_t>(event.tokens.size());
      double since = c.last_token_at;
      if (!c.had_token) {
        c.had_token = true;
        serving_.metrics_.first_token(event.time_to_first_token);
        // The engine settled the prompt's cached tokens when it admitted the request.
        serving_.metrics_.prefix_cache(c.prompt_tokens, event.cached_tokens);
        since = event.time_to_first_token;
        --gaps;
      }
      if (gaps > 0) serving_.metrics_.inter_token((event.elapsed - since) / static_cast<double>(gaps), gaps);
      c.last_token_at = event.elapsed;
    }
    if (c.logprobs && event.logprobs.size() != event.tokens.size()) {
      throw ApiError(500, "the engine returned " + std::to_string(event.logprobs.size()) + " logprobs for " +
                              std::to_string(event.tokens.size()) + " tokens");
    }
    for (size_t k = 0; k < event.tokens.size(); ++k) {
      ++c.completion_tokens;
      serving_.metrics_.generated(1);
      c.text->push(event.tokens[k], c.logprobs ? &event.logprobs[k] : nullptr, delta);
      if (c.text->stopped()) break;
    }
    if (c.text->stopped()) {
      finish(c, "stop");
    } else if (event.finished()) {
      if (event.finish_reason == FinishReason::error) {
        const std::string message = event.error;
        finish(c, "error");
        cancel();
        throw ApiError(500, "generation failed: " + message);
      }
      if (event.finish_reason == FinishReason::cancelled) {
        finish(c, "cancelled");
        cancel();
        throw ApiError(503, "the request was cancelled: the server is shutting down");
      }
      c.text->finish(delta);
      finish(c, c.text->stopped() ? "stop" : finish_name(event.finish_reason));
    }
    delta.finish_reason = c.finish_reason;
    if (!delta.text.empty() || !delta.reasoning.empty() || !delta.tool_calls.empty() || !delta.finish_reason.empty() ||
        !delta.logprobs.empty()) {
      out.push_back(std::move(delta));
    }
  }
}

Usage Generation::usage() const {
  Usage u;
  for (const Choice& c : choices_) {
    if (c.first_of_prompt) {
      u.prompt_tokens += c.prompt_tokens;
      u.cached_tokens += c.cached_tokens;
    }
    u.completion_tokens += c.completion_tokens;
  }
  return u;
}

nlohmann::ordered_json chat_template_context(const ChatRequest& request, const text::ModelText& text) {
  using json = nlohmann::ordered_json;
  json messages = json::array();
  for (const ChatMessage& m : request.messages) {
    json message = {{"role", m.role}, {"content", m.content}};
    if (!m.tool_calls.empty()) {
      json calls = json::array();
      for (const MessageToolCall& call : m.tool_calls) {
        calls.push_back({{"id", call.id},
                         {"type", "function"},
                         {"function", {{"name", call.name}, {"arguments", call.arguments}}}});
      }
      message["tool_calls"] = std::move(calls);
    }
    if (m.role == "tool") message["tool_call_id"] = m.tool_call_id;
    messages.push_back(std::move(message));
  }
  json context = text.template_context(std::move(messages), true);
  context["tools"] = request.tools.empty() ? json(nullptr) : request.tools;
  for (const auto& [key, value] : request.chat_template_kwargs.items()) context[key] = value;
  return context;
}

Serving::Serving(engine::Engine& engine, const text::ModelText& text, SamplingParams defaults,
                 std::string served_model_name, text::ReasoningFormat reasoning)
    : engine_(engine), text_(text), tool_calls_(text::detect_tool_calls(text)), reasoning_(reasoning), defaults_(defaults),
      model_name_(std::move(served_model_name)), max_model_len_(engine.options().max_model_len),
      rng_(std::random_device{}()) {
  if (!text_.tokenizer) throw Error("the server needs the model's tokenizer");
  text::check_reasoning_support(text_, reasoning_);
  defaults_.validate();
  const text::Tokenizer& tok = *text_.tokenizer;
  std::vector<std::optional<std::string>> bytes(static_cast<size_t>(tok.vocab_size()));
  for (int32_t t = 0; t < tok.vocab_size(); ++t) {
    if (!tok.is_special(t)) bytes[static_cast<size_t>(t)] = tok.token_bytes(t);
  }
  vocabulary_ = std::make_shared<const structured::Vocabulary>(bytes, static_cast<int32_t>(engine.vocab_size()));
}

void Serving::log_tool_support() const {
  if (!tool_calls_.template_renders_tools) {
    log::info("tools: the chat template does not use them; requests with tools are refused");
  } else if (tool_calls_.format == text::ToolCallFormat::none) {
    log::warn("tools: only with tool_choice \"none\": ", tool_calls_.problem);
  } else {
    log::info("tools: calls are parsed in the ", text::tool_call_format_name(tool_calls_.format), " format");
  }
  if (reasoning_ != text::ReasoningFormat::none) {
    log::info("reasoning: chat answers split <think>...</think> into reasoning_content (--reasoning-parser ",
              text::reasoning_format_name(reasoning_), ")");
  }
}

std::string Serving::render_metrics() const {
  const engine::Engine::KvStats kv = engine_.kv_stats();
  return metrics_.render(model_name_, {kv.pages_used, kv.num_pages});
}

uint64_t Serving::random_seed() {
  const std::lock_guard<std::mutex> lock(rng_mutex_);
  return rng_();
}

void Serving::check_model(const CommonFields& request) const {
  if (request.model && *request.model != model_name_) {
    throw ApiError(404, "The model `" + *request.model + "` does not exist; this server serves `" + model_name_ + "`",
                   "model", "invalid_request_error", "model_not_found");
  }
}

void Serving::check_tools(const ChatRequest& request) const {
  if (request.tools.empty() || !text_.chat_template) return;  // no template: render_chat says so
  if (!tool_calls_.template_renders_tools) {
    throw invalid_field("tools", "this model's chat template does not write tools into the prompt, so the model "
                                 "cannot be given any");
  }
  if (request.tool_choice == ToolChoice::forced && tool_calls_.format == text::ToolCallFormat::none) {
    throw invalid_field("tool_choice", "this model's tool calls cannot be read (" + tool_calls_.problem +
                                           "), so none can be forced");
  }
  if (request.tool_choice == ToolChoice::automatic && tool_calls_.format == text::ToolCallFormat::none) {
    throw invalid_field("tools", "this model's tool calls cannot be read: " + tool_calls_.problem +
                                     "; tool_choice \"none\" gives it the tools without reading calls");
  }
}

std::string Serving::render_chat(const ChatRequest& request) const {
  if (!text_.chat_template) {
    throw ApiError(400, "the model has no chat template: use /v1/completions", "messages");
  }
  const nlohmann::ordered_json context = chat_template_context(request, text_);
  try {
    return text_.chat_template->render(context);
  } catch (const Error& e) {
    throw ApiError(400, std::string("the chat template refused the conversation: ") + e.what(), "messages");
  }
}

std::unique_ptr<Generation> Serving::chat(const ChatRequest& request) {
  check_model(request);
  check_tools(request);
  PreparedPrompt prompt;
  const std::string rendered = render_chat(request);
  prompt.tokens = text_.tokenizer->encode(rendered, false);  // the template writes any BOS itself
  ChoiceText::Options parsing;
  if (request.tool_choice != ToolChoice::none) parsing.tool_calls = tool_calls_.format;
  std::shared_ptr<const structured::Grammar> forced = request.forced_calls;
  if (forced && tool_calls_.format != text::ToolCallFormat::hermes) {  // the request layer built Hermes calls
    forced = tool_call_grammar(request.tools, request.forced_tool_name, request.parallel_tool_calls, tool_calls_.format);
  }
  // enable_thinking false asks for no reasoning (Qwen3's template then closes an empty <think> itself). A
  // constrained answer (response_format, forced calls) whose prompt opened <think> reasons unconstrained
  // first (submit() gates the grammar behind </think>); one whose prompt did not is constrained from its
  // first token, so it cannot open any reasoning.
  const auto thinking = request.chat_template_kwargs.find("enable_thinking");
  const bool thinking_off = thinking != request.chat_template_kwargs.end() && thinking->is_boolean() && !thinking->get<bool>();
  const bool constrained = forced || request.response_format;
  const bool opened = text::prompt_opens_reasoning(rendered);
  parsing.reasoning = reasoning_ != text::ReasoningFormat::none && !thinking_off && (!constrained || opened);
  parsing.reasoning_opened = parsing.reasoning && opened;
  return submit(request, {prompt}, "messages", std::nullopt, parsing, forced);
}

std::unique_ptr<Generation> Serving::complete(const CompletionRequest& request) {
  check_model(request);
  std::vector<PreparedPrompt> prompts;
  const int32_t vocab_size = text_.tokenizer->vocab_size();
  for (size_t p = 0; p < request.prompts.size(); ++p) {
    const Prompt& in = request.prompts[p];
    const std::string field = request.prompts.size() > 1 ? "prompt[" + std::to_string(p) + "]" : "prompt";
    PreparedPrompt prepared;
    if (in.is_tokens) {
      for (size_t i = 0; i < in.tokens.size(); ++i) {
        if (in.tokens[i] >= vocab_size) {
          throw invalid_field(field, "token id " + std::to_string(in.tokens[i]) + " at " + std::to_string(i) +
                                         " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
        }
      }
      prepared.tokens = in.tokens;
      if (request.echo) prepared.echo = text_.tokenizer->decode(in.tokens, false);
    } else {
      prepared.tokens = text_.tokenizer->encode(in.text, true);
      if (request.echo) prepared.echo = in.text;
    }
    if (prepared.tokens.empty()) throw invalid_field(field, "the prompt has no tokens");
    prompts.push_back(std::move(prepared));
  }
  return submit(request, prompts, "prompt", kDefaultCompletionMaxTokens);
}

std::unique_ptr<Generation> Serving::submit(const CommonFields& request, const std::vector<PreparedPrompt>& prompts,
                                            const char* prompt_field, std::optional<int64_t> default_max_tokens,
                                            const ChoiceText::Options& parsing,
                                            std::shared_ptr<const structured::Grammar> grammar) {
  if (request.response_format) grammar = request.response_format->grammar;
  SamplingParams sampling = defaults_;
  const SamplingFields& s = request.sampling;
  if (s.temperature) sampling.temperature = *s.temperature;
  if (s.top_p) sampling.top_p = *s.top_p;
  if (s.top_k) sampling.top_k = *s.top_k;
  if (s.min_p) sampling.min_p = *s.min_p;
  if (s.presence_penalty) sampling.presence_penalty = *s.presence_penalty;
  if (s.frequency_penalty) sampling.frequency_penalty = *s.frequency_penalty;
  if (s.repetition_penalty) sampling.repetition_penalty = *s.repetition_penalty;
  try {
    sampling.validate();
  } catch (const Error& e) {
    throw ApiError(400, e.what());
  }

  // Every prompt is checked before anything is queued.
  std::vector<int64_t> max_tokens;
  for (const PreparedPrompt& p : prompts) {
    const auto prompt_len = static_cast<int64_t>(p.tokens.size());
    if (prompt_len > max_model_len_ || (prompt_len == max_model_len_ && !default_max_tokens)) {
      throw invalid_field(prompt_field, "the prompt has " + std::to_string(prompt_len) +
                                            " tokens; this model's maximum context length is " +
                                            std::to_string(max_model_len_) + " tokens" +
                                            (default_max_tokens ? "" : " and the answer needs at least one"));
    }
    const int64_t room = max_model_len_ - prompt_len;
    if (request.max_tokens) {
      if (*request.max_tokens > room && !request.max_tokens_up_to_context) {
        throw invalid_field("max_tokens", "this model's maximum context length is " + std::to_string(max_model_len_) +
                                              " tokens; the prompt has " + std::to_string(prompt_len) +
                                              ", so at most " + std::to_string(room) + " can be generated, not " +
                                              std::to_string(*request.max_tokens));
      }
      max_tokens.push_back(std::min(*request.max_tokens, room));
    } else {
      max_tokens.push_back(default_max_tokens ? std::min(*default_max_tokens, room) : room);
    }
  }

  std::unique_ptr<Generation> generation(new Generation(*this));
  generation->choices_.reserve(prompts.size() * static_cast<size_t>(request.n));
  for (size_t p = 0; p < prompts.size(); ++p) {
    for (int64_t j = 0; j < request.n; ++j) {
      const size_t index = generation->choices_.size();
      GenerateRequest engine_request;
      engine_request.prompt = prompts[p].tokens;
      engine_request.sampling = sampling;
      // Choice i of a seeded request samples with seed + i: reproducible, and distinct across choices.
      engine_request.sampling.seed = s.seed ? static_cast<uint64_t>(*s.seed) + index : random_seed();
      engine_request.max_tokens = max_tokens[p];
      engine_request.logprobs = request.logprobs;
      if (!request.ignore_eos) engine_request.stop_token_ids = text_.eos_token_ids;
      if (grammar) {
        // The end-of-text tokens close a complete document even under ignore_eos: nothing else may follow.
        engine_request.constraint = std::make_shared<structured::JsonConstraint>(grammar, vocabulary_,
                                                                                 text_.eos_token_ids);
        if (parsing.reasoning) {  // only chat() sets it with a grammar, when the prompt opened <think>
          engine_request.constraint = std::make_shared<AfterReasoningConstraint>(
              std::string(text::ReasoningParser::kClose), vocabulary_, std::move(engine_request.constraint));
        }
      }
      Generation::Choice c;
      try {
        c.stream = engine_.submit(engine_request);
      } catch (const Error& e) {  // the engine's own checks; the ones above should have caught it
        throw ApiError(400, e.what(), prompt_field);  // the Generation drops the choices queued so far
      }
      ChoiceText::Options options = parsing;
      options.stop = request.stop;
      options.logprobs = request.logprobs.has_value();
      options.echo = prompts[p].echo;
      c.text.emplace(*text_.tokenizer, std::move(options));
      c.echo = prompts[p].echo;
      c.logprobs = request.logprobs.has_value();
      c.prompt_tokens = static_cast<int64_t>(prompts[p].tokens.size());
      c.first_of_prompt = j == 0;
      metrics_.submitted(c.prompt_tokens);
      generation->choices_.push_back(std::move(c));
    }
  }
  return generation;
}

}  // namespace adallm::server
