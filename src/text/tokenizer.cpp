// Tokenizer::load and the encode/decode pipeline of tokenizer.json (tokenizer/mod.rs of the Rust crate):
// added tokens (raw) → normalizer → added tokens (normalized) → pre-tokenizer → BPE → post-processor.
// Invalid UTF-8 input is first repaired (each maximal invalid subpart → U+FFFD, as Python's
// decode(errors="replace")), since the Rust API only accepts valid strings. Components live in their files.
#include "text/tokenizer.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "text/added_vocabulary.h"
#include "text/bpe.h"
#include "text/decoder.h"
#include "text/json_scan.h"
#include "text/normalizer.h"
#include "text/post_processor.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"

namespace adallm::text {
namespace {

using nlohmann::json;

bool uses_byte_level(const json& decoder) {
  if (!decoder.is_object()) return false;
  if (decoder.value("type", "") == "ByteLevel") return true;
  if (decoder.contains("decoders") && decoder["decoders"].is_array()) {
    for (const json& d : decoder["decoders"])
      if (uses_byte_level(d)) return true;
  }
  return false;
}

class JsonTokenizer final : public Tokenizer {
 public:
  // `root` holds every top-level member but the model; `model` is parsed by the caller (see load()).
  JsonTokenizer(const json& root, std::unique_ptr<BpeModel> model) : model_(std::move(model)) {
    for (const char* key : {"truncation", "padding"})
      if (root.contains(key) && !root[key].is_null())
        throw Error(std::string(key) + ": " + key + " is not supported (expected null), got " +
                    root[key].dump().substr(0, 120));
    normalizer_ = make_normalizer(root.value("normalizer", json()), "normalizer");
    pre_tokenizer_ = make_pre_tokenizer(root.value("pre_tokenizer", json()), "pre_tokenizer");
    post_processor_ = make_post_processor(root.value("post_processor", json()), "post_processor");
    decoder_ = make_decoder(root.value("decoder", json()), "decoder");
    byte_level_ = uses_byte_level(root.value("decoder", json()));
    added_ = std::make_unique<AddedVocabulary>(root.value("added_tokens", json()), *model_, normalizer_.get(),
                                               "added_tokens");
    vocab_size_ = std::max(model_->size(), added_->max_id() + 1);
  }

  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens) const override {
    std::vector<int32_t> ids;
    const std::string valid = utf8::is_valid(text) ? std::string(text) : utf8::to_valid_lossy(text);
    std::vector<std::string> words;
    for (const Segment& raw : added_->split(valid, false)) {
      if (raw.id >= 0) {
        ids.push_back(raw.id);
        continue;
      }
      const std::string normalized = normalizer_ ? normalizer_->normalize(raw.text) : raw.text;
      for (const Segment& seg : added_->split(normalized, true)) {
        if (seg.id >= 0) {
          ids.push_back(seg.id);
          continue;
        }
        words.assign(1, seg.text);
        if (pre_tokenizer_) pre_tokenizer_->pre_tokenize(words);
        for (const std::string& w : words) model_->encode_word(w, ids);
      }
    }
    if (add_special_tokens && post_processor_) ids = post_processor_->process(std::move(ids));
    return ids;
  }

  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens) const override {
    std::vector<std::string> tokens;
    tokens.reserve(ids.size());
    for (int32_t id : ids) {
      if (const AddedToken* t = added_->find(id)) {
        if (!(skip_special_tokens && t->special)) tokens.push_back(t->content);
      } else if (const std::string* s = model_->id_to_token(id)) {
        tokens.push_back(*s);
      }
    }
    if (!decoder_) {
      std::string joined;
      for (size_t i = 0; i < tokens.size(); ++i) joined += (i ? " " : "") + tokens[i];
      return joined;
    }
    decoder_->decode_chain(tokens);
    std::string out;
    for (const std::string& t : tokens) out += t;
    return out;
  }

  int32_t vocab_size() const override { return vocab_size_; }

  std::optional<int32_t> token_to_id(std::string_view token) const override {
    if (auto id = added_->token_to_id(token)) return id;
    return model_->token_to_id(token);
  }

