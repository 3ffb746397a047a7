// PCRE2 wrapper for pre-tokenizer patterns (see regex.h). Match data and a JIT stack are kept per thread so
// that concurrent encodes share the compiled code without locks.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "text/regex.h"

#include <pcre2.h>

#include "core/error.h"

namespace adallm::text {
namespace {

// Oniguruma's \s (Rust tokenizers uses onig): Unicode White_Space minus U+180E, which PCRE2 includes.
constexpr const char* kSpaceMembers =
    "\\t\\n\\x0b\\f\\r\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
    "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}";

struct ThreadScratch {
  pcre2_match_data* data = nullptr;
  pcre2_jit_stack* stack = nullptr;
  pcre2_match_context* context = nullptr;
  ~ThreadScratch() {
    if (data) pcre2_match_data_free(data);
    if (context) pcre2_match_context_free(context);
    if (stack) pcre2_jit_stack_free(stack);
  }
};

ThreadScratch& scratch() {
  thread_local ThreadScratch s;
  if (!s.data) {
    s.data = pcre2_match_data_create(4, nullptr);
    s.stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, nullptr);
    s.context = pcre2_match_context_create(nullptr);
    pcre2_jit_stack_assign(s.context, nullptr, s.stack);
  }
  return s;
}

}  // namespace

struct Regex::Impl {
  pcre2_code* code = nullptr;
  bool jit = false;
};

std::string Regex::rewrite_whitespace(const std::string& pattern) {
  std::string out;
  bool in_class = false;
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[i + 1];
      ++i;
      if (e == 's') {
        out += in_class ? std::string(kSpaceMembers) : "[" + std::string(kSpaceMembers) + "]";
      } else if (e == 'S') {
        if (in_class) throw Error("pre-tokenizer regex: \\S inside a character class is not supported in " + pattern);
        out += "[^" + std::string(kSpaceMembers) + "]";
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      // A ']' right after '[' or '[^' is a literal member.
      if (i + 1 < pattern.size() && pattern[i + 1] == '^') out += pattern[++i];
      if (i + 1 < pattern.size() && pattern[i + 1] == ']') out += pattern[++i];
      continue;
    }
    if (in_class && c == ']') in_class = false;
    out += c;
  }
  return out;
}

Regex::Regex(const std::string& pattern) : impl_(std::make_unique<Impl>()) {
  const std::string rewritten = rewrite_whitespace(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  impl_->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(rewritten.data()), rewritten.size(),
                              PCRE2_UTF | PCRE2_UCP | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr);
  if (!impl_->code) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    throw Error("pre-tokenizer regex does not compile at offset " + std::to_string(offset) + ": " +
                reinterpret_cast<const char*>(message) + " (pattern " + pattern + ")");
  }
  impl_->jit = pcre2_jit_compile(impl_->code, PCRE2_JIT_COMPLETE) == 0;
}

Regex::~Regex() {
  if (impl_ && impl_->code) pcre2_code_free(impl_->code);
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  ThreadScratch& t = scratch();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t pos = 0;
  while (pos <= s.size()) {
    const int rc = impl_->jit ? pcre2_jit_match(impl_->code, subject, s.size(), pos, 0, t.data, t.context)
                              : pcre2_match(impl_->code, subject, s.size(), pos, PCRE2_NO_UTF_CHECK, t.data, t.context);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("pre-tokenizer regex failed to match (PCRE2 error " + std::to_string(rc) + ")");
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(t.data);
    const size_t start = ov[0], end = ov[1];
    if (end == start) {  // empty match: step over one code point, as Rust/Oniguruma iterators do
      if (start >= s.size()) break;
      size_t next = start + 1;
      while (next < s.size() && (static_cast<uint8_t>(s[next]) & 0xC0) == 0x80) ++next;
      pos = next;
      continue;
    }
    out.emplace_back(start, end);
    pos = end;
  }
  return out;
}

bool Regex::matches_at(std::string_view s, size_t pos) const {
  ThreadScratch& t = scratch();
  const int rc = pcre2_match(impl_->code, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), pos,
                             PCRE2_ANCHORED | PCRE2_NO_UTF_CHECK, t.data, nullptr);
  return rc >= 0;
}

}  // namespace adallm::text
