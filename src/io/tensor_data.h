// Decoding a stored dense tensor (BF16, F16, F32) to fp32 on the CPU. Quantized layouts are decoded by
// quant/; device uploads by the backends.
#pragma once

#include <span>
#include <vector>

#include "io/safetensors.h"

namespace adallm::io {

// Exact upcast of every element; throws adallm::Error naming the tensor for any other dtype.
std::vector<float> tensor_to_f32(const TensorInfo& tensor);
void tensor_to_f32(const TensorInfo& tensor, std::span<float> out);

}  // namespace adallm::io