  std::optional<std::string> id_to_token(int32_t id) const override {
    if (const AddedToken* t = added_->find(id)) return t->content;
    if (const std::string* s = model_->id_to_token(id)) return *s;
    return std::nullopt;
  }

  bool is_special(int32_t id) const override {
    const AddedToken* t = added_->find(id);
    return t && t->special;
  }

  std::optional<std::string> token_bytes(int32_t id) const override {
    if (const AddedToken* t = added_->find(id)) return t->content;
    const std::string* s = model_->id_to_token(id);
    if (s == nullptr) return std::nullopt;
    std::string out;
    if (byte_level_) {
      for (size_t pos = 0; pos < s->size();) {
        const size_t start = pos;
        const int b = unicode_to_byte(utf8::next(*s, pos));
        if (b >= 0) {
          out += static_cast<char>(b);
        } else {
          out.append(*s, start, pos - start);  // not from the byte map: the text itself
        }
      }
      return out;
    }
    if (model_->byte_fallback()) {
      if (const int b = parse_byte_token(*s); b >= 0) return std::string(1, static_cast<char>(b));
    }
    static const std::string kSpace = "\u2581";
    for (size_t pos = 0; pos < s->size();) {
      if (s->compare(pos, kSpace.size(), kSpace) == 0) {
        out += ' ';
        pos += kSpace.size();
      } else {
        out += (*s)[pos++];
      }
    }
    return out;
  }

  bool is_byte_fallback_piece(int32_t id) const override {
    if (!model_->byte_fallback() || added_->find(id)) return false;
    const std::string* s = model_->id_to_token(id);
    return s && parse_byte_token(*s) >= 0;
  }

 private:
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<PostProcessor> post_processor_;
  std::unique_ptr<Decoder> decoder_;
  std::unique_ptr<AddedVocabulary> added_;
  int32_t vocab_size_ = 0;
  bool byte_level_ = false;  // the decoder maps token characters back to bytes (GPT-2's byte-to-unicode)
};

// The model's vocab and merges are most of the file: they are walked by json_scan, the rest goes through
// nlohmann::json member by member.
std::unique_ptr<Tokenizer> load_document(std::string_view doc) {
  json root = json::object();
  std::unique_ptr<BpeModel> model;
  for (const auto& [key, raw] : json_scan::object_members(doc)) {
    if (key != "model") {
      root[key] = json::parse(raw);
      continue;
    }
    json options = json::object();
    BpeModel::Vocab vocab;
    BpeModel::Merges merges;
    for (const auto& [model_key, model_raw] : json_scan::object_members(raw)) {
      try {
        if (model_key == "vocab")
          vocab = json_scan::parse_vocab(model_raw);
        else if (model_key == "merges")
          merges = json_scan::parse_merges(model_raw);
        else
          options[model_key] = json::parse(model_raw);
      } catch (const Error& e) {
        throw Error("model." + model_key + ": " + e.message());
      }
    }
    model = std::make_unique<BpeModel>(options, std::move(vocab), merges, "model");
  }
  if (!model) throw Error("model: missing");
  return std::make_unique<JsonTokenizer>(root, std::move(model));
}

}  // namespace

std::unique_ptr<Tokenizer> Tokenizer::load(const std::filesystem::path& tokenizer_json) {
  std::ifstream in(tokenizer_json, std::ios::binary);
  if (!in) throw Error("cannot open tokenizer file").file(tokenizer_json.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  try {
    const std::string doc = buffer.str();
    if (doc.find_first_not_of(" \t\r\n") == std::string::npos || doc[doc.find_first_not_of(" \t\r\n")] != '{')
      throw Error("expected a JSON object at the top level");
    return load_document(doc);
  } catch (const json::exception& e) {
    throw Error(std::string("invalid tokenizer JSON: ") + e.what()).file(tokenizer_json.string());
  } catch (Error& e) {
    e.file(tokenizer_json.string());
    throw;
  }
}

}  // namespace adallm::text
