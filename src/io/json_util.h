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

// Parses [begin, end) as one JSON document. `what` names the document in messages ("header",
// "index"); `label` is the file. Errors: syntax (with the 1-based byte position within the document),
// a key repeated within one object, nesting deeper than kMaxJsonDepth.
inline nlohmann::json parse_json_strict(const uint8_t* begin, const uint8_t* end, std::string_view what,
                                        const std::string& label) {
  // One set of seen keys per open object; arrays push nothing, so depth is counted separately.
  std::vector<std::set<std::string>> open_objects;
  int depth = 0;
  auto callback = [&](int /*nlohmann_depth*/, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
    using Event = nlohmann::json::parse_event_t;
    switch (event) {
      case Event::object_start:
      case Event::array_start:
        if (++depth > kMaxJsonDepth) {
          throw Error("JSON " + std::string(what) + " nests deeper than " + std::to_string(kMaxJsonDepth) + " levels")
              .file(label);
        }
        if (event == Event::object_start) open_objects.emplace_back();
        break;
      case Event::object_end:
      case Event::array_end:
        --depth;
        if (event == Event::object_end && !open_objects.empty()) open_objects.pop_back();
        break;
      case Event::key:
        if (!open_objects.empty() && !open_objects.back().insert(parsed.get<std::string>()).second) {
          throw Error("duplicate key " + json_excerpt(parsed, 200) + " in the JSON " + std::string(what))
              .file(label)
              .hint("a repeated name would silently shadow the first entry");
        }
        break;
      case Event::value:
        break;
    }
    return true;
  };
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
    return nlohmann::json::parse(begin, end, callback);
  } catch (const nlohmann::json::parse_error& e) {
    throw invalid(e.byte, describe(e));
  } catch (const nlohmann::json::exception& e) {
    // out_of_range.406 for a number beyond double range (1E400), which serde_json rejects too; nlohmann
    // gives no position for it.
    throw Error("invalid JSON in " + std::string(what) + ": " + describe(e)).file(label);
  }
}

}  // namespace adallm::io
