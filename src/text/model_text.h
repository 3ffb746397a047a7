// A model directory's text side, as transformers reads it: tokenizer.json, the special tokens of
// tokenizer_config.json (plain strings or AddedToken objects), the chat template (chat_template.jinja
// beside it wins over tokenizer_config.json's chat_template, as in transformers 4.43+), and the stop ids
// of generation_config.json (an int or a list). Encoding and rendering are the classes it returns.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "text/chat_template.h"
#include "text/tokenizer.h"

namespace adallm::text {

struct ModelText {
  std::unique_ptr<Tokenizer> tokenizer;  // null when loaded without it
  std::optional<ChatTemplate> chat_template;  // absent when the model ships none
  std::string bos_token;  // "" when the config names none
  std::string eos_token;
  // Every special token tokenizer_config.json names, in transformers' SPECIAL_TOKENS_ATTRIBUTES order
  // (bos, eos, unk, sep, pad, cls, mask): what its special_tokens_map hands to chat templates.
  std::vector<std::pair<std::string, std::string>> special_tokens;
  std::optional<bool> add_bos_token;  // as written; the tokenizer.json post-processor is what encode() applies
  // Ids that end generation: generation_config.json eos_token_id(s), then the tokenizer's eos_token.
  std::vector<int32_t> eos_token_ids;

  // The variables transformers gives every chat template besides the conversation: add_generation_prompt
  // and the special tokens the config names.
  nlohmann::ordered_json template_context(nlohmann::ordered_json messages, bool add_generation_prompt) const;
};

// `dir` holds tokenizer.json (required when `with_tokenizer`), tokenizer_config.json, chat_template.jinja
// and generation_config.json (optional). `template_name` picks one of several named chat templates.
// Without the tokenizer (rendering only), eos_token_ids holds generation_config.json's ids alone.
ModelText load_model_text(const std::filesystem::path& dir, std::string_view template_name = "default",
                          bool with_tokenizer = true);

}  // namespace adallm::text
