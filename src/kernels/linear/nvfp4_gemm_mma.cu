// NVFP4 prefill GEMM for sm_80 and newer on mma.sync (see nvfp4_gemm.h): the path for Ampere and Ada,
// which have no wgmma. W4A16: weights decoded exactly into the bf16 A fragments the GEMV uses, bf16
// activations, fp32 accumulation.
//
// A block computes 128 weight rows × 128 tokens with eight warps; warp w owns row tiles 2 (w / 2) and
// 2 (w / 2) + 1 (32 rows) and tokens 64 (w % 2) .. + 63 (8 groups of 8; 2 × 32 accumulators per thread).
// Per 64-column k tile a warp decodes the A fragments of its two row tiles (the raw words two tiles ahead
// in registers) and runs 64 MMAs against activations that cp.async brings through a 4-stage ring of
// shared memory in natural k order: lane (g, t) reads its block t's 16 columns of token 8j + g as two
// 16-byte loads, the tiles' k permutation then matching (as in the GEMV); each B fragment serves both row
// tiles, which halves the shared-memory reads per MMA against one row tile × 128 tokens per warp (10–12 %
// faster on the H100; decoding the next tile during the MMAs, with two fragment sets at 250 registers,
// was 3–4 % slower again). A row's 16-byte chunks are swizzled by the row's parity so that the two rows a
// quarter-warp reads fall in different banks.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/linear/async_copy.cuh"
#include "kernels/linear/nvfp4_fragment.cuh"
#include "kernels/linear/nvfp4_gemm.h"

namespace adallm::kernels {
namespace {

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowTilesPerBlock = kWarps;
constexpr int kTokensPerBlock = 128;
constexpr int kWarpTokens = 64;  // tokens per warp: half the block's
constexpr int kGroups = kWarpTokens / 8;
constexpr int kStages = 4;
constexpr int kStageBytes = kTokensPerBlock * 128;  // 128 tokens × 64 bf16
constexpr int kSmemBytes = kStages * kStageBytes;
constexpr int kChunksPerThread = kStageBytes / 16 / kThreads;

using async::cp_async_16;
using async::cp_async_commit;
using async::cp_async_wait;

__global__ void __launch_bounds__(kThreads, 1) mma_gemm_kernel(Nvfp4LinearParams p) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
  extern __shared__ __align__(16) uint8_t smem[];
  const uint32_t stages = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int k_tiles = static_cast<int>(p.shape.k_tiles());
  const int64_t token0 = static_cast<int64_t>(blockIdx.x) * kTokensPerBlock;
  const int warp_token0 = (warp % 2) * kWarpTokens;  // within the block
  const int64_t rt0 = static_cast<int64_t>(blockIdx.y) * kRowTilesPerBlock + 2 * (warp / 2), rt1 = rt0 + 1;
  const nvfp4::TileStream weights0(p, rt0, lane), weights1(p, rt1, lane);
  // Stage kt % kStages gets tile kt: thread tid copies chunks tid + 256 i (row = chunk / 8, chunk % 8 of
  // the row's 128 bytes); rows past the token count and columns past K are zero-filled.
  const auto issue = [&](int kt) {
    if (kt < k_tiles) {
#pragma unroll
      for (int i = 0; i < kChunksPerThread; ++i) {
        const int index = tid + kThreads * i, row = index / 8, chunk = index % 8;
        const int64_t token = token0 + row, column = static_cast<int64_t>(kt) * 64 + chunk * 8;
        const bool copy = token < p.tokens && column < p.shape.k;
        const __nv_bfloat16* src = copy ? p.x + token * p.x_stride + column : p.x;
        cp_async_16(stages + (kt % kStages) * kStageBytes + row * 128 + ((chunk ^ (row & 1)) << 4), src, copy);
      }
    }
    cp_async_commit();  // an empty group past the end keeps the wait counts uniform
  };

