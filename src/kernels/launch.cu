// See launch.cuh.
#include "kernels/launch.cuh"

namespace adallm::kernels {

bool programmatic_launch_supported() {
  // Per process: the backend works on one device.
  static const bool supported = [] {
    int device = 0, major = 0;
    ADALLM_CUDA_CHECK(cudaGetDevice(&device));
    ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
    return major >= 9;
  }();
  return supported;
}

int multiprocessor_count() {
  int device = 0, count = 0;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

}  // namespace adallm::kernels
