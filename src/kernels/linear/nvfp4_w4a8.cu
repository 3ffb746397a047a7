// W4A8 NVFP4 GEMM on mma.sync e4m3 (see nvfp4_w4a8.h).
//
// A block computes 128 weight rows × 64 tokens with eight warps; warp w owns row tile w and all 64 tokens
// (8 groups of 8; 128 tokens per warp would keep too many MMA results live for the registers). Per
// 64-column k tile: cp.async brings the tokens' 64 e4m3 bytes into a 4-stage ring (16-byte chunks swizzled
// by row so that ldmatrix reads are conflict-free); each lane decodes its 16-byte word into the A fragments
// of the tile's four k16 steps (one step per 16-column block) and its 8 scale bytes into fp32; one
// ldmatrix.x4 per token group gives the B fragments of all four steps.
#include "kernels/linear/nvfp4_w4a8.h"

#include <cuda_fp8.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/linear/async_copy.cuh"
#include "kernels/linear/nvfp4_fragment.cuh"

namespace adallm::kernels {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowTilesPerBlock = kWarps;
constexpr int kTokensPerBlock = 64;
[[maybe_unused]] constexpr int kGroups = kTokensPerBlock / 8;  // unused in passes below sm_89
constexpr int kStages = 4;
constexpr int kStageBytes = kTokensPerBlock * 64;  // kTokensPerBlock tokens × 64 e4m3
constexpr int kSmemBytes = kStages * kStageBytes;
[[maybe_unused]] constexpr int kRecordWords = static_cast<int>(kNvfp4TileRecordBytes / 16);
constexpr float kE4m3Max = 448.0f;  // as quant::kFp8E4m3Max

int64_t padded_columns(int64_t k) { return (k + kNvfp4TileCols - 1) / kNvfp4TileCols * kNvfp4TileCols; }

// One block per token: the row's max |x| (and whether it is finite), then its codes.
__global__ void quantize_kernel(const __nv_bfloat16* __restrict__ x, int64_t x_stride, int64_t k, int64_t padded,
                                uint8_t* __restrict__ codes, int64_t codes_stride, float* __restrict__ scales) {
  const int64_t token = blockIdx.x;
  const __nv_bfloat16* row = x + token * x_stride;
  float amax = 0.0f;
  bool finite = true;
  for (int64_t c = 2 * threadIdx.x; c < k; c += 2 * blockDim.x) {
    const __nv_bfloat162 v = *reinterpret_cast<const __nv_bfloat162*>(row + c);
    const float a = fabsf(__low2float(v)), b = fabsf(__high2float(v));
    finite = finite && isfinite(a) && isfinite(b);
    amax = fmaxf(amax, fmaxf(a, b));
  }
  for (int offset = 16; offset > 0; offset /= 2) amax = fmaxf(amax, __shfl_xor_sync(0xFFFFFFFFu, amax, offset));
  __shared__ float warp_max[32];
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = amax;
  finite = __syncthreads_and(finite);
  amax = 0.0f;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) amax = fmaxf(amax, warp_max[w]);
  const float scale = !finite ? __int_as_float(0x7FC00000) : (amax == 0.0f ? 0.0f : amax / kE4m3Max);
  if (threadIdx.x == 0) scales[token] = scale;
  uint8_t* out = codes + token * codes_stride;
  for (int64_t c = 4 * threadIdx.x; c < padded; c += 4 * blockDim.x) {
    uint32_t four = 0;
    if (c < k && scale != 0.0f) {  // k is a multiple of 16: c … c + 3 lie on one side of it
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float v = __bfloat162float(row[c + i]) / scale;
        four |= static_cast<uint32_t>(__nv_cvt_float_to_fp8(v, __NV_SATFINITE, __NV_E4M3)) << (8 * i);
      }
    }
    *reinterpret_cast<uint32_t*>(out + c) = four;
  }
}

using async::cp_async_16;
using async::cp_async_commit;
using async::cp_async_wait;

// Byte offset of 16-byte chunk `chunk` (0-3) of token row `row` in a stage.
[[maybe_unused]] __device__ __forceinline__ int stage_offset(int row, int chunk) { return row * 64 + ((chunk ^ ((row >> 1) & 3)) << 4); }

