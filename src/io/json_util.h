// Strict JSON parsing for the files io/ reads from a checkpoint (safetensors headers, shard indexes):
// nlohmann's parser plus what it does not check on its own — duplicate keys (nlohmann keeps the last one
// silently) and absurd nesting — with syntax errors turned into adallm::Error giving the byte position.
// What the parsed document must contain is left to each caller.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"

namespace adallm::io {

// Deeper than any file AdaLLM reads (safetensors headers nest 3 levels); the Rust safetensors crate's
// serde_json stops at 128.
inline constexpr int kMaxJsonDepth = 64;

// A JSON value for an error message, cut to `limit` characters; never throws on odd strings.
inline std::string json_excerpt(const nlohmann::json& value, size_t limit = 40) {
  std::string text = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

// SAX pass of parse_json_strict: one set of seen keys per open object, and the nesting depth.
class StrictJsonChecker : public nlohmann::json_sax<nlohmann::json> {
 public:
  StrictJsonChecker(std::string_view what, const std::string& label) : what_(what), label_(label) {}

  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override {
    enter();
    open_objects_.emplace_back();
    return true;
  }
  bool key(string_t& name) override {
    if (!open_objects_.empty() && !open_objects_.back().insert(name).second) {
      throw Error("duplicate key " + json_excerpt(nlohmann::json(name), 200) + " in the JSON " + std::string(what_))
          .file(label_)
          .hint("a repeated name would silently shadow the first entry");
    }
    return true;
  }
  bool end_object() override {
    --depth_;
    open_objects_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override {
    enter();
    return true;
  }
  bool end_array() override {
    --depth_;
    return true;
  }
  // Syntax errors are rethrown by the DOM parse that follows, which reports them with their position.
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  void enter() {
    if (++depth_ > kMaxJsonDepth) {
      throw Error("JSON " + std::string(what_) + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels")
          .file(label_);
    }
  }

  std::string_view what_;
  const std::string& label_;
  std::vector<std::set<std::string>> open_objects_;
  int depth_ = 0;
};

// Parses [begin, end) as one JSON document. `what` names the document in messages ("header",
// "index"); `label` is the file. Errors: syntax (with the 1-based byte position within the document),
// a key repeated within one object, nesting deeper than kMaxJsonDepth.
inline nlohmann::json parse_json_strict(const uint8_t* begin, const uint8_t* end, std::string_view what,
                                        const std::string& label) {
  auto invalid = [&](size_t byte, const std::string& reason) {
    return Error("invalid JSON in " + std::string(what) + " at byte " + std::to_string(byte) + " of " +
                 std::to_string(end - begin) + ": " + reason)
        .file(label);
  };
  // nlohmann takes a NUL byte for the end of input (so `{}\0garbage` would parse) and skips a leading
  // byte-order mark; serde_json, which the safetensors library uses, and Python's json reject both.
  if (const void* nul = std::memchr(begin, 0, static_cast<size_t>(end - begin))) {
    throw invalid(static_cast<size_t>(static_cast<const uint8_t*>(nul) - begin) + 1,
                  "NUL byte (JSON text cannot contain one; padding must be spaces)");
  }
  if (end - begin >= 3 && begin[0] == 0xEF && begin[1] == 0xBB && begin[2] == 0xBF) {
    throw invalid(1, "UTF-8 byte-order mark");
  }
  // nlohmann's own description without its "[json.exception.parse_error.101] " tag. It echoes raw input
  // bytes ("last read: ..."); non-ASCII is escaped so the message stays valid UTF-8.
  auto describe = [](const nlohmann::json::exception& e) {
    std::string reason = e.what();
    if (size_t pos = reason.find("] "); pos != std::string::npos) reason = reason.substr(pos + 2);
    std::string clean;
    for (unsigned char c : reason) {
      if (c < 0x80) {
        clean += static_cast<char>(c);
      } else {
        static constexpr char kHex[] = "0123456789ABCDEF";
        clean += {'\\', 'x', kHex[c >> 4], kHex[c & 15]};
      }
    }
    return clean;
  };
  try {
    // Two linear passes: a SAX pass for what nlohmann does not check, then the plain DOM parse. (A parse
    // callback would do it in one pass, but nlohmann's callback parser rescans the enclosing object at
    // every object end: quadratic in the tensor count, minutes for a 55k-tensor MoE header.)
    StrictJsonChecker checker(what, label);
    nlohmann::json::sax_parse(begin, end, &checker);
    return nlohmann::json::parse(begin, end);
  } catch (const nlohmann::json::parse_error& e) {
    throw invalid(e.byte, describe(e));
  } catch (const nlohmann::json::exception& e) {
    // out_of_range.406 for a number beyond double range (1E400), which serde_json rejects too; nlohmann
    // gives no position for it.
    throw Error("invalid JSON in " + std::string(what) + ": " + describe(e)).file(label);
  }
}

}  // namespace adallm::io
