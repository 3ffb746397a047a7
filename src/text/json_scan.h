// A minimal JSON scanner for the bulky parts of tokenizer.json (vocab and merges: up to 33 MB, 800k
// entries) that builds them without a DOM; nlohmann::json still parses everything else. It only checks
// the syntax it walks; anything malformed is an adallm::Error with the byte offset.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adallm::text::json_scan {

// The members of a JSON object as (key, raw value text), in order. `doc` must be an object.
std::vector<std::pair<std::string, std::string_view>> object_members(std::string_view doc);
// {"token": id, ...}; ids must be integers in [0, 2^30].
std::vector<std::pair<std::string, int32_t>> parse_vocab(std::string_view raw);
// ["a b", ...] or [["a", "b"], ...]; a string merge is split at its first space after the first byte.
std::vector<std::pair<std::string, std::string>> parse_merges(std::string_view raw);

}  // namespace adallm::text::json_scan
