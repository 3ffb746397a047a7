// Helpers for safetensors tests: hand-built safetensors byte buffers
// (length prefix + header text + data, with no validation, so malformed files are easy to make), and
// an assertion that a call throws adallm::Error with a given substring, file and tensor.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "test_util.h"

namespace adallm::test {

inline void append_u64_le(std::vector<uint8_t>& out, uint64_t value) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(value >> (8 * i)));
}

// 8-byte little-endian length of `header` (as given, no padding), the header bytes, then `data`.
inline std::vector<uint8_t> make_safetensors(std::string_view header, const std::vector<uint8_t>& data = {}) {
  std::vector<uint8_t> out;
  append_u64_le(out, header.size());
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline void write_bytes(const std::filesystem::path& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::vector<uint8_t> read_bytes(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

inline std::vector<uint8_t> iota_bytes(size_t n, uint8_t start = 0) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(start + i);
  return out;
}

// Runs `fn`, expects an adallm::Error whose rendered text contains `substring` and whose file and tensor
// fields equal `file` and `tensor` ("" = must be empty). Returns the rendered text for further checks.
template <typename Fn>
std::string expect_error(Fn&& fn, std::string_view substring, std::string_view file, std::string_view tensor = "") {
  try {
    fn();
  } catch (const adallm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)
        << "message: " << e.what() << "\nexpected substring: " << substring;
    EXPECT_EQ(e.file_path(), file) << e.what();
    EXPECT_EQ(e.tensor_name(), tensor) << e.what();
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-adallm exception: " << e.what();
    return {};
  }
  ADD_FAILURE() << "no error thrown; expected one containing: " << substring;
  return {};
}

}  // namespace adallm::test
