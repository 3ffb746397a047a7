// Gated activation kernel; see gated_activation.h. The formulas are the CPU reference's, in fp32 with
// the accurate expf/tanhf (no fast-math in this library).
#include "kernels/activation/gated_activation.h"

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 256;

template <GatedActivation kAct>
__global__ void gated_kernel(const __nv_bfloat16* __restrict__ gate_up, int64_t gate_up_stride, int64_t rows,
                             int64_t n, __nv_bfloat16* __restrict__ out, int64_t out_stride) {
  pdl_begin();
  const int64_t i = static_cast<int64_t>(blockIdx.x) * kThreads + threadIdx.x;
  if (i >= n) return;
  for (int64_t row = blockIdx.y; row < rows; row += gridDim.y) {
  const float g = __bfloat162float(gate_up[row * gate_up_stride + i]);
  const float u = __bfloat162float(gate_up[row * gate_up_stride + n + i]);
  float a;
  if constexpr (kAct == GatedActivation::silu) {
    a = g / (1.0f + expf(-g));
  } else {
    const float k = 0.7978845608028654f;  // sqrt(2 / pi)
    a = 0.5f * g * (1.0f + tanhf(k * (g + 0.044715f * g * g * g)));
  }
  out[row * out_stride + i] = __float2bfloat16_rn(a * u);
  }
}

}  // namespace

void gated_activation(const __nv_bfloat16* gate_up, int64_t gate_up_stride, int64_t rows, int64_t n,
                      GatedActivation act, __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream) {
  if (rows <= 0 || n <= 0) return;
  const dim3 grid(static_cast<unsigned>((n + kThreads - 1) / kThreads), static_cast<unsigned>(rows < 65535 ? rows : 65535));
  if (act == GatedActivation::silu) {
    launch_dependent("gated_activation", gated_kernel<GatedActivation::silu>, grid, dim3(kThreads), 0, stream, gate_up,
                     gate_up_stride, rows, n, out, out_stride);
  } else {
    launch_dependent("gated_activation", gated_kernel<GatedActivation::gelu_tanh>, grid, dim3(kThreads), 0, stream, gate_up,
                     gate_up_stride, rows, n, out, out_stride);
  }
}

}  // namespace adallm::kernels
