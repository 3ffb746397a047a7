// MoE routing and combine kernels; see moe.h.
#include "kernels/moe/moe.h"

#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace adallm::kernels {
namespace {

constexpr int kPerLane = kMoeMaxExperts / 32;

// One warp per token.
__global__ void route_kernel(const float* __restrict__ logits, int64_t logits_stride, int64_t tokens, int num_experts,
                             int top_k, bool renormalize, int32_t* __restrict__ ids, float* __restrict__ weights) {
  const int64_t t = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  pdl_begin();
  if (t >= tokens) return;
  const float* row = logits + t * logits_stride;
  float prob[kPerLane];
  float max_logit = -INFINITY;
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int e = lane + 32 * r;
    prob[r] = e < num_experts ? row[e] : -INFINITY;
    max_logit = fmaxf(max_logit, prob[r]);
  }
  max_logit = warp_max(max_logit);
  float sum = 0.0f;
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) {
    const int e = lane + 32 * r;
    prob[r] = e < num_experts ? expf(prob[r] - max_logit) : 0.0f;
    sum += prob[r];
  }
  sum = warp_sum(sum);
#pragma unroll
  for (int r = 0; r < kPerLane; ++r) prob[r] = lane + 32 * r < num_experts ? prob[r] / sum : -1.0f;

  float chosen = 0.0f, top_sum = 0.0f;
  int chosen_id = 0;
  for (int k = 0; k < top_k; ++k) {
    float best = -1.0f;
    int best_id = num_experts;
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      if (prob[r] > best) {  // strict: the lower index wins ties within a lane
        best = prob[r];
        best_id = lane + 32 * r;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      const float other = __shfl_xor_sync(0xffffffffu, best, o);
      const int other_id = __shfl_xor_sync(0xffffffffu, best_id, o);
      if (other > best || (other == best && other_id < best_id)) {
        best = other;
        best_id = other_id;
      }
    }
    if (best_id % 32 == lane) prob[best_id / 32] = -1.0f;  // taken
    if (lane == k) {
      chosen = best;
      chosen_id = best_id;
    }
    top_sum += best;
  }
  if (lane < top_k) {
    ids[t * top_k + lane] = chosen_id;
    weights[t * top_k + lane] = renormalize ? chosen / top_sum : chosen;
  }
}

// A single block of kSortThreads threads: count each expert's pairs in shared memory, an exclusive scan
// (one warp, each lane a run of kPerLane experts) that also lists the active experts, then every pair takes
// the next row of its expert.
constexpr int kSortThreads = 1024;

__global__ void __launch_bounds__(kSortThreads) sort_kernel(const int32_t* __restrict__ ids, int pairs, int top_k,
                                                            int num_experts, MoeSortedPairs out) {
  __shared__ int count[kMoeMaxExperts];
  __shared__ int cursor[kMoeMaxExperts];
  pdl_begin();
  for (int e = threadIdx.x; e < num_experts; e += kSortThreads) count[e] = 0;
  __syncthreads();
  for (int i = threadIdx.x; i < pairs; i += kSortThreads) {
    const int e = ids[i];
    if (e >= 0 && e < num_experts) atomicAdd(&count[e], 1);
  }
  __syncthreads();
  if (threadIdx.x < 32) {
    const int lane = threadIdx.x, e0 = lane * kPerLane;
    int rows = 0, used = 0;
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int c = e0 + r < num_experts ? count[e0 + r] : 0;
      rows += c;
      used += c > 0 ? 1 : 0;
    }
    // Inclusive scans of both over the lanes, then this lane's run from its exclusive start.
    int rows_before = rows, used_before = used;
    for (int o = 1; o < 32; o <<= 1) {
      const int r = __shfl_up_sync(0xffffffffu, rows_before, o), u = __shfl_up_sync(0xffffffffu, used_before, o);
      if (lane >= o) rows_before += r, used_before += u;
    }
    rows_before -= rows, used_before -= used;
    for (int r = 0; r < kPerLane && e0 + r < num_experts; ++r) {
      const int c = count[e0 + r];
      out.offsets[e0 + r] = rows_before;
      cursor[e0 + r] = rows_before;
      if (c > 0 && used_before < out.slots) out.active[used_before++] = e0 + r;
      rows_before += c;
    }
    if (lane == 31) {
      out.offsets[num_experts] = rows_before;
      for (int y = used_before; y < out.slots; ++y) out.active[y] = -1;
    }
  }
  __syncthreads();
  for (int i = threadIdx.x; i < pairs; i += kSortThreads) {
    const int e = ids[i];
    int row = -1;
    if (e >= 0 && e < num_experts) {
      row = atomicAdd(&cursor[e], 1);
      out.row_token[row] = i / top_k;
    }
    out.pair_row[i] = row;
  }
}

