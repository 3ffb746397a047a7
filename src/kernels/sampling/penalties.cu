// The repetition / frequency / presence penalties of sample.h, applied to rows of logits in place before
// sampling. Kept apart from the selection kernel: it touches only the listed tokens of a row.
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/sampling/sample.h"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 1024;

// One block per row with penalties; the scratch counts hold an output token's occurrences and, in bit
// 30, whether it is in the prompt. The thread that takes a token's count back to zero applies its
// penalties, once per distinct token.
__global__ void __launch_bounds__(kThreads)
    penalty_kernel(float* __restrict__ logits, int64_t stride, int64_t vocab, const SampleRowParams* __restrict__ params,
                   const int32_t* __restrict__ tokens, int32_t* __restrict__ counts) {
  pdl_begin();
  const SampleRowParams p = params[blockIdx.x];
  const int n = p.prompt_count + p.output_count;
  if (n == 0) return;
  float* x = logits + static_cast<int64_t>(blockIdx.x) * stride;
  int32_t* c = counts + static_cast<int64_t>(blockIdx.x) * vocab;
  const int32_t* list = tokens + p.tokens_begin;
  constexpr int kInPrompt = 1 << 30;
  for (int j = threadIdx.x; j < n; j += kThreads) {
    if (j < p.prompt_count) {
      atomicOr(&c[list[j]], kInPrompt);
    } else {
      atomicAdd(&c[list[j]], 1);
    }
  }
  __syncthreads();
  for (int j = threadIdx.x; j < n; j += kThreads) {
    const int32_t token = list[j];
    const int v = atomicExch(&c[token], 0);
    if (v == 0) continue;
    float logit = x[token];
    if (p.repetition_penalty != 1.0f) logit = logit > 0.0f ? logit / p.repetition_penalty : logit * p.repetition_penalty;
    const int occurrences = v & (kInPrompt - 1);
    if (occurrences > 0) logit -= p.frequency_penalty * static_cast<float>(occurrences) + p.presence_penalty;
    x[token] = logit;
  }
}

}  // namespace

void apply_penalties(float* logits, int64_t stride, int64_t rows, int64_t vocab, const SampleRowParams* params,
                     const int32_t* tokens, int32_t* counts, cudaStream_t stream) {
  if (rows <= 0) return;
  launch_dependent("apply_penalties", penalty_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream,
                   logits, stride, vocab, params, tokens, counts);
}

}  // namespace adallm::kernels
