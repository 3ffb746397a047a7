// The gated MLP activation on the GPU: out = act(gate) · up, fp32 arithmetic, bf16 in and out. The NVFP4
// linear kernels can fuse this into the gate/up projection (Nvfp4Activation); this is the unfused form for
// the other paths (dense weights, the mma.sync GEMM's callers that keep gate and up apart).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace adallm::kernels {

enum class GatedActivation { silu, gelu_tanh };  // gelu_tanh: PyTorch's gelu(approximate="tanh")

// gate_up [rows, 2 * n] (gate in the first n columns), row stride gate_up_stride; out [rows, n].
void gated_activation(const __nv_bfloat16* gate_up, int64_t gate_up_stride, int64_t rows, int64_t n,
                      GatedActivation act, __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream);

}  // namespace adallm::kernels
