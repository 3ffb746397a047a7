// Logit mask kernel; see mask.h. One thread per logit, a grid row per logit row: a masked decode step
// touches each logit once, far below the head's cost.
#include "kernels/sampling/mask.h"

#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 256;

__global__ void __launch_bounds__(kThreads) mask_kernel(float* __restrict__ logits, int64_t stride, int64_t cols,
                                                        const uint32_t* __restrict__ bitmask, int64_t words) {
  pdl_begin();
  const int64_t r = blockIdx.y;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= cols) return;
  if (!((bitmask[r * words + i / 32] >> (i % 32)) & 1u)) logits[r * stride + i] = -INFINITY;
}

}  // namespace

void mask_logits(float* logits, int64_t stride, int64_t rows, int64_t cols, const uint32_t* bitmask,
                 cudaStream_t stream) {
  if (rows <= 0 || cols <= 0) return;
  const dim3 grid(static_cast<unsigned>((cols + kThreads - 1) / kThreads), static_cast<unsigned>(rows));
  launch_dependent("mask_logits", mask_kernel, grid, dim3(kThreads), 0, stream, logits, stride, cols, bitmask,
                   (cols + 31) / 32);
}

}  // namespace adallm::kernels
