// Embedding lookup and row gathers; see embedding.h.
#include "kernels/embedding/embedding.h"

#include <cuda_bf16.h>

#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 256;

template <typename T>
__global__ void embed_kernel(const T* __restrict__ table, int64_t table_stride, int64_t first_id, int64_t table_rows,
                             const int32_t* __restrict__ ids, int64_t cols, float scale, float* __restrict__ out,
                             int64_t out_stride) {
  const int64_t t = blockIdx.x;
  const int64_t row = static_cast<int64_t>(ids[t]) - first_id;
  float* dst = out + t * out_stride;
  if (row < 0 || row >= table_rows) {  // another rank's vocabulary row
    for (int64_t c = threadIdx.x; c < cols; c += kThreads) dst[c] = 0.0f;
    return;
  }
  const T* src = table + row * table_stride;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) {
    if constexpr (sizeof(T) == 2) {
      dst[c] = __bfloat162float(src[c]) * scale;
    } else {
      dst[c] = src[c] * scale;
    }
  }
}

template <typename T>
__global__ void gather_kernel(const T* __restrict__ src, int64_t src_stride, const int32_t* __restrict__ rows,
                              int64_t cols, T* __restrict__ dst, int64_t dst_stride) {
  const int64_t i = blockIdx.x;
  const T* s = src + static_cast<int64_t>(rows[i]) * src_stride;
  T* d = dst + i * dst_stride;
  for (int64_t c = threadIdx.x; c < cols; c += kThreads) d[c] = s[c];
}

}  // namespace

void embed(const void* table, DType table_dtype, int64_t table_stride, int64_t first_id, int64_t table_rows,
           const int32_t* token_ids, int64_t tokens, int64_t cols, float scale, float* out, int64_t out_stride,
           cudaStream_t stream) {
  if (table_dtype != DType::BF16 && table_dtype != DType::F32) throw Error("embed kernel: table must be BF16 or F32");
  if (tokens <= 0) return;
  const auto blocks = static_cast<unsigned>(tokens);
  if (table_dtype == DType::BF16) {
    embed_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(table), table_stride, first_id,
                                                  table_rows, token_ids, cols, scale, out, out_stride);
  } else {
    embed_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const float*>(table), table_stride, first_id, table_rows,
                                                  token_ids, cols, scale, out, out_stride);
  }
  ADALLM_CUDA_CHECK_LAUNCH("embed");
}

void gather_rows(const void* src, int64_t src_stride, const int32_t* rows, int64_t count, int64_t cols,
                 int elem_bytes, void* dst, int64_t dst_stride, cudaStream_t stream) {
  if (count <= 0) return;
  const auto blocks = static_cast<unsigned>(count);
  if (elem_bytes == 2) {
    gather_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const uint16_t*>(src), src_stride, rows, cols,
                                                   static_cast<uint16_t*>(dst), dst_stride);
  } else if (elem_bytes == 4) {
    gather_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const uint32_t*>(src), src_stride, rows, cols,
                                                   static_cast<uint32_t*>(dst), dst_stride);
  } else {
    throw Error("gather_rows kernel: elements of " + std::to_string(elem_bytes) + " bytes (expected 2 or 4)");
  }
  ADALLM_CUDA_CHECK_LAUNCH("gather_rows");
}

}  // namespace adallm::kernels
