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

// w4a16: bf16 activations × exactly decoded weights, fp32 accumulation. w4a8: activations quantized per
// token to fp8 e4m3, fp8 tensor cores (nvfp4_w4a8.h; sm_89 and newer — Ada's fast prefill path; on sm_90
// for comparison only, see docs/performance.md). `automatic` is w4a16.
enum class LinearPath { automatic, w4a16, w4a8 };

// "auto", "w4a16" or "w4a8"; anything else throws adallm::Error naming the accepted values.
LinearPath parse_linear_path(std::string_view text);
const char* linear_path_name(LinearPath path);

// What the plan needs to know of the GPU: its compute capability, whether this build can run the sm_90a
// GEMM there (nvfp4_gemm_supported()), and its SM count.
struct Nvfp4Device {
  int major = 0;
  int minor = 0;
  bool wgmma_gemm = false;
  int multiprocessors = 0;
};

// The decode GEMV serves up to kNvfp4GemvBatch tokens, and up to kNvfp4GemvMaxBatch where the wgmma GEMM's
// 128-row blocks would leave SMs idle. Measured on the H100 (docs/performance.md): the GEMV beats the
// wgmma GEMM through 48 tokens on every shape (a 32-token pass plus a 16-token one), through 64 on all
// but the widest (Qwen3-8B gate_up at 64: GEMM 75.9 µs, GEMV 88.2; at 48: 79.2 and 74.0), and loses
// from 128 on; it beats the mma.sync GEMM through 64.
inline constexpr int64_t kNvfp4GemvBatch = 48;
inline constexpr int64_t kNvfp4GemvMaxBatch = 64;

// The GEMM above the GEMV's range: wgmma (nvfp4_gemm) where this build runs it on sm_90, else mma.sync
// (nvfp4_gemm_mma; about a third of the wgmma GEMM's speed on the H100).
enum class Nvfp4Gemm { wgmma, mma };

struct Nvfp4LinearPlan {
  LinearPath path = LinearPath::w4a16;
  int arch = 0;  // compute capability, major * 10 + minor
  Nvfp4Gemm gemm = Nvfp4Gemm::mma;
  int multiprocessors = 0;
  std::string describe() const;  // one line for the load log
  // The most tokens the GEMV serves for this weight (kNvfp4GemvBatch or kNvfp4GemvMaxBatch; 0 for w4a8,
  // whose GEMM serves every batch).
  int64_t gemv_limit(const Nvfp4TiledShape& shape) const;
  // The layout the weights must be repacked in for this plan.
  Nvfp4Layout layout() const { return path == LinearPath::w4a8 ? Nvfp4Layout::w4a8 : Nvfp4Layout::w4a16; }
  // Workspace nvfp4_linear needs for up to `tokens` tokens of this weight (the wgmma GEMM's permuted copy
  // of the activations; zero otherwise).
  int64_t workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens) const;
};

// Throws adallm::Error for a GPU older than sm_80, or w4a8 on one older than sm_89.
Nvfp4LinearPlan plan_nvfp4_linear(const Nvfp4Device& device, LinearPath requested);

// The current device as the plan sees it.
Nvfp4Device current_nvfp4_device();

// Runs the plan's kernel for params.tokens tokens. `workspace` as workspace_bytes() says.
void nvfp4_linear(const Nvfp4LinearPlan& plan, const Nvfp4LinearParams& params, void* workspace, cudaStream_t stream);

}  // namespace adallm::kernels
