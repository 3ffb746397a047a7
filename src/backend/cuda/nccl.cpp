// NCCL loaded with dlopen, and the communicator group of one process's GPUs; see nccl.h.
#include "backend/cuda/nccl.h"

#include <dlfcn.h>
#include <nccl.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace adallm::cuda {
namespace {

// The entry points we call, resolved once from the loaded library.
struct NcclApi {
  ncclResult_t (*get_version)(int*) = nullptr;
  const char* (*error_string)(ncclResult_t) = nullptr;
  ncclResult_t (*comm_init_all)(ncclComm_t*, int, const int*) = nullptr;
  ncclResult_t (*comm_destroy)(ncclComm_t) = nullptr;
  ncclResult_t (*all_reduce)(const void*, void*, size_t, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t) = nullptr;
  ncclResult_t (*all_gather)(const void*, void*, size_t, ncclDataType_t, ncclComm_t, cudaStream_t) = nullptr;
  int version = 0;  // NCCL_VERSION_CODE of the library: major · 10000 + minor · 100 + patch
};

template <typename F>
void resolve(void* handle, const char* symbol, const std::string& path, F& f) {
  f = reinterpret_cast<F>(dlsym(handle, symbol));
  if (f == nullptr) throw Error("NCCL: " + path + " has no " + symbol);
}

NcclApi load() {
  // A library the user names is the one used, or the error: no fallback to another NCCL.
  const char* env = std::getenv("ADALLM_NCCL_LIBRARY");
  const bool named = env != nullptr && *env != '\0';
  const std::string path = named ? env : "libnccl.so.2";
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    throw Error("NCCL is needed for tensor parallelism and could not be loaded from " + path +
                (named ? " (ADALLM_NCCL_LIBRARY)" : " (set ADALLM_NCCL_LIBRARY to a libnccl.so.2, e.g. the CUDA toolkit's or the nvidia-nccl Python package's)") +
                ": " + (why ? why : "not loadable"));
  }
  NcclApi api;  // the handle stays open for the life of the process
  resolve(handle, "ncclGetVersion", path, api.get_version);
  resolve(handle, "ncclGetErrorString", path, api.error_string);
  resolve(handle, "ncclCommInitAll", path, api.comm_init_all);
  resolve(handle, "ncclCommDestroy", path, api.comm_destroy);
  resolve(handle, "ncclAllReduce", path, api.all_reduce);
  resolve(handle, "ncclAllGather", path, api.all_gather);
  if (api.get_version(&api.version) != ncclSuccess) throw Error("NCCL: ncclGetVersion failed in " + path);
  if (api.version < 21000) {
    throw Error("NCCL: " + path + " is version code " + std::to_string(api.version) +
                "; AdaLLM needs 2.10 or newer (bf16 collectives)");
  }
  return api;
}

// Loaded on first use; a failure is retried by the next call (the user may have fixed the environment).
const NcclApi& api() {
  static std::mutex mutex;
  static std::unique_ptr<NcclApi> loaded;
  const std::lock_guard<std::mutex> lock(mutex);
  if (!loaded) loaded = std::make_unique<NcclApi>(load());
  return *loaded;
}

void check(ncclResult_t result, const char* what) {
  if (result != ncclSuccess) throw Error(std::string("NCCL ") + what + ": " + api().error_string(result));
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    default: break;
  }
  throw Error("NCCL collectives take F32, BF16 or F16 tensors, not " + std::string(dtype_name(dtype)));
}

}  // namespace

std::string nccl_version() {
  const int v = api().version;
  return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

std::unique_ptr<NcclGroup> NcclGroup::create(std::span<const int> devices) {
  if (devices.empty()) throw Error("NCCL: a communicator group needs at least one device");
  std::vector<int> sorted(devices.begin(), devices.end());
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) {
    throw Error("NCCL: a device is listed twice in the tensor-parallel group");
  }
  const NcclApi& nccl = api();
  // NVLink SHARP (multicast) stays off unless the user asked otherwise; it must be set before init.
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/0);
  std::unique_ptr<NcclGroup> group(new NcclGroup());
  group->devices_.assign(devices.begin(), devices.end());
  std::vector<ncclComm_t> comms(devices.size(), nullptr);
  check(nccl.comm_init_all(comms.data(), static_cast<int>(devices.size()), group->devices_.data()), "ncclCommInitAll");
  group->comms_.assign(comms.begin(), comms.end());
  return group;
}

NcclGroup::~NcclGroup() {
  for (void* comm : comms_) {
    if (comm != nullptr) api().comm_destroy(static_cast<ncclComm_t>(comm));  // errors at teardown: nothing to do
  }
}

void NcclGroup::all_reduce_sum(int rank, const void* send, void* recv, size_t count, DType dtype,
                               cudaStream_t stream) const {
  check(api().all_reduce(send, recv, count, nccl_type(dtype), ncclSum, static_cast<ncclComm_t>(comms_.at(static_cast<size_t>(rank))),
                         stream),
        "ncclAllReduce");
}

void NcclGroup::all_gather(int rank, const void* send, void* recv, size_t count, DType dtype, cudaStream_t stream) const {
  check(api().all_gather(send, recv, count, nccl_type(dtype), static_cast<ncclComm_t>(comms_.at(static_cast<size_t>(rank))),
                         stream),
        "ncclAllGather");
}

}  // namespace adallm::cuda
