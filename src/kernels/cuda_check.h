// CUDA runtime errors as adallm::Error, naming the call and where it was made. A CUDA fault is fatal to
// the request and logged by the caller; nothing here retries or falls back.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "core/error.h"

namespace adallm::kernels {

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess) {
    throw Error(std::string("CUDA error in ") + what + ": " + cudaGetErrorString(status) + " (" + file + ":" +
                std::to_string(line) + ")");
  }
}

}  // namespace adallm::kernels

#define ADALLM_CUDA_CHECK(call) ::adallm::kernels::cuda_check((call), #call, __FILE__, __LINE__)
// After a launch: the launch configuration error, if any.
#define ADALLM_CUDA_CHECK_LAUNCH(name) ::adallm::kernels::cuda_check(cudaGetLastError(), name, __FILE__, __LINE__)
