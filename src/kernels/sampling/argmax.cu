// Row argmax kernel; see argmax.h. One block per row; each thread scans a strided share of the row, then
// the block reduces (value, index) pairs with the lower index winning ties, as the CPU sampler does.
#include "kernels/sampling/argmax.h"

#include <cfloat>

#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 1024;

struct Best {
  float value;
  int32_t index;  // INT32_MAX: none yet
  bool bad;       // NaN or +inf seen
};

__device__ __forceinline__ Best better(Best a, Best b) {
  Best r;
  r.bad = a.bad || b.bad;
  const bool take_b = b.index != INT32_MAX && (a.index == INT32_MAX || b.value > a.value ||
                                               (b.value == a.value && b.index < a.index));
  r.value = take_b ? b.value : a.value;
  r.index = take_b ? b.index : a.index;
  return r;
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ logits, int64_t stride, int64_t cols,
                                                          int32_t* __restrict__ ids, int32_t non_finite,
                                                          int32_t no_finite) {
  pdl_begin();
  const float* row = logits + static_cast<int64_t>(blockIdx.x) * stride;
  Best best{-INFINITY, INT32_MAX, false};
  for (int64_t i = threadIdx.x; i < cols; i += kThreads) {
    const float v = row[i];
    if (!(v < INFINITY)) best.bad = true;
    // Strict: a thread visits its indices in increasing order. -inf never becomes a candidate.
    if (v > best.value) {
      best.value = v;
      best.index = static_cast<int32_t>(i);
    }
  }
  for (int o = 16; o > 0; o >>= 1) {
    Best other;
    other.value = __shfl_xor_sync(0xffffffffu, best.value, o);
    other.index = __shfl_xor_sync(0xffffffffu, best.index, o);
    other.bad = __shfl_xor_sync(0xffffffffu, best.bad, o);
    best = better(best, other);
  }
  __shared__ Best warps[kThreads / 32];
  if (threadIdx.x % 32 == 0) warps[threadIdx.x / 32] = best;
  __syncthreads();
  if (threadIdx.x == 0) {
    Best all = warps[0];
    for (int w = 1; w < kThreads / 32; ++w) all = better(all, warps[w]);
    ids[blockIdx.x] = all.bad ? non_finite : (all.index == INT32_MAX ? no_finite : all.index);
  }
}

}  // namespace

void argmax_rows(const float* logits, int64_t stride, int64_t rows, int64_t cols, int32_t* ids, int32_t non_finite,
                 int32_t no_finite, cudaStream_t stream) {
  if (rows <= 0) return;
  launch_dependent("argmax_rows", argmax_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, logits,
                   stride, cols, ids, non_finite, no_finite);
}

}  // namespace adallm::kernels
