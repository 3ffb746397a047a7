// Unicode Normalization Form C for the NFC normalizer of tokenizer.json (Qwen3). Only canonical
// (de)composition; compatibility forms (NFKC/NFKD) are not supported and are rejected at load.
#pragma once

#include <string>
#include <string_view>

namespace adallm::text {

// `s` must be valid UTF-8.
std::string nfc(std::string_view s);

}  // namespace adallm::text
