// Incremental detokenizer: decode a short window of ids (from the last clean token boundary) and return
// what extends the text already emitted from that window. Text ending in U+FFFD (an incomplete byte
// sequence so far) and a trailing byte-fallback token are held back. The window restarts at the last token
// when that token decodes on its own to exactly the tail of the window text, i.e. the boundary is clean.
#include "text/detokenizer.h"

#include <algorithm>

#include "text/utf8.h"

namespace adallm::text {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDetokenizer::decode_window() const { return tokenizer_.decode(window_, skip_special_tokens_); }

std::string IncrementalDetokenizer::push(int32_t id) {
  window_.push_back(id);
  if (tokenizer_.is_byte_fallback_piece(id)) return {};
  const std::string text = decode_window();
  if (utf8::ends_with_replacement(text) || text.compare(0, emitted_.size(), emitted_) != 0) return {};
  std::string out = text.substr(emitted_.size());
  emitted_ = text;
  if (window_.size() > 1 && !tokenizer_.is_special(id)) {
    const int32_t last[1] = {id};
    const std::string tail = tokenizer_.decode(last, skip_special_tokens_);
    if (!tail.empty() && text.size() >= tail.size() &&
        text.compare(text.size() - tail.size(), tail.size(), tail) == 0) {
      window_.assign(1, id);
      emitted_ = tail;
    }
  }
  return out;
}

std::string IncrementalDetokenizer::flush() {
  const std::string text = decode_window();
  std::string out;
  if (text.compare(0, emitted_.size(), emitted_) == 0) {
    out = text.substr(emitted_.size());
  } else {
    // Held-back bytes changed how already emitted text decodes; it cannot be taken back, emit the rest.
    out = text.substr(std::min(text.size(), emitted_.size()));
  }
  window_.clear();
  emitted_.clear();
  return out;
}

}  // namespace adallm::text
