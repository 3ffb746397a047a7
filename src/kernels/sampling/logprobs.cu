// Log-probabilities of rows of logits (see logprobs.h). One block per row: a pass for the maximum (and
// whether the row is finite), a pass for Σ exp(x - max) in fp32, then the top entries: each thread keeps
// its own best top_n of the columns it strides over, sorted, and top_n rounds of a block-wide argmax over
// the threads' heads pick them in order (logit descending, id ascending).
#include "kernels/sampling/logprobs.h"

#include <cmath>
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 512;

// (value, id) ordered by value descending, then id ascending; id -1 is "none", behind everything.
struct Entry {
  float value;
  int32_t id;
};

__device__ __forceinline__ bool before(const Entry& a, const Entry& b) {
  if (b.id < 0) return a.id >= 0;
  if (a.id < 0) return false;
  return a.value > b.value || (a.value == b.value && a.id < b.id);
}

__device__ __forceinline__ Entry warp_best(Entry e) {
  for (int o = 16; o > 0; o >>= 1) {
    const Entry other{__shfl_xor_sync(0xffffffffu, e.value, o), __shfl_xor_sync(0xffffffffu, e.id, o)};
    if (before(other, e)) e = other;
  }
  return e;
}

__global__ void __launch_bounds__(kThreads) logprobs_kernel(const float* logits, int64_t stride, int64_t vocab,
                                                            const int32_t* ids, int top_n, float* chosen,
                                                            int32_t* top_ids, float* top_logprobs, int64_t top_stride) {
  pdl_begin();
  const int64_t r = blockIdx.x;
  const float* row = logits + r * stride;
  const float nan = __int_as_float(0x7fffffff);
  __shared__ Entry warp_heads[kThreads / 32];
  __shared__ float shared_max;
  __shared__ int shared_bad;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (threadIdx.x == 0) shared_bad = 0;

  float max = -INFINITY;
  bool bad = false;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const float v = row[i];
    if (!(v < INFINITY)) bad = true;  // NaN or +inf
    max = fmaxf(max, v);
  }
  max = warp_max(max);
  __syncthreads();  // shared_bad's reset is visible
  if (bad) atomicOr(&shared_bad, 1);
  if (lane == 0) warp_heads[warp].value = max;
  __syncthreads();
  if (threadIdx.x == 0) {
    float m = -INFINITY;
    for (int w = 0; w < kThreads / 32; ++w) m = fmaxf(m, warp_heads[w].value);
    shared_max = m;
  }
  __syncthreads();
  max = shared_max;
  if (shared_bad != 0 || max == -INFINITY) {
    if (threadIdx.x == 0) chosen[r] = nan;
    for (int j = static_cast<int>(threadIdx.x); j < top_n; j += kThreads) {
      top_ids[r * top_stride + j] = -1;
      top_logprobs[r * top_stride + j] = nan;
    }
    return;
  }

  float sum = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) sum += expf(row[i] - max);
  sum = block_sum<kThreads>(sum);
  const float lse = max + logf(sum);
  if (threadIdx.x == 0) {
    const int32_t id = ids[r];
    chosen[r] = id >= 0 && id < vocab ? row[id] - lse : nan;
  }
  if (top_n == 0) return;

  // This thread's best top_n, best first (insertion into a short sorted list).
  Entry mine[kMaxLogprobsTopN];
  for (int j = 0; j < kMaxLogprobsTopN; ++j) mine[j] = Entry{-INFINITY, -1};
  for (int64_t i = threadIdx.x; i < vocab; i += kThreads) {
    const Entry e{row[i], static_cast<int32_t>(i)};
    if (!before(e, mine[top_n - 1])) continue;
    int j = top_n - 1;
    while (j > 0 && before(e, mine[j - 1])) {
      mine[j] = mine[j - 1];
      --j;
    }
    mine[j] = e;
  }
  int head = 0;
  for (int k = 0; k < top_n; ++k) {
    const Entry best = warp_best(head < top_n ? mine[head] : Entry{-INFINITY, -1});
    __syncthreads();  // the previous round's readers are done with warp_heads
    if (lane == 0) warp_heads[warp] = best;
    __syncthreads();
    Entry winner = warp_heads[0];
    for (int w = 1; w < kThreads / 32; ++w) {
      if (before(warp_heads[w], winner)) winner = warp_heads[w];
    }
    if (head < top_n && winner.id >= 0 && mine[head].id == winner.id) ++head;  // ids are unique: one owner
    if (threadIdx.x == 0) {
      top_ids[r * top_stride + k] = winner.id;
      top_logprobs[r * top_stride + k] = winner.id >= 0 ? winner.value - lse : nan;
    }
  }
}

}  // namespace

void logprobs_rows(const float* logits, int64_t stride, int64_t rows, int64_t vocab, const int32_t* ids, int top_n,
                   float* chosen, int32_t* top_ids, float* top_logprobs, int64_t top_stride, cudaStream_t stream) {
  if (rows < 0 || vocab <= 0 || top_n < 0 || top_n > kMaxLogprobsTopN || stride < vocab || top_stride < top_n) {
    throw Error("logprobs kernel: bad shape: " + std::to_string(rows) + " rows of " + std::to_string(vocab) +
                " logits, top_n " + std::to_string(top_n));
  }
  if (rows == 0) return;
  if (!logits || !ids || !chosen || (top_n > 0 && (!top_ids || !top_logprobs))) throw Error("logprobs kernel: null pointer");
  launch_dependent("logprobs", logprobs_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), 0, stream, logits,
                   stride, vocab, ids, top_n, chosen, top_ids, top_logprobs, top_stride);
  ADALLM_CUDA_CHECK_LAUNCH("logprobs");
}

}  // namespace adallm::kernels
