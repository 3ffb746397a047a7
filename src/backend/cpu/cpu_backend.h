// The CPU reference backend: every Backend op as plain fp32 loops on host memory, the executable
// specification the CUDA kernels are tested against and what runs models in CI. Activations are F32.
#pragma once

#include <memory>

#include "backend/backend.h"

namespace adallm::backend {

// num_threads: the size of the process-wide pool (core/parallel.h) the ops run on; 0 = all hardware
// threads. The pool is shared, so the last backend made sets it.
std::unique_ptr<Backend> make_cpu_backend(int num_threads = 0);

}  // namespace adallm::backend
