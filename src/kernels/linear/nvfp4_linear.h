// Which NVFP4 linear kernel serves which batch on a given GPU: decided once when a model is loaded (the
// plan is logged), then applied per call by token count. `--linear-path` forces a path; a path this GPU
// or this build cannot run is an error, never a silent substitute.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels {

// w4a16: bf16 activations × exactly decoded weights, fp32 accumulation (built). w4a8: fp8 activations on
// fp8 tensor cores (planned for sm_89; see docs/performance.md for why not sm_90).
enum class LinearPath { automatic, w4a16, w4a8 };

// "auto", "w4a16" or "w4a8"; anything else throws adallm::Error naming the accepted values.
LinearPath parse_linear_path(std::string_view text);
const char* linear_path_name(LinearPath path);

// What the plan needs to know of the GPU: its compute capability and whether this build can run the
// sm_90a GEMM there (nvfp4_gemm_supported()).
struct Nvfp4Device {
  int major = 0;
  int minor = 0;
  bool wgmma_gemm = false;
};

// The decode GEMV up to this many tokens: measured on the H100 it beats the wgmma GEMM through 64 tokens
// on every shape of docs/performance.md, and loses from 128 on (the mma.sync GEMM from about 128).
inline constexpr int64_t kNvfp4GemvMaxBatch = 64;

// The GEMM above kNvfp4GemvMaxBatch tokens: wgmma (nvfp4_gemm) where this build runs it on sm_90, else
// mma.sync (nvfp4_gemm_mma; about a third of the wgmma GEMM's speed on the H100).
enum class Nvfp4Gemm { wgmma, mma };

struct Nvfp4LinearPlan {
  LinearPath path = LinearPath::w4a16;
  int arch = 0;  // compute capability, major * 10 + minor
  Nvfp4Gemm gemm = Nvfp4Gemm::mma;
  std::string describe() const;  // one line for the load log
  // Workspace nvfp4_linear needs for up to `tokens` tokens of this weight (the wgmma GEMM's permuted copy
  // of the activations; zero otherwise).
  int64_t workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens) const;
};

// Throws adallm::Error for a GPU older than sm_80 or a path this GPU or build cannot run.
Nvfp4LinearPlan plan_nvfp4_linear(const Nvfp4Device& device, LinearPath requested);

// The current device as the plan sees it.
Nvfp4Device current_nvfp4_device();

// Runs the plan's kernel for params.tokens tokens. `workspace` as workspace_bytes() says.
void nvfp4_linear(const Nvfp4LinearPlan& plan, const Nvfp4LinearParams& params, void* workspace, cudaStream_t stream);

}  // namespace adallm::kernels
