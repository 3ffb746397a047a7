// RMSNorm (+ residual add) kernels; see rms_norm.h.
#include "kernels/norm/rms_norm.h"

#include <cuda_bf16.h>

#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 256;
// Row values a thread keeps in registers between the sum of squares and the output (8 per chunk): rows of
// up to kThreads · 8 · kMaxChunks = 8192 columns take the register path; longer ones reread.
constexpr int kMaxChunks = 4;

template <typename T>
__device__ __forceinline__ float load(const T* p, int64_t i) {
  if constexpr (sizeof(T) == 2) {
    return __bfloat162float(p[i]);
  } else {
    return p[i];
  }
}

template <typename T>
__device__ __forceinline__ void store(T* p, int64_t i, float v) {
  if constexpr (sizeof(T) == 2) {
    p[i] = __float2bfloat16_rn(v);
  } else {
    p[i] = v;
  }
}

// 8 consecutive values at a 16-byte (bf16) or 32-byte (f32) aligned address.
template <typename T>
__device__ __forceinline__ void load8(const T* p, float* v) {
  if constexpr (sizeof(T) == 2) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    const uint32_t w[4] = {raw.x, raw.y, raw.z, raw.w};
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      v[2 * i] = __uint_as_float(w[i] << 16);
      v[2 * i + 1] = __uint_as_float(w[i] & 0xFFFF0000u);
    }
  } else {
    const float4 a = reinterpret_cast<const float4*>(p)[0], b = reinterpret_cast<const float4*>(p)[1];
    v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
  }
}

template <typename T>
__device__ __forceinline__ void store8(T* p, const float* v) {
  if constexpr (sizeof(T) == 2) {
    uint32_t w[4];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const __nv_bfloat162 b = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
      w[i] = *reinterpret_cast<const uint32_t*>(&b);
    }
    *reinterpret_cast<uint4*>(p) = make_uint4(w[0], w[1], w[2], w[3]);
  } else {
    reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
    reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
  }
}

// One block per row, 8 columns per thread per chunk, the row held in registers: one read of x (and the
// residual), one write of the output (and the residual).
template <typename InT, typename OutT>
__global__ void __launch_bounds__(kThreads) rms_norm_vector_kernel(RmsNormParams p) {
  pdl_begin();
  const int64_t row = blockIdx.x;
  const InT* __restrict__ x = static_cast<const InT*>(p.x) + row * p.x_stride;
  float* __restrict__ res = p.residual != nullptr ? p.residual + row * p.residual_stride : nullptr;
  const int64_t chunks = p.cols / 8;
  float v[kMaxChunks][8];
  float sum = 0.0f;
#pragma unroll
  for (int r = 0; r < kMaxChunks; ++r) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(r) * kThreads;
    if (c >= chunks) break;
    load8(x + 8 * c, v[r]);
    if (res != nullptr) {
      float old[8];
      load8(res + 8 * c, old);
#pragma unroll
      for (int i = 0; i < 8; ++i) v[r][i] += old[i];
      store8(res + 8 * c, v[r]);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) sum += v[r][i] * v[r][i];
  }
  // The weights do not depend on the sum: load them before the reduction's barriers.
  float w[kMaxChunks][8];
#pragma unroll
  for (int r = 0; r < kMaxChunks; ++r) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(r) * kThreads;
    if (c >= chunks) break;
    load8(p.weight + 8 * c, w[r]);
  }
  sum = block_sum<kThreads>(sum);
  const float inv = 1.0f / sqrtf(sum / static_cast<float>(p.cols) + p.eps);
  OutT* __restrict__ out = static_cast<OutT*>(p.out) + row * p.out_stride;
#pragma unroll
  for (int r = 0; r < kMaxChunks; ++r) {
    const int64_t c = threadIdx.x + static_cast<int64_t>(r) * kThreads;
    if (c >= chunks) break;
#pragma unroll
    for (int i = 0; i < 8; ++i) v[r][i] = v[r][i] * inv * (p.gemma ? 1.0f + w[r][i] : w[r][i]);
    store8(out + 8 * c, v[r]);
  }
}

// Any shape and alignment: the scalar form, rereading the row for the output.
template <typename InT, typename OutT>
__global__ void __launch_bounds__(kThreads) rms_norm_kernel(RmsNormParams p) {
  pdl_begin();
  const int64_t row = blockIdx.x;
  const InT* x = static_cast<const InT*>(p.x) + row * p.x_stride;
  float* res = p.residual != nullptr ? p.residual + row * p.residual_stride : nullptr;
  float sum = 0.0f;
  for (int64_t c = threadIdx.x; c < p.cols; c += kThreads) {
    float v = load(x, c);
    if (res != nullptr) {
      v += res[c];
      res[c] = v;
    }
    sum += v * v;
  }
  sum = block_sum<kThreads>(sum);
  const float inv = 1.0f / sqrtf(sum / static_cast<float>(p.cols) + p.eps);
  auto* out = static_cast<OutT*>(p.out) + row * p.out_stride;
  // Each thread rereads only the values it wrote itself (or x at its own columns): no barrier needed.
  for (int64_t c = threadIdx.x; c < p.cols; c += kThreads) {
    const float v = res != nullptr ? res[c] : load(x, c);
    const float w = p.gemma ? 1.0f + p.weight[c] : p.weight[c];
    store(out, c, v * inv * w);
  }
}

