// Programmatic dependent launch (PDL, sm_90 and newer) for the small kernels of a decode step: launched
// with launch_dependent(), a kernel may be scheduled while the previous kernel in the stream is still
// running, so launch latency and the next GEMV's weight prefetch overlap it. Such a kernel must call
// pdl_begin() before touching global memory: it waits until the previous kernel has finished and its
// writes are visible, then lets the kernel after it be scheduled in turn. On older GPUs both are plain.
#pragma once

#include <cuda_runtime.h>

#include <utility>

#include "kernels/cuda_check.h"

namespace adallm::kernels {

__device__ __forceinline__ void pdl_begin() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// Whether the current device takes programmatic launches (compute capability 9.0 or newer).
bool programmatic_launch_supported();

// The current device's SM count (kernels size their grids by it).
int multiprocessor_count();

// Launches `kernel`, as a programmatic dependent of the previous kernel in the stream when `dependent`
// (and the GPU takes it); a benchmark may turn it off to time kernels apart.
template <typename... Params, typename... Args>
void launch_kernel(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                   bool dependent, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attribute[1];
  attribute[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute[0].val.programmaticStreamSerializationAllowed = dependent && programmatic_launch_supported() ? 1 : 0;
  config.attrs = attribute;
  config.numAttrs = 1;
  cuda_check(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...), name, __FILE__, __LINE__);
}

template <typename... Params, typename... Args>
void launch_dependent(const char* name, void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args&&... args) {
  launch_kernel(name, kernel, grid, block, smem, stream, true, std::forward<Args>(args)...);
}

}  // namespace adallm::kernels
