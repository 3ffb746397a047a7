// q/k norm + RoPE + KV write; see qk_norm_rope_kv_write.h. One warp per (token, head), kWarps heads of
// a token per block, so that a single decode token still spreads over several SMs; a head is staged in shared memory because RoPE pairs dimension i with i + head_dim / 2, which
// another lane holds. The arithmetic is the CPU reference's (fp32, accurate cosf/sinf, true division by
// the fp8 scale, round-to-nearest-even conversions).
#include "kernels/rope/qk_norm_rope_kv_write.h"

#include <cuda_fp8.h>

#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace adallm::kernels {
namespace {

constexpr int kWarps = 4;

__device__ void store_kv(void* cache, bool fp8, float scale, int64_t index, float v) {
  if (fp8) {
    static_cast<__nv_fp8_storage_t*>(cache)[index] = __nv_cvt_float_to_fp8(v / scale, __NV_SATFINITE, __NV_E4M3);
  } else {
    static_cast<__nv_bfloat16*>(cache)[index] = __float2bfloat16_rn(v);
  }
}

__global__ void __launch_bounds__(kWarps * 32) qk_norm_rope_kv_kernel(QkNormRopeKvParams p) {
  __shared__ float head[kWarps][kMaxHeadDim];
  pdl_begin();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t t = blockIdx.x;
  const int h = blockIdx.y * kWarps + warp;
  if (h >= p.heads + 2 * p.kv_heads) return;
  const int d = p.head_dim, half = d / 2;
  __nv_bfloat16* row = p.qkv + t * p.qkv_stride;
  const float position = static_cast<float>(p.positions[t]);
  const int64_t slot = p.slot_mapping[t];
  float* x = head[warp];
  {
    __nv_bfloat16* src = row + static_cast<int64_t>(h) * d;
    if (h >= p.heads + p.kv_heads) {  // v: straight into the cache
      const int64_t base = (slot * p.kv_heads + (h - p.heads - p.kv_heads)) * d;
      for (int i = lane; i < d; i += 32) store_kv(p.v_cache, p.fp8, p.v_scale, base + i, __bfloat162float(src[i]));
      return;
    }
    // Every global load is issued before the first use, so that the warp waits for memory once.
    constexpr int kPerLane = kMaxHeadDim / 32;
    const float* w = h < p.heads ? p.q_norm : p.k_norm;
    float xv[kPerLane], wv[kPerLane], freq[kPerLane];
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int i = lane + 32 * r;
      if (i >= d) break;
      xv[r] = __bfloat162float(src[i]);
      wv[r] = w != nullptr ? w[i] : 1.0f;
      freq[r] = p.inv_freq[i < half ? i : i - half];
    }
    float inv = 1.0f;
    if (w != nullptr) {
      float sum = 0.0f;
#pragma unroll
      for (int r = 0; r < kPerLane; ++r) {
        if (lane + 32 * r >= d) break;
        sum += xv[r] * xv[r];
      }
      inv = 1.0f / sqrtf(warp_sum(sum) / static_cast<float>(d) + p.eps);
    }
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int i = lane + 32 * r;
      if (i >= d) break;
      if (w != nullptr) xv[r] = p.gemma_norm ? xv[r] * inv * (1.0f + wv[r]) : xv[r] * inv * wv[r];
      x[i] = xv[r];
    }
    __syncwarp();
    const int64_t base = (slot * p.kv_heads + (h - p.heads)) * d;
#pragma unroll
    for (int r = 0; r < kPerLane; ++r) {
      const int i = lane + 32 * r;
      if (i >= d) break;
      float s, c;
      sincosf(position * freq[r], &s, &c);  // the same values as sinf and cosf, one range reduction
      c *= p.attention_factor;
      s *= p.attention_factor;
      const float rotated = i < half ? xv[r] * c - x[i + half] * s : xv[r] * c + x[i - half] * s;
      src[i] = __float2bfloat16_rn(rotated);
      if (h >= p.heads) store_kv(p.k_cache, p.fp8, p.k_scale, base + i, rotated);
    }
  }
}

}  // namespace

void qk_norm_rope_kv_write(const QkNormRopeKvParams& p, cudaStream_t stream) {
  const auto bad = [](const std::string& what) { throw Error("qk_norm_rope_kv_write kernel: " + what); };
  if (p.head_dim <= 0 || p.head_dim % 2 != 0 || p.head_dim > kMaxHeadDim) {
    bad("head_dim " + std::to_string(p.head_dim) + " must be even and at most " + std::to_string(kMaxHeadDim));
  }
  if (p.heads <= 0 || p.kv_heads <= 0) bad("no heads");
  if (!p.qkv || !p.inv_freq || !p.positions || !p.slot_mapping || !p.k_cache || !p.v_cache) bad("null pointer");
  if (p.tokens <= 0) return;
  if (p.tokens > 0x7FFFFFFF) bad("too many tokens for one launch");
  const dim3 grid(static_cast<unsigned>(p.tokens), static_cast<unsigned>((p.heads + 2 * p.kv_heads + kWarps - 1) / kWarps));
  launch_dependent("qk_norm_rope_kv_write", qk_norm_rope_kv_kernel, grid, dim3(kWarps * 32), 0, stream, p);
  ADALLM_CUDA_CHECK_LAUNCH("qk_norm_rope_kv_write");
}

}  // namespace adallm::kernels
