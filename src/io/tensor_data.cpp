// Dense tensor decoding. Element loads go through memcpy: mmap offsets are not always aligned.
#include "io/tensor_data.h"

#include <cstring>

#include "core/error.h"
#include "core/float_codecs.h"

namespace adallm::io {

void tensor_to_f32(const TensorInfo& t, std::span<float> out) {
  const size_t n = static_cast<size_t>(t.numel());
  if (out.size() != n) {
    throw Error("output holds " + std::to_string(out.size()) + " elements, tensor has " + std::to_string(n))
        .tensor(t.name);
  }
  if (t.data == nullptr) throw Error("tensor has no data mapped").tensor(t.name).file(t.file);
  switch (t.dtype) {
    case DType::F32:
      std::memcpy(out.data(), t.data, n * sizeof(float));
      return;
    case DType::BF16:
    case DType::F16: {
      const bool bf16 = t.dtype == DType::BF16;
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, sizeof h);
        out[i] = bf16 ? bf16_to_f32(h) : f16_to_f32(h);
      }
      return;
    }
    default:
      throw Error("expected a BF16, F16 or F32 tensor, got " + t.describe()).tensor(t.name).file(t.file);
  }
}

std::vector<float> tensor_to_f32(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.numel()));
  tensor_to_f32(t, out);
  return out;
}

}  // namespace adallm::io
