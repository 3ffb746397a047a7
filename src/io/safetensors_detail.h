// Constants and helpers shared by the safetensors reader (safetensors.cpp) and writer
// (safetensors_writer.cpp); not part of the io API.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace adallm::io::safetensors_detail {

// The Rust crate's MAX_HEADER_SIZE: a longer header is taken as "not a safetensors file".
inline constexpr uint64_t kMaxHeaderBytes = 100'000'000;
inline constexpr std::string_view kMetadataKey = "__metadata__";
inline constexpr std::string_view kIndexName = "model.safetensors.index.json";

inline std::string errno_text(int err) {
  return std::generic_category().message(err);
}

// a * b, or false when it does not fit in `limit`.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t limit, uint64_t& out) {
  if (a != 0 && b > limit / a) return false;
  out = a * b;
  return out <= limit;
}

}  // namespace adallm::io::safetensors_detail
