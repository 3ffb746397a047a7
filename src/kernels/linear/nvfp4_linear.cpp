// NVFP4 linear kernel plan and dispatch (see nvfp4_linear.h).
#include "kernels/linear/nvfp4_linear.h"

#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/linear/nvfp4_gemm.h"
#include "kernels/linear/nvfp4_gemv.h"
#include "kernels/linear/nvfp4_w4a8.h"

namespace adallm::kernels {

LinearPath parse_linear_path(std::string_view text) {
  if (text == "auto") return LinearPath::automatic;
  if (text == "w4a16") return LinearPath::w4a16;
  if (text == "w4a8") return LinearPath::w4a8;
  throw Error("--linear-path: unknown path '" + std::string(text) + "' (expected auto, w4a16 or w4a8)");
}

const char* linear_path_name(LinearPath path) {
  switch (path) {
    case LinearPath::automatic: return "auto";
    case LinearPath::w4a16: return "w4a16";
    case LinearPath::w4a8: return "w4a8";
  }
  return "?";
}

Nvfp4LinearPlan plan_nvfp4_linear(const Nvfp4Device& device, LinearPath requested) {
  const int arch = device.major * 10 + device.minor;
  const std::string sm = "sm_" + std::to_string(arch);
  if (device.major < 8) {
    throw Error("NVFP4 linear layers need an sm_80 or newer GPU (Ampere, Ada, Hopper); this one is " + sm);
  }
  if (requested == LinearPath::w4a8 && arch < 89) {
    throw Error("--linear-path w4a8 needs FP8 tensor cores (sm_89 or newer); this GPU is " + sm +
                ". Use --linear-path w4a16 or auto.");
  }
  Nvfp4LinearPlan plan;
  plan.path = requested == LinearPath::w4a8 ? LinearPath::w4a8 : LinearPath::w4a16;
  plan.arch = arch;
  plan.gemm = device.wgmma_gemm ? Nvfp4Gemm::wgmma : Nvfp4Gemm::mma;
  plan.multiprocessors = device.multiprocessors;
  return plan;
}

std::string Nvfp4LinearPlan::describe() const {
  const std::string line = "NVFP4 linear layers on sm_" + std::to_string(arch) + ": " + linear_path_name(path) + ", ";
  if (path == LinearPath::w4a8) return line + "activations quantized per token to fp8, W4A8 mma.sync GEMM for every batch";
  if (gemm == Nvfp4Gemm::wgmma) {
    return line + "decode GEMV up to " + std::to_string(kNvfp4GemvBatch) + " tokens (" +
           std::to_string(kNvfp4GemvMaxBatch) + " where the GEMM would not fill the " +
           std::to_string(multiprocessors) + " SMs), wgmma GEMM above";
  }
  return line + "decode GEMV up to " + std::to_string(kNvfp4GemvMaxBatch) + " tokens, mma.sync GEMM above";
}

int64_t Nvfp4LinearPlan::gemv_limit(const Nvfp4TiledShape& shape) const {
  if (path == LinearPath::w4a8) return 0;
  if (gemm != Nvfp4Gemm::wgmma) return kNvfp4GemvMaxBatch;
  // Up to 64 tokens the wgmma GEMM runs one 128-token tile per 128 weight rows.
  const int64_t gemm_blocks = (shape.row_tiles() + 7) / 8;
  return gemm_blocks >= multiprocessors ? kNvfp4GemvBatch : kNvfp4GemvMaxBatch;
}

int64_t Nvfp4LinearPlan::workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens) const {
  if (path == LinearPath::w4a8) return nvfp4_w4a8_workspace_bytes(shape, tokens);
  if (gemm != Nvfp4Gemm::wgmma || tokens <= gemv_limit(shape)) return 0;
  return nvfp4_gemm_workspace_bytes(shape, tokens);
}

Nvfp4Device current_nvfp4_device() {
  int device = 0;
  Nvfp4Device d;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&d.major, cudaDevAttrComputeCapabilityMajor, device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&d.minor, cudaDevAttrComputeCapabilityMinor, device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&d.multiprocessors, cudaDevAttrMultiProcessorCount, device));
  d.wgmma_gemm = nvfp4_gemm_supported();
  return d;
}

void nvfp4_linear(const Nvfp4LinearPlan& plan, const Nvfp4LinearParams& params, void* workspace, cudaStream_t stream) {
  const bool gemv = plan.path != LinearPath::w4a8 && params.tokens <= plan.gemv_limit(params.shape);
  if (!gemv && (params.x_partials != nullptr || params.residual != nullptr)) {
    throw Error("nvfp4 linear: " + std::to_string(params.tokens) + " tokens of [" + std::to_string(params.shape.n) + ", " +
                std::to_string(params.shape.k) + "] run a GEMM, and the norm prologue and residual epilogue are the GEMV's");
  }
  if (plan.path == LinearPath::w4a8) {
    nvfp4_gemm_w4a8(params, workspace, stream);
  } else if (params.tokens <= plan.gemv_limit(params.shape)) {
    nvfp4_gemv(params, stream);
  } else if (plan.gemm == Nvfp4Gemm::wgmma) {
    nvfp4_gemm(params, workspace, stream);
  } else {
    nvfp4_gemm_mma(params, stream);
  }
}

}  // namespace adallm::kernels
