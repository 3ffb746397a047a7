// libFuzzer target for the OpenAI request parsers (server::parse_chat_request, parse_completion_request).
// Only ApiError 400 may escape, with a message that starts with its param when it names one and a body
// that serializes; any other exception, a sanitizer report (a stack overflow on deep nesting included),
// or an accepted request that breaks the documented limits is a finding. Each input is tried as a whole
// body, and spliced into a valid chat and a valid completion body so that mutations reach the field
// handlers directly.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "server/api_error.h"
#include "server/openai_request.h"

namespace {

using namespace adallm::server;

[[noreturn]] void finding(const char* what, std::string_view detail = {}) {
  std::fprintf(stderr, "openai_request_fuzz: %s %.*s\n", what, static_cast<int>(detail.size()), detail.data());
  std::abort();
}

bool in(const std::optional<float>& x, double lo, double hi) { return !x || (std::isfinite(*x) && *x >= lo && *x <= hi); }

void check_common(const CommonFields& r, size_t num_prompts) {
  if (r.n < 1 || r.n * static_cast<int64_t>(num_prompts) > kMaxChoices) finding("n out of range");
  if (r.max_tokens && *r.max_tokens < 0) finding("negative max_tokens");
  if (r.stop.size() > kMaxStopStrings) finding("too many stop strings");
  for (const std::string& s : r.stop) {
    if (s.empty() || s.size() > kMaxStopStringBytes) finding("stop string length");
  }
  if (r.include_usage && !r.stream) finding("include_usage without stream");
  const SamplingFields& s = r.sampling;
  if (!in(s.temperature, 0, 2) || !in(s.top_p, 0, 1) || (s.top_p && *s.top_p <= 0) || !in(s.min_p, 0, 1) ||
      !in(s.presence_penalty, -2, 2) || !in(s.frequency_penalty, -2, 2) || !in(s.repetition_penalty, 0, 10) ||
      (s.top_k && *s.top_k < -1)) {
    finding("a sampling field out of its range");
  }
}

void check_error(const ApiError& e) {
  if (e.status() != 400) finding("status other than 400", e.message());
  if (e.message().empty()) finding("empty error message");
  if (!e.param().empty() && e.message().rfind(e.param(), 0) != 0) finding("message does not start with param", e.message());
  if (dump_json(e.body()).empty()) finding("error body did not serialize");
}

template <typename Parse, typename Check>
void run(std::string_view body, Parse parse, Check check) {
  try {
    check(parse(body));
  } catch (const ApiError& e) {
    check_error(e);
  } catch (const std::exception& e) {
    finding("exception other than ApiError:", e.what());
  }
}

void run_both(std::string_view body) {
  run(body, parse_chat_request, [](const ChatRequest& r) {
    if (r.messages.empty()) finding("chat request without messages");
    for (const ChatMessage& m : r.messages) {
      if (m.role != "system" && m.role != "user" && m.role != "assistant" && m.role != "tool") {
        finding("unexpected role", m.role);
      }
      if (!m.tool_calls.empty() && m.role != "assistant") finding("tool calls on a non-assistant message", m.role);
      if (m.tool_call_id.empty() && m.role == "tool") finding("tool message without tool_call_id");
      for (const MessageToolCall& c : m.tool_calls) {
        if (c.name.empty()) finding("tool call without a name");
      }
    }
    if (!r.tools.is_array() || r.tools.size() > kMaxTools) finding("tools not an array of at most kMaxTools");
    if (r.tool_choice == ToolChoice::automatic && r.tools.empty()) finding("tool_choice auto without tools");
    check_common(r, 1);
  });
  run(body, parse_completion_request, [](const CompletionRequest& r) {
    if (r.prompts.empty()) finding("completion request without prompts");
    for (const Prompt& p : r.prompts) {
      if (p.is_tokens && p.tokens.empty()) finding("empty token prompt");
      for (const int32_t t : p.tokens) {
        if (t < 0) finding("negative token id");
      }
    }
    check_common(r, r.prompts.size());
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  run_both(input);
  run_both(std::string(R"({"messages":[{"role":"user","content":"hi"}],)") + std::string(input) + "}");
  run_both(std::string(R"({"prompt":[1,2],)") + std::string(input) + "}");
  return 0;
}