// c += s · (A · B) for one k16 step: the e4m3 × e4m3 MMA from zero into fp32, then its rows g (c0, c1) and
// g + 8 (c2, c3) scaled by their block scales into the totals. One asm block, so that the MMA's four
// results live only here (left to itself the compiler hoists every MMA of the tile ahead of the FFMAs and
// runs out of registers).
[[maybe_unused]] __device__ __forceinline__ void mma_e4m3_scaled(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t b0, float s_g,
                                                float s_g8) {
  asm volatile(
      "{\n.reg .f32 d0, d1, d2, d3;\n"
      "mma.sync.aligned.m16n8k16.row.col.f32.e4m3.e4m3.f32 {d0,d1,d2,d3}, {%4,%5}, {%6}, {%9,%9,%9,%9};\n"
      "fma.rn.f32 %0, %7, d0, %0;\n"
      "fma.rn.f32 %1, %7, d1, %1;\n"
      "fma.rn.f32 %2, %8, d2, %2;\n"
      "fma.rn.f32 %3, %8, d3, %3;\n}\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(b0), "f"(s_g), "f"(s_g8), "f"(0.0f));
}

// fp32 of an e5m3 scale byte (exponent E = exp + 16, no subnormals; 0 decodes to 2^-16, harmless: its
// block's codes are zero).
[[maybe_unused]] __device__ __forceinline__ float scale_value(uint32_t byte) { return __uint_as_float((byte << 20) + (111u << 23)); }

__global__ void __launch_bounds__(kThreads, 1)
    w4a8_kernel(Nvfp4LinearParams p, const uint8_t* __restrict__ xq, int64_t xq_stride, const float* __restrict__ xs) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  extern __shared__ __align__(16) uint8_t smem[];
  const uint32_t stages = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4;
  const int k_tiles = static_cast<int>(p.shape.k_tiles());
  const int64_t token0 = static_cast<int64_t>(blockIdx.x) * kTokensPerBlock;
  const int64_t rt = static_cast<int64_t>(blockIdx.y) * kRowTilesPerBlock + warp;
  const bool has_rows = rt < p.shape.row_tiles();
  // This warp's records (a padding warp reads row tile 0; its products are never stored).
  const uint4* const records = reinterpret_cast<const uint4*>(p.tiles) + (has_rows ? rt : 0) * k_tiles * kRecordWords;
  const auto issue = [&](int kt) {
    if (kt < k_tiles) {
#pragma unroll
      for (int index = tid; index < kStageBytes / 16; index += kThreads) {
        const int row = index / 4, chunk = index % 4;
        const int64_t token = token0 + row;
        const bool copy = token < p.tokens;
        const uint8_t* src = copy ? xq + token * xq_stride + kt * 64 + chunk * 16 : xq;
        cp_async_16(stages + (kt % kStages) * kStageBytes + stage_offset(row, chunk), src, copy);
      }
    }
    cp_async_commit();  // an empty group past the end keeps the wait counts uniform
  };
  struct Raw {
    uint4 codes;
    uint2 scales;  // row g's four block scales, then row g + 8's
  };
  const auto load = [&](int kt, Raw& r) {
    const uint4* rec = records + (kt < k_tiles ? kt : k_tiles - 1) * kRecordWords;
    r.codes = __ldg(rec + lane);
    r.scales = __ldg(reinterpret_cast<const uint2*>(rec + kNvfp4TileBytes / 16) + g);
  };

  float c[kGroups][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  Raw raw[2];
  load(0, raw[0]);
  load(1, raw[1]);
  const auto step = [&](int kt, Raw& r) {
    cp_async_wait<kStages - 2>();  // tile kt has landed (this thread's part) ...
    __syncthreads();               // ... everyone's, and stage (kt - 1) % kStages is free again
    issue(kt + kStages - 1);
    uint32_t a[4][2];
    float sg[4], sg8[4];
    const uint32_t q[4] = {r.codes.x, r.codes.y, r.codes.z, r.codes.w};
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
      a[kk][0] = q[kk] & 0x9C9C9C9Cu;
      a[kk][1] = ((q[kk] << 1) & 0x80808080u) | ((q[kk] << 3) & 0x18181818u) | ((q[kk] >> 3) & 0x04040404u);
      sg[kk] = scale_value((r.scales.x >> (8 * kk)) & 0xFF);
      sg8[kk] = scale_value((r.scales.y >> (8 * kk)) & 0xFF);
    }
    load(kt + 2, r);
    const uint32_t stage = stages + (kt % kStages) * kStageBytes;
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
      // Matrix m of the x4 load is chunk m (k step m) of tokens 8j … 8j + 7; lane L gives row L % 8 of
      // matrix L / 8 and receives, per matrix, token 8j + g's bytes 4t … 4t + 3: the B fragment.
      uint32_t b[4];
      const uint32_t address = stage + stage_offset(8 * j + lane % 8, lane / 8);
      asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                   : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
                   : "r"(address));
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) mma_e4m3_scaled(c[j], a[kk][0], a[kk][1], b[kk], sg[kk], sg8[kk]);
    }
  };
  for (int kt = 0; kt < k_tiles; kt += 2) {
    step(kt, raw[0]);
    if (kt + 1 < k_tiles) step(kt + 1, raw[1]);
  }
  cp_async_wait<0>();
  if (!has_rows) return;

  // The decode's 2^-6 returns with each token's scale and each row's weight_scale_2.
  nvfp4::store_warp_tile(p, c, rt, token0, lane, 64.0f, [&](int64_t token) { return xs[token]; });