  float c0[kGroups][4] = {}, c1[kGroups][4] = {};
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) issue(s);
  nvfp4::WeightWord raw0[2], raw1[2];  // [row tile][k tile parity]
  weights0.load(0, raw0[0]);
  weights1.load(0, raw1[0]);
  weights0.load(1, raw0[1]);
  weights1.load(1, raw1[1]);
  const auto step = [&](int kt, nvfp4::WeightWord& w0, nvfp4::WeightWord& w1) {
    cp_async_wait<kStages - 2>();  // tile kt has landed (this thread's part) ...
    __syncthreads();               // ... everyone's, and stage (kt - 1) % kStages is free again
    issue(kt + kStages - 1);
    uint32_t a0[4][4], a1[4][4];
    nvfp4::decode_tile(w0, a0);
    nvfp4::decode_tile(w1, a1);
    weights0.load(kt + 2, w0);
    weights1.load(kt + 2, w1);
    const uint8_t* stage = smem + (kt % kStages) * kStageBytes;
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
      const int row = warp_token0 + 8 * j + g;
      const uint4 lo = *reinterpret_cast<const uint4*>(stage + row * 128 + (((2 * t) ^ (row & 1)) << 4));
      const uint4 hi = *reinterpret_cast<const uint4*>(stage + row * 128 + (((2 * t + 1) ^ (row & 1)) << 4));
      const uint32_t b[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
      for (int kk = 0; kk < 4; ++kk) {
        nvfp4::mma_bf16(c0[j], a0[kk][0], a0[kk][1], a0[kk][2], a0[kk][3], b[2 * kk], b[2 * kk + 1]);
        nvfp4::mma_bf16(c1[j], a1[kk][0], a1[kk][1], a1[kk][2], a1[kk][3], b[2 * kk], b[2 * kk + 1]);
      }
    }
  };
  for (int kt = 0; kt < k_tiles; kt += 2) {
    step(kt, raw0[0], raw1[0]);
    if (kt + 1 < k_tiles) step(kt + 1, raw0[1], raw1[1]);
  }
  cp_async_wait<0>();

  // The 2^63 of the decode returns with each row's weight_scale_2; rows past N are not stored.
  const auto one = [](int64_t) { return 1.0f; };
  nvfp4::store_warp_tile(p, c0, rt0, token0 + warp_token0, lane, nvfp4::kDecodeUnscale, one);
  nvfp4::store_warp_tile(p, c1, rt1, token0 + warp_token0, lane, nvfp4::kDecodeUnscale, one);
#endif
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("nvfp4 mma GEMM: " + what);
}

}  // namespace

void nvfp4_gemm_mma(const Nvfp4LinearParams& p, cudaStream_t stream) {
  nvfp4_check_params(p, "nvfp4 mma GEMM");
  require(!p.out_permuted, "writes its output in natural order only (out_permuted is the wgmma GEMM's)");
  require(reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_stride % 8 == 0,
          "activations must start 16-byte aligned with a row stride that is a multiple of 8 (got stride " +
              std::to_string(p.x_stride) + ")");
  int device = 0, major = 0;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  require(major >= 8, "needs an sm_80 or newer GPU");
  if (p.tokens == 0) return;
  const dim3 grid(static_cast<unsigned>((p.tokens + kTokensPerBlock - 1) / kTokensPerBlock),
                  static_cast<unsigned>((p.shape.row_tiles() + kRowTilesPerBlock - 1) / kRowTilesPerBlock));
  require(grid.y <= 65535, "weight has too many rows for one launch");
  static const bool configured = [] {
    ADALLM_CUDA_CHECK(cudaFuncSetAttribute(mma_gemm_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
    return true;
  }();
  (void)configured;
  mma_gemm_kernel<<<grid, kThreads, kSmemBytes, stream>>>(p);
  ADALLM_CUDA_CHECK_LAUNCH("nvfp4 mma GEMM");
}

}  // namespace adallm::kernels
