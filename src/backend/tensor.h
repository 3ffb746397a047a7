// A 2-D strided view of memory a backend owns (host memory for the CPU backend, device memory for CUDA),
// and the RAII buffer that owns it. Views never own; shapes are [rows, cols] with a row stride in
// elements so that column slices (q, k, v inside one qkv projection) need no copy.
#pragma once

#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace adallm::backend {

struct Tensor {
  void* data = nullptr;
  DType dtype = DType::F32;
  int64_t rows = 0;
  int64_t cols = 0;
  int64_t stride = 0;  // elements between the starts of consecutive rows; >= cols

  bool contiguous() const { return stride == cols; }
  int64_t numel() const { return rows * cols; }
  // Rows [first, first + count): a view of the same memory.
  Tensor row_slice(int64_t first, int64_t count) const;
  // Columns [first, first + count) of every row: a view of the same memory with the same stride.
  Tensor col_slice(int64_t first, int64_t count) const;
  std::string describe() const;  // "F32 [7, 64] stride 192"

  template <typename T>
  T* ptr() const { return static_cast<T*>(data); }
  template <typename T>
  T* row(int64_t r) const { return static_cast<T*>(data) + r * stride; }
};

// Owns backend memory; the backend that made it frees it. Movable, not copyable.
class Buffer {
 public:
  virtual ~Buffer() = default;
  const Tensor& view() const { return view_; }

 protected:
  Tensor view_;
};

}  // namespace adallm::backend
