// NumPy .npy files (format version 1.0) of little-endian float32: what `adallm logits` writes and the
// tests read back. Other dtypes and Fortran order are refused with an error naming the file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace adallm::io {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;  // row-major
};

// Writes through a temporary file renamed into place. data.size() must equal the product of shape.
void write_npy_f32(const std::filesystem::path& path, std::span<const int64_t> shape, std::span<const float> data);
NpyArray read_npy_f32(const std::filesystem::path& path);

}  // namespace adallm::io
