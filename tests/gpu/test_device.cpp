// GPU smoke test (label `gpu`): the GPU is found, this build carries code for it, and a kernel runs.
#include <gtest/gtest.h>

#include "backend/cuda/device.h"

namespace adallm::cuda {
namespace {

TEST(CudaDevice, ListsAndRunsOnDeviceZero) {
  const auto devices = list_devices();
  ASSERT_FALSE(devices.empty()) << "no CUDA device visible";
  const DeviceInfo d = check_device(0);
  EXPECT_GE(d.compute_capability, 80);
  EXPECT_GT(d.multiprocessors, 0);
  EXPECT_GT(d.total_memory, size_t{1} << 30);
  EXPECT_TRUE(runs_on(d.compute_capability)) << compiled_architectures();
}

TEST(CudaDevice, ArchitectureMatching) {
  // Meaningful for the default list "80-real,86-real,89-real,90-real,90-virtual"; other lists are checked
  // only for consistency with themselves.
  if (compiled_architectures() == "80-real,86-real,89-real,90-real,90-virtual") {
    EXPECT_TRUE(runs_on(80));
    EXPECT_TRUE(runs_on(87));   // sm_80 machine code runs on later 8.x
    EXPECT_TRUE(runs_on(120));  // through sm_90 PTX
    EXPECT_FALSE(runs_on(75));
  }
}

}  // namespace
}  // namespace adallm::cuda
