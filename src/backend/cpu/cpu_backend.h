// The CPU reference backend: every Backend op as plain fp32 loops on host memory, the executable
// specification the CUDA kernels are tested against and what runs models in CI. Activations are F32.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace adallm::backend {

struct CpuOptions {
  // W4A8 emulation: every NVFP4 Linear quantizes its activations per token to FP8 e4m3 first
  // (quant/fp8_activations.h), as the W4A8 GPU kernels will, so that its accuracy can be measured against
  // W4A16 (the default). Dense Linears (BF16 weights, a BF16 lm_head) are untouched.
  bool fp8_activations = false;
};

// num_threads: the size of the process-wide pool (core/parallel.h) the ops run on; 0 = all hardware
// threads. The pool is shared, so the last backend made sets it.
std::unique_ptr<Backend> make_cpu_backend(int num_threads = 0, CpuOptions options = {});

}  // namespace adallm::backend
