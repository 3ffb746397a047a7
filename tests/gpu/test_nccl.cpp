// NCCL collectives through NcclGroup (label `gpu`): a group of every visible GPU (one is enough) sums and
// gathers F32 and BF16 buffers, each rank driven by its own thread as the tensor-parallel engine will;
// the results are checked element by element against the sums computed on the host. NCCL must be
// loadable (libnccl.so.2 on the loader's path, or ADALLM_NCCL_LIBRARY).
#include <cuda_runtime_api.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "backend/cuda/device.h"
#include "backend/cuda/nccl.h"
#include "core/float_codecs.h"

namespace adallm::cuda {
namespace {

#define CHECK_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

// Rank r's element i: small integers, so that bf16 sums over a few ranks are exact.
float value(int rank, size_t i) { return static_cast<float>(static_cast<int>(i % 61) - 30 + 3 * rank); }

TEST(Nccl, AllReduceAndAllGatherOverTheVisibleGpus) {
  std::printf("[nccl] version %s\n", nccl_version().c_str());
  std::vector<int> devices;
  for (const DeviceInfo& d : list_devices()) devices.push_back(d.index);
  ASSERT_FALSE(devices.empty());
  const auto group = NcclGroup::create(devices);
  ASSERT_EQ(group->size(), static_cast<int>(devices.size()));
  EXPECT_STREQ(std::getenv("NCCL_NVLS_ENABLE"), "0");
  const int size = group->size();
  const size_t count = 4099;  // not a multiple of any vector width
  for (const DType dtype : {DType::F32, DType::BF16}) {
    const size_t elem = dtype == DType::F32 ? 4 : 2;
    std::vector<std::vector<uint8_t>> reduced(static_cast<size_t>(size)), gathered(static_cast<size_t>(size));
    std::vector<std::thread> ranks;
    std::vector<std::string> failures(static_cast<size_t>(size));
    for (int r = 0; r < size; ++r) {
      ranks.emplace_back([&, r] {
        const auto fail = [&](const std::string& what) { failures[static_cast<size_t>(r)] = what; };
        if (cudaSetDevice(group->device(r)) != cudaSuccess) return fail("cudaSetDevice");
        std::vector<uint8_t> host(count * elem);
        for (size_t i = 0; i < count; ++i) {
          if (dtype == DType::F32) {
            reinterpret_cast<float*>(host.data())[i] = value(r, i);
          } else {
            reinterpret_cast<uint16_t*>(host.data())[i] = f32_to_bf16(value(r, i));
          }
        }
        void *send = nullptr, *sum = nullptr, *all = nullptr;
        cudaStream_t stream = nullptr;
        if (cudaMalloc(&send, count * elem) != cudaSuccess || cudaMalloc(&sum, count * elem) != cudaSuccess ||
            cudaMalloc(&all, count * elem * size) != cudaSuccess || cudaStreamCreate(&stream) != cudaSuccess) {
          return fail("allocation");
        }
        cudaMemcpy(send, host.data(), count * elem, cudaMemcpyHostToDevice);
        try {
          group->all_reduce_sum(r, send, sum, count, dtype, stream);
          group->all_gather(r, send, all, count, dtype, stream);
        } catch (const std::exception& e) {
          return fail(e.what());
        }
        if (cudaStreamSynchronize(stream) != cudaSuccess) return fail("synchronize");
        reduced[static_cast<size_t>(r)].resize(count * elem);
        gathered[static_cast<size_t>(r)].resize(count * elem * size);
        cudaMemcpy(reduced[static_cast<size_t>(r)].data(), sum, count * elem, cudaMemcpyDeviceToHost);
        cudaMemcpy(gathered[static_cast<size_t>(r)].data(), all, count * elem * size, cudaMemcpyDeviceToHost);
        cudaFree(send), cudaFree(sum), cudaFree(all), cudaStreamDestroy(stream);
      });
    }
    for (std::thread& t : ranks) t.join();
    const auto read = [&](const std::vector<uint8_t>& bytes, size_t i) {
      return dtype == DType::F32 ? reinterpret_cast<const float*>(bytes.data())[i]
                                 : bf16_to_f32(reinterpret_cast<const uint16_t*>(bytes.data())[i]);
    };
    for (int r = 0; r < size; ++r) {
      ASSERT_EQ(failures[static_cast<size_t>(r)], "") << "rank " << r;
      for (size_t i = 0; i < count; ++i) {
        float want = 0.0f;
        for (int q = 0; q < size; ++q) want += value(q, i);
        ASSERT_EQ(read(reduced[static_cast<size_t>(r)], i), want) << "rank " << r << " sum " << i;
        for (int q = 0; q < size; ++q) {
          ASSERT_EQ(read(gathered[static_cast<size_t>(r)], q * count + i), value(q, i)) << "rank " << r << " from " << q;
        }
      }
    }
  }
}

}  // namespace
}  // namespace adallm::cuda
