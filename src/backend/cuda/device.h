// What GPUs the process can see and whether this binary carries code for them. The load path calls
// check_device() once so that a GPU without matching kernels fails at start-up, never mid-request.
#pragma once

#include <string>
#include <vector>

namespace adallm::cuda {

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_capability = 0;  // major * 10 + minor, e.g. 89 for sm_89
  size_t total_memory = 0;
  int multiprocessors = 0;
  size_t l2_bytes = 0;
};

// Devices visible to the CUDA runtime; empty (not an error) when there is no driver or no GPU.
std::vector<DeviceInfo> list_devices();
// The CMAKE_CUDA_ARCHITECTURES list this binary was built with, comma-separated:
// "80-real,86-real,89-real,90-real,90-virtual".
std::string compiled_architectures();
// True when the binary holds machine code for this compute capability, or PTX of a lower one that the
// driver can compile for it.
bool runs_on(int compute_capability);
// Throws adallm::Error naming the GPU and the compiled list when device `index` cannot run our kernels.
DeviceInfo check_device(int index);

// The current device's memory bandwidth as a device-to-device copy sees it, bytes read + written per
// second: the best of several copies of a 1 GiB buffer (far past the L2). The limit every GPU roofline
// AdaLLM reports is a ratio to, measured in the same run.
double measure_copy_bandwidth();

}  // namespace adallm::cuda