// One block per row: warp 0 sums the partials as the GEMV does (lanes striding them, then warp_sum's tree).
__global__ void __launch_bounds__(kThreads) normalize_rows_kernel(NormalizeRowsParams p) {
  pdl_begin();
  __shared__ float inv_shared;
  const int64_t row = blockIdx.x;
  if (threadIdx.x < 32) {
    const float* partials = p.partials + row * p.partials_stride;
    float sum = 0.0f;
    for (int i = static_cast<int>(threadIdx.x); i < p.partials_count; i += 32) sum += partials[i];
    sum = warp_sum(sum);
    if (threadIdx.x == 0) inv_shared = 1.0f / sqrtf(sum / static_cast<float>(p.cols) + p.eps);
  }
  __syncthreads();
  const float inv = inv_shared;
  const auto* values = static_cast<const __nv_bfloat16*>(p.values) + row * p.values_stride;
  auto* out = static_cast<__nv_bfloat16*>(p.out) + row * p.out_stride;
  for (int64_t c = threadIdx.x; c < p.cols; c += kThreads) out[c] = __float2bfloat16_rn(__bfloat162float(values[c]) * inv);
}

bool aligned_rows(const void* base, int64_t stride, size_t elem) {
  return reinterpret_cast<uintptr_t>(base) % 32 == 0 && (stride * static_cast<int64_t>(elem)) % 32 == 0;
}

template <typename InT, typename OutT>
void launch_typed(const RmsNormParams& p, cudaStream_t stream) {
  const bool vector = p.cols % 8 == 0 && p.cols / 8 <= int64_t{kThreads} * kMaxChunks &&
                      aligned_rows(p.x, p.x_stride, sizeof(InT)) && aligned_rows(p.out, p.out_stride, sizeof(OutT)) &&
                      aligned_rows(p.weight, 0, 4) &&
                      (p.residual == nullptr || aligned_rows(p.residual, p.residual_stride, 4));
  if (vector) {
    launch_dependent("rms_norm", rms_norm_vector_kernel<InT, OutT>, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0,
                     stream, p);
  } else {
    launch_dependent("rms_norm", rms_norm_kernel<InT, OutT>, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0,
                     stream, p);
  }
}

template <typename InT>
void launch(const RmsNormParams& p, cudaStream_t stream) {
  if (p.out_dtype == DType::BF16) {
    launch_typed<InT, __nv_bfloat16>(p, stream);
  } else {
    launch_typed<InT, float>(p, stream);
  }
}

}  // namespace

void normalize_rows(const NormalizeRowsParams& p, cudaStream_t stream) {
  if (p.rows < 0 || p.cols <= 0 || p.partials_count <= 0 || p.partials_stride < p.partials_count) {
    throw Error("normalize_rows kernel: bad shape [" + std::to_string(p.rows) + ", " + std::to_string(p.cols) + "] with " +
                std::to_string(p.partials_count) + " partials");
  }
  if (!p.values || !p.partials || !p.out) throw Error("normalize_rows kernel: null pointer");
  if (p.rows == 0) return;
  launch_dependent("normalize_rows", normalize_rows_kernel, dim3(static_cast<unsigned>(p.rows)), dim3(kThreads), 0, stream, p);
  ADALLM_CUDA_CHECK_LAUNCH("normalize_rows");
}

void rms_norm(const RmsNormParams& p, cudaStream_t stream) {
  const auto bad = [](const std::string& what) { throw Error("rms_norm kernel: " + what); };
  if (p.rows < 0 || p.cols <= 0) bad("bad shape [" + std::to_string(p.rows) + ", " + std::to_string(p.cols) + "]");
  if (p.out_dtype != DType::BF16 && p.out_dtype != DType::F32) bad("out must be BF16 or F32");
  if (p.x_dtype != DType::BF16 && p.x_dtype != DType::F32) bad("x must be BF16 or F32");
  if (!p.x || !p.weight || !p.out) bad("null pointer");
  if (p.rows == 0) return;
  if (p.x_dtype == DType::F32) {
    launch<float>(p, stream);
  } else {
    launch<__nv_bfloat16>(p, stream);
  }
  ADALLM_CUDA_CHECK_LAUNCH("rms_norm");
}

}  // namespace adallm::kernels
