// Row gathers on the GPU: the embedding lookup (token ids → fp32 residual rows, times the model's embedding
// scale) and the copy of selected rows (the logit rows of a step, the tokens routed to an expert).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "core/dtype.h"

namespace adallm::kernels {

// out[t, :] = table[token_ids[t] - first_id, :] · scale in fp32 for ids first_id .. first_id + table_rows - 1,
// zeros for the others (a tensor-parallel rank's vocabulary rows). table [table_rows, cols] BF16 or F32
// (table_dtype), row stride table_stride; out [tokens, cols] F32, row stride out_stride. Ids must be valid
// (the caller checks them on the host, where they come from).
void embed(const void* table, DType table_dtype, int64_t table_stride, int64_t first_id, int64_t table_rows,
           const int32_t* token_ids, int64_t tokens, int64_t cols, float scale, float* out, int64_t out_stride,
           cudaStream_t stream);

// dst[i, :] = src[rows[i], :] for i < count, elements of elem_bytes (2 or 4) bytes, row strides in elements.
void gather_rows(const void* src, int64_t src_stride, const int32_t* rows, int64_t count, int64_t cols,
                 int elem_bytes, void* dst, int64_t dst_stride, cudaStream_t stream);

}  // namespace adallm::kernels
