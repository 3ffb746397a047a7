// Device discovery through the CUDA runtime, and the match between the GPU and the compiled architectures.
#include "backend/cuda/device.h"

#include <cuda_runtime.h>

#include <sstream>

#include "core/error.h"
#include "kernels/cuda_check.h"

namespace adallm::cuda {
namespace {

// A tiny kernel whose launch proves that the binary's code loads on the device.
__global__ void probe_kernel(int* out) { *out = 42; }

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string(what) + " failed: " + cudaGetErrorString(status));
  }
}

}  // namespace

std::vector<DeviceInfo> list_devices() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" status
    return {};
  }
  std::vector<DeviceInfo> devices;
  for (int i = 0; i < count; ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    DeviceInfo info;
    info.index = i;
    info.name = prop.name;
    info.compute_capability = prop.major * 10 + prop.minor;
    info.total_memory = prop.totalGlobalMem;
    info.multiprocessors = prop.multiProcessorCount;
    info.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
    devices.push_back(info);
  }
  return devices;
}

std::string compiled_architectures() { return ADALLM_CUDA_ARCHITECTURES; }

bool runs_on(int compute_capability) {
  std::stringstream list(compiled_architectures());
  std::string item;
  while (std::getline(list, item, ',')) {
    const bool is_virtual = item.find("-virtual") != std::string::npos;
    const bool is_real = item.find("-real") != std::string::npos;
    const int arch = std::stoi(item);
    // Machine code runs on the same major architecture with an equal or higher minor version.
    if (!is_virtual && arch / 10 == compute_capability / 10 && arch <= compute_capability) return true;
    if (!is_real && arch <= compute_capability) return true;  // PTX is JIT-compiled forward
  }
  return false;
}

DeviceInfo check_device(int index) {
  const auto devices = list_devices();
  if (index < 0 || index >= static_cast<int>(devices.size())) {
    throw Error("CUDA device " + std::to_string(index) + " not found: " + std::to_string(devices.size()) +
                " device(s) visible")
        .hint("check CUDA_VISIBLE_DEVICES and the driver (nvidia-smi)");
  }
  const DeviceInfo& device = devices[static_cast<size_t>(index)];
  if (!runs_on(device.compute_capability)) {
    throw Error("GPU " + device.name + " (sm_" + std::to_string(device.compute_capability) +
                ") is not covered by this build's CUDA architectures " + compiled_architectures())
        .hint("rebuild with -DCMAKE_CUDA_ARCHITECTURES=native on this machine");
  }
  check(cudaSetDevice(index), "cudaSetDevice");
  int* out = nullptr;
  check(cudaMalloc(&out, sizeof(int)), "cudaMalloc");
  probe_kernel<<<1, 1>>>(out);
  int value = 0;
  const cudaError_t launched = cudaGetLastError();
  const cudaError_t copied = cudaMemcpy(&value, out, sizeof(int), cudaMemcpyDeviceToHost);
  cudaFree(out);
  check(launched, "probe kernel launch");
  check(copied, "probe kernel copy");
  if (value != 42) throw Error("probe kernel on " + device.name + " returned a wrong value");
  return device;
}

double measure_copy_bandwidth() {
  const size_t bytes = size_t{1} << 30;
  void *a = nullptr, *b = nullptr;
  ADALLM_CUDA_CHECK(cudaMalloc(&a, bytes));
  const cudaError_t second = cudaMalloc(&b, bytes);
  if (second != cudaSuccess) cudaFree(a);
  ADALLM_CUDA_CHECK(second);
  cudaEvent_t start = nullptr, stop = nullptr;
  ADALLM_CUDA_CHECK(cudaEventCreate(&start));
  ADALLM_CUDA_CHECK(cudaEventCreate(&stop));
  float best_ms = 0.0f;
  for (int i = 0; i < 6; ++i) {
    ADALLM_CUDA_CHECK(cudaEventRecord(start));
    ADALLM_CUDA_CHECK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
    ADALLM_CUDA_CHECK(cudaEventRecord(stop));
    ADALLM_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0.0f;
    ADALLM_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    if (i > 0 && (best_ms == 0.0f || ms < best_ms)) best_ms = ms;  // the first copy warms up
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  return 2.0 * static_cast<double>(bytes) / (static_cast<double>(best_ms) / 1e3);
}

}  // namespace adallm::cuda
