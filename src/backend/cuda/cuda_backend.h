// The CUDA backend: every Backend op on one GPU, on one stream, with weights resident in device memory
// (NVFP4 weights repacked once at load into the layout of kernels/linear) and bf16 activations around an
// fp32 residual stream. The kernel plan is chosen once at construction and logged.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "kernels/linear/nvfp4_linear.h"

namespace adallm::backend {

struct CudaOptions {
  int device = 0;
  kernels::LinearPath linear_path = kernels::LinearPath::automatic;
  // Fold the blocks' RMSNorms into the NVFP4 GEMV's epilogues at decode sizes (linear_residual_norm);
  // off, every norm is its own kernel — for benchmarks comparing the two.
  bool fold_norms = true;
  // Warps per decode-attention block: 0 chooses per launch, 4 or 16 force one shape (benchmarks).
  int decode_attention_warps = 0;
};

// Throws adallm::Error when the device is missing or this binary holds no code for it.
std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options = {});

// GPU time per kind of op, measured with CUDA events around every op while profiling is on (benchmarks:
// the events cost a little host time per op). Linear layers are told apart by their module ("linear
// q/k/v", "linear down", "lm_head", ...).
struct OpTime {
  std::string op;
  int64_t calls = 0;
  double gpu_ms = 0.0;
  double host_ms = 0.0;  // time the host spent issuing the op (checks, launches)
};
// `backend` must be a CUDA backend (throws adallm::Error otherwise).
void set_op_profiling(Backend& backend, bool on);
// The times since profiling was turned on or last taken, most expensive first; waits for the GPU.
std::vector<OpTime> take_op_profile(Backend& backend);

}  // namespace adallm::backend
