// Decoders of the Rust crate (decoders/{byte_level,byte_fallback,fuse,strip,sequence}.rs and the Replace
// normalizer used as a decoder). Invalid UTF-8 is repaired the way Rust repairs it at each step.
#include "text/decoder.h"

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/pattern.h"
#include "text/pre_tokenizer.h"
#include "text/utf8.h"

namespace adallm::text {
namespace {

using nlohmann::json;

// Byte-level tokens map back to bytes; a token with any character outside the 256 keeps its UTF-8 bytes.
// The concatenation is repaired with from_utf8_lossy semantics.
class ByteLevelDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const std::string& t : tokens) {
      const size_t mark = bytes.size();
      bool all_mapped = true;
      for (size_t pos = 0; pos < t.size();) {
        const int b = unicode_to_byte(utf8::next(t, pos));
        if (b < 0) {
          all_mapped = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
      }
      if (!all_mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8::to_valid_lossy(bytes));
  }
};

class ReplaceDecoder final : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      std::string out;
      size_t prev = 0;
      for (auto [start, end] : pattern_.find_all(t)) {
        out.append(t, prev, start - prev);
        out += content_;
        prev = end;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xNN> tokens become their bytes if those form valid UTF-8, else one U+FFFD per byte token.
class ByteFallbackDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    std::string bytes;
    size_t run = 0;
    auto flush = [&] {
      if (run == 0) return;
      if (utf8::is_valid(bytes))
        out.push_back(bytes);
      else
        for (size_t i = 0; i < run; ++i) out.emplace_back("\xEF\xBF\xBD");
      bytes.clear();
      run = 0;
    };
    for (std::string& t : tokens) {
      const int b = parse_byte_token(t);
      if (b >= 0) {
        bytes.push_back(static_cast<char>(b));
        ++run;
        continue;
      }
      flush();
      out.push_back(std::move(t));
    }
    flush();
    tokens = std::move(out);
  }
};

class FuseDecoder final : public Decoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const std::string& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing occurrences of one character from every token.
class StripDecoder final : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (std::string& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t i = 0; i < start_ && t.compare(begin, content_.size(), content_) == 0 && begin < end; ++i)
        begin += content_.size();
      for (size_t i = 0; i < stop_ && end >= begin + content_.size() &&
                         t.compare(end - content_.size(), content_.size(), content_) == 0;
           ++i)
        end -= content_.size();
      t = t.substr(begin, end - begin);
    }
  }

 private:
  std::string content_;
  size_t start_, stop_;
};

class SequenceDecoder final : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps) : steps_(std::move(steps)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& step : steps_) step->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

size_t count_field(const json& node, const char* key, const std::string& json_path) {
  if (!node.contains(key) || !node[key].is_number_unsigned())
    throw Error(json_path + "." + key + ": expected a non-negative integer");
  return node[key].get<size_t>();
}

}  // namespace

int parse_byte_token(const std::string& token) {
  if (token.size() != 6 || token[0] != '<' || token[1] != '0' || token[2] != 'x' || token[5] != '>') return -1;
  auto hex = [](char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  };
  const int hi = hex(token[3]), lo = hex(token[4]);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

std::unique_ptr<Decoder> make_decoder(const json& node, const std::string& json_path) {
  if (node.is_null()) return nullptr;
  const std::string type = node.value("type", "");
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace") {
    if (!node.contains("content") || !node["content"].is_string())
      throw Error(json_path + ".content: expected a string");
    return std::make_unique<ReplaceDecoder>(Pattern::from_json(node.value("pattern", json()), json_path + ".pattern"),
                                            node["content"].get<std::string>());
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    if (!node.contains("content") || !node["content"].is_string())
      throw Error(json_path + ".content: expected a string");
    return std::make_unique<StripDecoder>(node["content"].get<std::string>(), count_field(node, "start", json_path),
                                          count_field(node, "stop", json_path));
  }
  if (type == "Sequence") {
    const json& list = node.value("decoders", json());
    if (!list.is_array()) throw Error(json_path + ".decoders: expected an array");
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list.size(); ++i) {
      auto step = make_decoder(list[i], json_path + ".decoders[" + std::to_string(i) + "]");
      if (step) steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  throw Error(json_path + ".type: decoder \"" + type +
              "\" is not supported (supported: ByteLevel, Replace, ByteFallback, Fuse, Strip, Sequence)");
}

}  // namespace adallm::text