__global__ void combine_kernel(const float* __restrict__ y, const int32_t* __restrict__ position,
                               const float* __restrict__ weights, int top_k, int64_t hidden,
                               __nv_bfloat16* __restrict__ out, int64_t out_stride) {
  const int64_t t = blockIdx.y;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  pdl_begin();
  if (c >= hidden) return;
  float sum = 0.0f;
  for (int k = 0; k < top_k; ++k) {
    const int64_t row = position != nullptr ? position[t * top_k + k] : t * top_k + k;
    if (row >= 0) sum += weights[t * top_k + k] * y[row * hidden + c];
  }
  out[t * out_stride + c] = __float2bfloat16_rn(sum);
}

}  // namespace

void moe_route(const float* router_logits, int64_t logits_stride, int64_t tokens, int num_experts, int top_k,
               bool renormalize, int32_t* topk_ids, float* topk_weights, cudaStream_t stream) {
  if (num_experts <= 0 || num_experts > kMoeMaxExperts || top_k <= 0 || top_k > num_experts || top_k > 32) {
    throw Error("moe_route kernel: " + std::to_string(num_experts) + " experts, top_k " + std::to_string(top_k) +
                " (at most " + std::to_string(kMoeMaxExperts) + " experts and top_k ≤ 32)");
  }
  if (tokens <= 0) return;
  constexpr int kWarps = 4;
  launch_dependent("moe_route", route_kernel, dim3(static_cast<unsigned>((tokens + kWarps - 1) / kWarps)), dim3(kWarps * 32), 0,
                   stream, router_logits, logits_stride, tokens, num_experts, top_k, renormalize, topk_ids, topk_weights);
}

void moe_sort_pairs(const int32_t* topk_ids, int64_t pairs, int top_k, int num_experts, const MoeSortedPairs& out,
                    cudaStream_t stream) {
  if (num_experts <= 0 || num_experts > kMoeMaxExperts || top_k <= 0) {
    throw Error("moe_sort_pairs kernel: " + std::to_string(num_experts) + " experts (at most " +
                std::to_string(kMoeMaxExperts) + "), top_k " + std::to_string(top_k));
  }
  if (pairs < 0 || pairs > (int64_t{1} << 30)) throw Error("moe_sort_pairs kernel: " + std::to_string(pairs) + " pairs");
  if (topk_ids == nullptr || out.offsets == nullptr || out.active == nullptr || out.row_token == nullptr ||
      out.pair_row == nullptr) {
    throw Error("moe_sort_pairs kernel: a null routing or output array");
  }
  if (out.slots < 0 || out.slots > num_experts) {
    throw Error("moe_sort_pairs kernel: " + std::to_string(out.slots) + " active slots for " + std::to_string(num_experts) + " experts");
  }
  launch_dependent("moe_sort_pairs", sort_kernel, dim3(1), dim3(kSortThreads), 0, stream, topk_ids,
                   static_cast<int>(pairs), top_k, num_experts, out);
}

void moe_combine(const float* y, const int32_t* position, const float* topk_weights, int64_t tokens, int top_k,
                 int64_t hidden, __nv_bfloat16* out, int64_t out_stride, cudaStream_t stream) {
  if (tokens <= 0) return;
  if (tokens > 65535) throw Error("moe_combine kernel: more than 65535 tokens in one launch");
  constexpr int kThreads = 256;
  const dim3 grid(static_cast<unsigned>((hidden + kThreads - 1) / kThreads), static_cast<unsigned>(tokens));
  launch_dependent("moe_combine", combine_kernel, grid, dim3(kThreads), 0, stream, y, position, topk_weights, top_k, hidden,
                   out, out_stride);
}

}  // namespace adallm::kernels
