// NCCL for tensor parallelism, loaded at run time: a single-GPU run needs nothing of it, and the library
// (≈ 220 MB) is not on every machine the binary runs on. On first use dlopen() loads $ADALLM_NCCL_LIBRARY
// when set, else libnccl.so.2 from the loader's path; a missing library, or one older than 2.10 (bf16
// collectives), is a clear error naming the path. The types come from the CUDA toolkit's nccl.h at build time.
// The communicators of one process's GPUs are made together (one thread per GPU drives its rank); NVLink
// multicast stays off (NCCL_NVLS_ENABLE=0 unless the user set it), as issue 9 asks for these machines.
#pragma once

#include <cuda_runtime_api.h>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace adallm::cuda {

// The NCCL version ("2.27.7") of the library found; throws adallm::Error when none can be loaded.
std::string nccl_version();

// One communicator per listed device, ranks 0..size-1 in list order (ncclCommInitAll).
class NcclGroup {
 public:
  // Throws adallm::Error when NCCL cannot be loaded, a device is listed twice, or initialization fails.
  static std::unique_ptr<NcclGroup> create(std::span<const int> devices);
  ~NcclGroup();
  NcclGroup(const NcclGroup&) = delete;
  NcclGroup& operator=(const NcclGroup&) = delete;

  int size() const { return static_cast<int>(comms_.size()); }
  int device(int rank) const { return devices_.at(static_cast<size_t>(rank)); }

  // Called by every rank (each from its own thread, in the same order on all ranks), enqueued on `stream`
  // of the rank's device. recv may alias send. dtype: F32, BF16 or F16.
  // Element-wise sum of `count` elements over the ranks, into every rank's recv.
  void all_reduce_sum(int rank, const void* send, void* recv, size_t count, DType dtype, cudaStream_t stream) const;
  // Rank r's `count` elements land at recv + r · count on every rank (recv holds size() · count).
  void all_gather(int rank, const void* send, void* recv, size_t count, DType dtype, cudaStream_t stream) const;

 private:
  NcclGroup() = default;
  std::vector<int> devices_;
  std::vector<void*> comms_;  // ncclComm_t
};

}  // namespace adallm::cuda
