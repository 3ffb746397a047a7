// The `pre_tokenizer` of tokenizer.json: Split (String/Regex pattern, all five behaviours, invert),
// ByteLevel (GPT-2 byte↔unicode map, optional GPT-2 regex and prefix space) and Sequence. It turns one
// normalized chunk of text into the words the model encodes; added tokens were cut out before (tokenizer.cpp).
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace adallm::text {

class PreTokenizer {
 public:
  virtual ~PreTokenizer() = default;
  // Replaces `words` with their finer split (and, for ByteLevel, their byte-level spelling).
  virtual void pre_tokenize(std::vector<std::string>& words) const = 0;
};

// nullptr for JSON null; adallm::Error naming `json_path` for anything unsupported.
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& node, const std::string& json_path);

// GPT-2's reversible byte → code point map (printable bytes map to themselves, the rest to U+0100...).
const std::string& byte_to_unicode(uint8_t byte);  // as UTF-8
// Inverse map; -1 when the code point is not one of the 256.
int unicode_to_byte(char32_t cp);

}  // namespace adallm::text