#else
  __trap();  // code for a GPU older than sm_89 running on a newer one: fail loudly, never output nothing
#endif
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("nvfp4 W4A8 GEMM: " + what);
}

}  // namespace

bool fp8_mma_supported() {
  int device = 0, major = 0, minor = 0;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  return major * 10 + minor >= 89;
}

void fp8_quantize_activations(const __nv_bfloat16* x, int64_t x_stride, int64_t tokens, int64_t k, uint8_t* codes,
                              int64_t codes_stride, float* scales, cudaStream_t stream) {
  const int64_t padded = padded_columns(k);
  if (!(k > 0 && k % 16 == 0 && tokens >= 0)) throw Error("fp8 activation quantize: K must be a positive multiple of 16");
  if (!(x && codes && scales)) throw Error("fp8 activation quantize: null pointer");
  if (!(reinterpret_cast<uintptr_t>(x) % 4 == 0 && x_stride % 2 == 0 && x_stride >= k)) {
    throw Error("fp8 activation quantize: activations need 4-byte alignment and an even row stride >= K");
  }
  if (!(reinterpret_cast<uintptr_t>(codes) % 16 == 0 && codes_stride % 16 == 0 && codes_stride >= padded)) {
    throw Error("fp8 activation quantize: codes need 16-byte aligned rows of at least K rounded up to 64 (" +
                std::to_string(padded) + ")");
  }
  if (tokens == 0) return;
  quantize_kernel<<<static_cast<unsigned>(tokens), 256, 0, stream>>>(x, x_stride, k, padded, codes, codes_stride, scales);
  ADALLM_CUDA_CHECK_LAUNCH("fp8 activation quantize");
}

int64_t nvfp4_w4a8_workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens) {
  return tokens * padded_columns(shape.k) + (tokens * 4 + 15) / 16 * 16;
}

void nvfp4_gemm_w4a8(const Nvfp4LinearParams& p, void* workspace, cudaStream_t stream) {
  nvfp4_check_params(p, "nvfp4 W4A8 GEMM");
  require(!p.out_permuted, "writes its output in natural order only (out_permuted is the wgmma GEMM's)");
  require(!p.x_permuted && p.variant == 0, "takes activations in natural order and no variant");
  require(fp8_mma_supported(), "needs an sm_89 or newer GPU (FP8 tensor cores)");
  if (p.tokens == 0) return;
  require(workspace != nullptr && reinterpret_cast<uintptr_t>(workspace) % 16 == 0,
          "needs a 16-byte aligned workspace of nvfp4_w4a8_workspace_bytes()");
  const int64_t padded = padded_columns(p.shape.k);
  auto* codes = static_cast<uint8_t*>(workspace);
  auto* scales = reinterpret_cast<float*>(codes + p.tokens * padded);
  fp8_quantize_activations(p.x, p.x_stride, p.tokens, p.shape.k, codes, padded, scales, stream);
  const dim3 grid(static_cast<unsigned>((p.tokens + kTokensPerBlock - 1) / kTokensPerBlock),
                  static_cast<unsigned>((p.shape.row_tiles() + kRowTilesPerBlock - 1) / kRowTilesPerBlock));
  require(grid.y <= 65535, "weight has too many rows for one launch");
  w4a8_kernel<<<grid, kThreads, kSmemBytes, stream>>>(p, codes, padded, scales);
  ADALLM_CUDA_CHECK_LAUNCH("nvfp4 W4A8 GEMM");
}

}  // namespace adallm::kernels
