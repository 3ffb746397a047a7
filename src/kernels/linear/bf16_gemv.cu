// BF16 GEMV (see bf16_gemv.h): mma.m16n8k16 bf16 × bf16 → fp32 with weights as A (16 rows × 16 k) and
// tokens as B (n = 8). Lane L (g = L / 4, t = L % 4) reads columns 16t .. 16t + 15 of each 64-column chunk
// for rows g and g + 8 and for token g of each group: step s (0-3) of the chunk takes its words 2s, 2s + 1
// as the MMA's k = 2t, 2t + 1 and 2t + 8, 2t + 9, and the activations follow the same order, so the four
// steps sum every column of the chunk exactly once.
#include "kernels/linear/bf16_gemv.h"

#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/linear/nvfp4_fragment.cuh"

namespace adallm::kernels {
namespace {

constexpr int kChunk = 64;  // columns per lane group step: 4 lanes × 16

// Two 16-byte words of 8 columns each starting at `at`, or zeros past `k`.
__device__ __forceinline__ void load16(const __nv_bfloat16* at, int64_t col, int64_t k, uint4& lo, uint4& hi, bool stream) {
  const uint4 zero = make_uint4(0, 0, 0, 0);
  if (stream) {
    lo = col < k ? __ldcs(reinterpret_cast<const uint4*>(at)) : zero;
    hi = col + 8 < k ? __ldcs(reinterpret_cast<const uint4*>(at + 8)) : zero;
  } else {
    lo = col < k ? __ldg(reinterpret_cast<const uint4*>(at)) : zero;
    hi = col + 8 < k ? __ldg(reinterpret_cast<const uint4*>(at + 8)) : zero;
  }
}

// One row tile (16 rows) per block; its kWarps warps split K in 64-column chunks and meet in shared memory.
// A pass covers kGroups groups of 8 tokens; every weight word feeds one MMA per group.
template <int kWarps, int kGroups, int kUnroll>
__global__ void __launch_bounds__(kWarps * 32) bf16_gemv_kernel(Bf16GemvParams p) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t row0 = static_cast<int64_t>(blockIdx.x) * 16;
  // Rows past n read the last row (their outputs are never stored).
  const int64_t r0 = row0 + g < p.n ? row0 + g : p.n - 1, r8 = row0 + g + 8 < p.n ? row0 + g + 8 : p.n - 1;
  const __nv_bfloat16* w0 = p.w + r0 * p.k + 16 * t;
  const __nv_bfloat16* w8 = p.w + r8 * p.k + 16 * t;
  const int64_t chunks = (p.k + kChunk - 1) / kChunk;
  const int64_t per_warp = (chunks + kWarps - 1) / kWarps;
  const int64_t first = warp * per_warp, last = first + per_warp < chunks ? first + per_warp : chunks;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Weights never depend on the previous kernel: the first step's come into L2 while it finishes.
#pragma unroll
  for (int u = 0; u < kUnroll; ++u) {
    if (first + u < last && (first + u) * kChunk + 16 * t < p.k) {
      asm volatile("prefetch.global.L2 [%0];" ::"l"(w0 + (first + u) * kChunk));
      asm volatile("prefetch.global.L2 [%0];" ::"l"(w8 + (first + u) * kChunk));
    }
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  // This lane's B column in group j is token 8j + g (token 0 again past the last: never stored).
  const __nv_bfloat16* x[kGroups];
#pragma unroll
  for (int j = 0; j < kGroups; ++j) x[j] = p.x + (8 * j + g < p.tokens ? 8 * j + g : 0) * p.x_stride + 16 * t;

  float c[kGroups][4] = {};
  for (int64_t chunk = first; chunk < last; chunk += kUnroll) {
    uint4 a[kUnroll][4], b[kUnroll][kGroups][2];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      // A chunk past this warp's share reads nothing (every column counts as past k).
      const int64_t col = chunk + u < last ? (chunk + u) * kChunk + 16 * t : p.k;
      const int64_t at = (chunk + u) * kChunk;
      load16(w0 + at, col, p.k, a[u][0], a[u][1], true);
      load16(w8 + at, col, p.k, a[u][2], a[u][3], true);
#pragma unroll
      for (int j = 0; j < kGroups; ++j) load16(x[j] + at, col, p.k, b[u][j][0], b[u][j][1], false);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const uint32_t r0w[8] = {a[u][0].x, a[u][0].y, a[u][0].z, a[u][0].w, a[u][1].x, a[u][1].y, a[u][1].z, a[u][1].w};
      const uint32_t r8w[8] = {a[u][2].x, a[u][2].y, a[u][2].z, a[u][2].w, a[u][3].x, a[u][3].y, a[u][3].z, a[u][3].w};
#pragma unroll
      for (int j = 0; j < kGroups; ++j) {
        const uint32_t xw[8] = {b[u][j][0].x, b[u][j][0].y, b[u][j][0].z, b[u][j][0].w,
                                b[u][j][1].x, b[u][j][1].y, b[u][j][1].z, b[u][j][1].w};
#pragma unroll
        for (int s = 0; s < 4; ++s) {
          nvfp4::mma_bf16(c[j], r0w[2 * s], r8w[2 * s], r0w[2 * s + 1], r8w[2 * s + 1], xw[2 * s], xw[2 * s + 1]);
        }
      }
    }
  }
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
  // The warps' split-K sums, then warp j stores group j: c0, c1 are row g for tokens 8j + 2t, 8j + 2t + 1;
  // c2, c3 row g + 8.
  __shared__ float4 partial[kWarps][kGroups][32];
#pragma unroll
  for (int j = 0; j < kGroups; ++j) partial[warp][j][lane] = make_float4(c[j][0], c[j][1], c[j][2], c[j][3]);
  __syncthreads();
  if (warp >= kGroups) return;
  float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int w = 0; w < kWarps; ++w) {
    const float4 v = partial[w][warp][lane];
    sum[0] += v.x, sum[1] += v.y, sum[2] += v.z, sum[3] += v.w;
  }
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = row0 + g + (i >= 2 ? 8 : 0);
    const int64_t token = 8 * warp + 2 * t + i % 2;
    if (row >= p.n || token >= p.tokens) continue;
    if (p.out_bf16 != nullptr) {
      p.out_bf16[token * p.out_stride + row] = __float2bfloat16_rn(sum[i]);
    } else {
      p.out[token * p.out_stride + row] = sum[i];
    }
  }
}

bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

std::string refusal(const Bf16GemvParams& p) {
  if (p.w == nullptr || p.x == nullptr) return "null weight or activations";
  if ((p.out == nullptr) == (p.out_bf16 == nullptr)) return "needs exactly one of out and out_bf16";
  if (p.n <= 0 || p.k <= 0 || p.k % 8 != 0) return "n " + std::to_string(p.n) + ", k " + std::to_string(p.k) + " (k a positive multiple of 8)";
  if (p.tokens < 1 || p.tokens > kBf16GemvMaxTokens) {
    return std::to_string(p.tokens) + " tokens (1 to " + std::to_string(kBf16GemvMaxTokens) + ")";
  }
  if (!aligned16(p.w) || !aligned16(p.x) || p.x_stride % 8 != 0 || p.x_stride < p.k) {
    return "weights and activation rows must start 16-byte aligned (x_stride " + std::to_string(p.x_stride) + ")";
  }
  if (p.out_stride < p.n) return "out_stride " + std::to_string(p.out_stride) + " below n " + std::to_string(p.n);
  if ((p.n + 15) / 16 > 0x7FFFFFFF) return "too many rows";
  return {};
}

}  // namespace

bool bf16_gemv_supported(const Bf16GemvParams& params) { return refusal(params).empty(); }

void bf16_gemv(const Bf16GemvParams& p, cudaStream_t stream) {
  if (const std::string why = refusal(p); !why.empty()) throw Error("bf16 GEMV: " + why);
  const int64_t tiles = (p.n + 15) / 16;
  const int groups = p.tokens > 16 ? 4 : (p.tokens > 8 ? 2 : 1);
  // Few row tiles (a router: 8) get 16 warps each so that more loads are in flight per block.
  const bool wide = tiles <= multiprocessor_count();
  void (*kernel)(Bf16GemvParams) = nullptr;
  if (groups == 1) {
    kernel = wide ? bf16_gemv_kernel<16, 1, 2> : bf16_gemv_kernel<8, 1, 2>;
  } else if (groups == 2) {
    kernel = wide ? bf16_gemv_kernel<16, 2, 2> : bf16_gemv_kernel<8, 2, 2>;
  } else {
    kernel = wide ? bf16_gemv_kernel<16, 4, 2> : bf16_gemv_kernel<8, 4, 2>;
  }
  launch_kernel("bf16 GEMV", kernel, dim3(static_cast<unsigned>(tiles)), dim3((wide ? 16 : 8) * 32), 0, stream,
                p.dependent_launch, p);
}

}  // namespace adallm::kernels
