// Streaming detokenization: turns generated ids into text pieces whose concatenation equals
// Tokenizer::decode(all ids) and that never split a UTF-8 sequence. Stop strings are the server's job.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "text/tokenizer.h"

namespace adallm::text {

class IncrementalDetokenizer {
 public:
  // The tokenizer must outlive this object.
  explicit IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  // Returns the newly stable text (possibly empty: incomplete UTF-8 or a pending byte-fallback run).
  std::string push(int32_t id);
  // Returns whatever was held back; call once at the end of the sequence.
  std::string flush();

 private:
  std::string decode_window() const;

  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> window_;  // ids since the last clean boundary
  std::string emitted_;          // text of window_ already returned
};

}  // namespace adallm::text
