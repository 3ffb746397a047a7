// Hugging Face tokenizer.json in C++: the normalizer, pre-tokenizer, model (byte-level BPE as in Qwen3 and
// Llama 3; SentencePiece-style BPE with byte fallback as in Gemma3), added/special tokens, post-processor
// and decoder that the file describes, reproducing the Rust `tokenizers` crate id for id. Chat templates
// are text/chat_template.h; streaming detokenization is text/detokenizer.h.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace adallm::text {

class Tokenizer {
 public:
  // Loads and validates tokenizer.json; a component or option the file uses that is not supported is
  // an adallm::Error naming it (JSON path) and the file.
  static std::unique_ptr<Tokenizer> load(const std::filesystem::path& tokenizer_json);
  virtual ~Tokenizer() = default;

  // `text` is UTF-8 (invalid sequences are treated as the reference treats them: see the implementation).
  // add_special_tokens applies the post-processor (e.g. BOS), as the Rust crate's encode(text, true).
  virtual std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = true) const = 0;
  // The decoder pipeline of the file; skip_special_tokens drops added tokens marked special.
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const = 0;

  virtual int32_t vocab_size() const = 0;  // including added tokens
  virtual std::optional<int32_t> token_to_id(std::string_view token) const = 0;
  virtual std::optional<std::string> id_to_token(int32_t id) const = 0;
  virtual bool is_special(int32_t id) const = 0;
  // The bytes token `id` stands for in decoded text: byte-level tokens through the byte-to-unicode map,
  // SentencePiece pieces with U+2581 as a space and <0xNN> as that byte, added tokens as their content
  // (is_special tells the special ones). Unlike decode() of one id, a token holding part of a UTF-8
  // sequence gives its raw bytes. nullopt for an unassigned id.
  virtual std::optional<std::string> token_bytes(int32_t id) const = 0;
  // True for a <0xNN> token under byte_fallback: its text depends on the byte tokens around it (a run of
  // them decodes as one UTF-8 sequence or as one U+FFFD per byte), so streaming must wait for the run to end.
  virtual bool is_byte_fallback_piece(int32_t /*id*/) const { return false; }
};

}  // namespace adallm::text
