// The `decoder` of tokenizer.json: ByteLevel, Replace, ByteFallback, Fuse, Strip and Sequence, each a
// step over the list of token strings as in the Rust crate's decode_chain; the caller joins the result.
// Which ids become which token strings (and skip_special_tokens) is tokenizer.cpp's business.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

namespace adallm::text {

class Decoder {
 public:
  virtual ~Decoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

// nullptr for JSON null; adallm::Error naming `json_path` for anything unsupported.
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& node, const std::string& json_path);

// Parses "<0xNN>" (exactly six characters, upper- or lower-case hex); -1 otherwise.
int parse_byte_token(const std::string& token);

}  // namespace adallm::text
