// NVFP4 prefill GEMM on sm_90a (see nvfp4_gemm.h).
//
// A block computes 128 weight rows × 256 tokens (128 when that would leave SMs idle) with eight warps (two
// warpgroups); each warp owns one row tile (16 rows) — inside its warpgroup, the A slice of wgmma
// m64nNk16. 256 tokens per block halve the decode work per MMA against 128 (measured: the decode, not
// the tensor cores, bounded the smaller tile):
// - A: per 64-column k tile each lane loads its 16-byte code word and 2 scale bytes per row tile (three k
//   tiles ahead, in registers) and decodes them exactly into the bf16 A fragments of four k16 steps
//   (nvfp4_fragment.cuh) while the MMAs of the current k tile run; one batch of MMAs stays queued behind
//   the one executing.
// - B: TMA copies [N tokens × 64 columns] of the permuted activations (see nvfp4_permute_activations)
//   into a ring of four shared stages in the 128-byte-swizzled K-major layout wgmma reads; rows past the
//   token count and columns past K arrive as zeros. A full mbarrier per stage says its bytes landed; a
//   release counter says how many warps are done with it, and the warp that releases it last issues its
//   refill, so no warp ever waits for another. (A separate producer warp would cap the registers at 168
//   per thread, too few for 128 accumulators plus two sets of A fragments.)
// The permuted k order makes each k16 step's B rows match the A fragment: step kk's k = 2t + j and
// 2t + 8 + j are columns 16t + 4kk + j and 16t + 4kk + 2 + j (j = 0, 1) of the 64-column group (the
// tiles' order, nvfp4_tiles.h), i.e. logical 16-byte chunk c = 2kk + h holds the column pairs 8t + c,
// t = 0..3.
#include "kernels/linear/nvfp4_gemm.h"

#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/linear/async_copy.cuh"
#include "kernels/linear/nvfp4_fragment.cuh"

namespace adallm::kernels {
namespace {

using async::mbarrier_expect_bytes;
using async::mbarrier_init;
using async::mbarrier_wait;

constexpr int kWarps = 8;
constexpr int kThreads = kWarps * 32;
constexpr int kRowTilesPerBlock = kWarps;  // one 16-row tile per warp
// Tokens per block: 256, or 128 when 256 would leave SMs idle (small batches of small weights).
template <int kTokens>
constexpr int kStageBytes = kTokens * 128;  // kTokens tokens × 64 bf16
constexpr int kStages = 4;  // a power of two: stage and phase are bit operations
// The epilogue's staging rows: kTokens tokens × 128 fp32 outputs, each row padded by 16 bytes.
template <int kTokens>
constexpr int kStagingBytes = kTokens * (kRowTilesPerBlock * kNvfp4TileRows * 4 + 16);
// The stages (1024-byte aligned for the swizzle; the epilogue reuses them), the full barriers, then one
// release counter per stage.
template <int kTokens>
constexpr int kStageRegion = kStages * kStageBytes<kTokens> > kStagingBytes<kTokens> ? kStages * kStageBytes<kTokens>
                                                                                    : kStagingBytes<kTokens>;
template <int kTokens>
constexpr int kSmemBytes = 1024 + kStageRegion<kTokens> + kStages * 8 + kStages * 4;

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ADALLM_WGMMA 1
#endif

// ---- activation permutation (any architecture) ----

// One thread per 16-byte chunk of the output row: chunk c of 64-column group G holds the column pairs
// 8t + c (t = 0..3) of that group, zeros past K.
__global__ void permute_kernel(const __nv_bfloat16* __restrict__ x, int64_t x_stride, int64_t tokens, int64_t k,
                               __nv_bfloat16* __restrict__ out, int64_t out_stride) {
  const int64_t chunks = out_stride / 8;
  const int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= tokens * chunks) return;
  const int64_t token = index / chunks, chunk = index % chunks;
  const int64_t group = chunk / 8, c = chunk % 8;
  const uint32_t* row = reinterpret_cast<const uint32_t*>(x + token * x_stride);
  uint32_t pair[4];
#pragma unroll
  for (int t = 0; t < 4; ++t) {
    const int64_t col = group * 64 + 16 * t + 2 * c;
    pair[t] = col < k ? __ldg(row + col / 2) : 0u;
  }
  reinterpret_cast<uint4*>(out + token * out_stride)[chunk] = make_uint4(pair[0], pair[1], pair[2], pair[3]);
}

#if defined(ADALLM_WGMMA)
// d += A · B for one warpgroup: A the m64 × k16 bf16 fragment in registers, B = [N tokens × k16] bf16 in
// shared memory (descriptor).
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, "
      "{%64, %65, %66, %67}, %68, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

__device__ __forceinline__ void wgmma_m64n256k16(float (&d)[128], const uint32_t (&a)[4], uint64_t desc_b) {
  asm volatile(
      "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, "
      "%64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, "
      "%80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, "
      "%96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, "
      "%112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127"
      "}, "
      "{%128, %129, %130, %131}, %132, p, 1, 1, 0;\n}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1));
}

template <int kTokens>
__device__ __forceinline__ void wgmma_tile(float (&d)[kTokens / 2], const uint32_t (&a)[4], uint64_t desc_b) {
  if constexpr (kTokens == 128) {
    wgmma_m64n128k16(d, a, desc_b);
  } else {
    wgmma_m64n256k16(d, a, desc_b);
  }
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_one() { asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory"); }

// Ties the accumulators to this point: the compiler may not move their uses across it.
template <int kCount>
__device__ __forceinline__ void fence_accumulators(float (&d)[kCount]) {
#pragma unroll
  for (int i = 0; i < kCount; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// wgmma reads its register A operand asynchronously, which the compiler does not know: this makes the
// fragment live up to the point where the MMAs are waited for, so its registers are not reused earlier.
__device__ __forceinline__ void fence_fragments(uint32_t (&a)[4][4]) {
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
    for (int i = 0; i < 4; ++i) asm volatile("" : "+r"(a[kk][i])::"memory");
  }
}

// wgmma matrix descriptor: K-major, 128-byte swizzle, rows of 128 bytes in groups of 8 (1024 bytes apart).
__device__ __forceinline__ uint64_t b_descriptor(uint32_t smem_address) {
  return static_cast<uint64_t>((smem_address & 0x3FFFF) >> 4) | (static_cast<uint64_t>(1) << 16) |
         (static_cast<uint64_t>(1024 >> 4) << 32) | (static_cast<uint64_t>(1) << 62);
}

// TMA: the [tokens × 64] box at (column, token) into shared memory, completing on `bar`.
__device__ __forceinline__ void tma_load(uint32_t dst, const CUtensorMap* map, int32_t column, int32_t token, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(column), "r"(token), "r"(bar)
      : "memory");
}

template <typename Out>
__device__ __forceinline__ Out convert(float value);
template <>
__device__ __forceinline__ float convert<float>(float value) {
  return value;
}
template <>
__device__ __forceinline__ __nv_bfloat16 convert<__nv_bfloat16>(float value) {
  return __float2bfloat16_rn(value);
}

// The epilogue, in two passes through the (now idle) stage memory: each warp writes its row tile's
// outputs, scaled (and gated), as [token][feature] rows of the block; then the block copies those rows
// out in 16-byte stores, each token's features being contiguous in the output. d[4j + i] is tile row
// g + 8 (i / 2), token 8j + 2t + i % 2 of the block's kTokens.
template <int kTokens, typename Out>
__device__ __forceinline__ void store_block(const Nvfp4LinearParams& p, Out* out, uint8_t* staging, int64_t row_block,
                                            int64_t token0, int warp, int lane, const float (&d)[kTokens / 2], bool has_rows) {
  const int g = lane / 4, t = lane % 4;
  const bool gate_up = p.shape.gate_up;
  const int features = gate_up ? kRowTilesPerBlock * kNvfp4TileRows / 2 : kRowTilesPerBlock * kNvfp4TileRows;
  const int64_t feature0 = row_block * features;
  const int64_t width = gate_up ? p.shape.n / 2 : p.shape.n;
  // Rows padded by 16 bytes so that the four tokens a warp writes at once fall in different banks.
  const int pitch = features * static_cast<int>(sizeof(Out)) + 16;
  // With out_permuted, feature f = 16t + 2c + j of a 64-feature group goes to position 8c + 2t + j (the
  // block's features start on a group boundary).
  const bool permuted = p.out_permuted;
  const auto put = [&](int token, int feature, float value) {
    const int at = permuted ? (feature & ~63) | ((feature >> 1) & 7) << 3 | ((feature >> 4) & 3) << 1 | (feature & 1)
                            : feature;
    *reinterpret_cast<Out*>(staging + token * pitch + at * static_cast<int>(sizeof(Out))) = convert<Out>(value);
  };
  if (has_rows) {
    const int64_t rt = row_block * kRowTilesPerBlock + warp;
    if (gate_up) {
      const int64_t pair = rt * (kNvfp4TileRows / 2) + g;
      const bool ok = pair < p.shape.n / 2;
      const float gate_scale = ok ? nvfp4::kDecodeUnscale * p.row_scale[pair] : 0.0f;
      const float up_scale = ok ? nvfp4::kDecodeUnscale * p.row_scale[pair + p.shape.n / 2] : 0.0f;
      const bool silu = p.activation == Nvfp4Activation::silu;
#pragma unroll
      for (int j = 0; j < kTokens / 8; ++j) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          put(8 * j + 2 * t + i, warp * 8 + g, nvfp4::gated(d[4 * j + i] * gate_scale, d[4 * j + 2 + i] * up_scale, silu));
        }
      }
    } else {
      const int64_t row_g = rt * kNvfp4TileRows + g, row_g8 = row_g + 8;
      const float scale_g = row_g < p.shape.n ? nvfp4::kDecodeUnscale * p.row_scale[row_g] : 0.0f;
      const float scale_g8 = row_g8 < p.shape.n ? nvfp4::kDecodeUnscale * p.row_scale[row_g8] : 0.0f;
#pragma unroll
      for (int j = 0; j < kTokens / 8; ++j) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
          put(8 * j + 2 * t + i, warp * 16 + g, d[4 * j + i] * scale_g);
          put(8 * j + 2 * t + i, warp * 16 + g + 8, d[4 * j + 2 + i] * scale_g8);
        }
      }
    }
  }
  __syncthreads();
  // 16-byte chunks of the staged rows, spread over the block: whole chunks inside the output width go out
  // as one store where the output rows allow it, the rest element by element.
  constexpr int kPerChunk = 16 / static_cast<int>(sizeof(Out));
  const int chunks = features / kPerChunk;
  const bool vector = reinterpret_cast<uintptr_t>(out) % 16 == 0 && (p.out_stride * static_cast<int64_t>(sizeof(Out))) % 16 == 0;
  for (int index = threadIdx.x; index < kTokens * chunks; index += kThreads) {
    const int token = index / chunks, chunk = index % chunks;
    if (token0 + token >= p.tokens) break;
    const int64_t feature = feature0 + chunk * kPerChunk;
    if (feature >= width) continue;
    const uint8_t* src = staging + token * pitch + chunk * 16;
    Out* dst = out + (token0 + token) * p.out_stride + feature;
    if (vector && feature + kPerChunk <= width) {
      *reinterpret_cast<uint4*>(dst) = *reinterpret_cast<const uint4*>(src);
    } else {
      for (int e = 0; e < kPerChunk && feature + e < width; ++e) dst[e] = reinterpret_cast<const Out*>(src)[e];
    }
  }
}

#endif

template <int kTokens>
__global__ void __launch_bounds__(kThreads, 1)
    gemm_kernel(const __grid_constant__ CUtensorMap x_map, Nvfp4LinearParams p, int token_tiles, int group) {
#if defined(ADALLM_WGMMA)
  extern __shared__ uint8_t smem_raw[];
  const uint32_t raw_base = static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw));
  const uint32_t stages = (raw_base + 1023u) & ~1023u;
  const uint32_t full_bar = stages + kStageRegion<kTokens>;
  unsigned int* const released = reinterpret_cast<unsigned int*>(smem_raw + (full_bar - raw_base) + kStages * 8);

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int k_tiles = static_cast<int>(p.shape.k_tiles());
  // Blocks run in groups of `group` token tiles: consecutive blocks walk the group's token tiles for one
  // weight slab, then the next slab. The group's activations stay in L2 while each weight byte is read
  // from DRAM once per group.
  const int row_blocks = static_cast<int>((p.shape.row_tiles() + kRowTilesPerBlock - 1) / kRowTilesPerBlock);
  const int group_index = static_cast<int>(blockIdx.x) / (group * row_blocks);
  const int within = static_cast<int>(blockIdx.x) % (group * row_blocks);
  const int first_tile = group_index * group;
  const int group_size = token_tiles - first_tile < group ? token_tiles - first_tile : group;
  const int64_t token0 = static_cast<int64_t>(first_tile + within % group_size) * kTokens;
  const int64_t row_block = within / group_size;
  if (tid == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(full_bar + 8 * s, 1);  // the refilling thread's arrival, plus the TMA's bytes
      released[s] = 0;
    }
    async::fence_barrier_init();
  }
  __syncthreads();
  const auto fill = [&](int kt) {  // tile kt into stage kt % kStages
    const uint32_t bar = full_bar + 8 * (kt % kStages);
    mbarrier_expect_bytes(bar, kStageBytes<kTokens>);
    tma_load(stages + (kt % kStages) * kStageBytes<kTokens>, &x_map, kt * 64, static_cast<int32_t>(token0), bar);
  };
  if (tid == 0) {
    for (int kt = 0; kt < kStages && kt < k_tiles; ++kt) fill(kt);
  }

  // Warp w owns row tile w of the block (inside its warpgroup, the A slice of rows 16 (w % 4)).
  const int64_t rt = row_block * kRowTilesPerBlock + warp;
  const bool has_rows = rt < p.shape.row_tiles();
  const nvfp4::TileStream weights(p, rt, lane);

  float d[kTokens / 2];
#pragma unroll
  for (int i = 0; i < kTokens / 2; ++i) d[i] = 0.0f;
  // Two sets of A fragments: the MMAs of k tile kt (set kt % 2) are issued before those of kt - 1 are
  // waited for, so the tensor cores always have a batch queued, and tile kt + 1 is decoded into the set
  // that kt - 1 used. Two sets of raw words: tile kt + 1's (loaded two steps earlier) is decoded, then its
  // registers take the load of tile kt + 3 — nothing moves a register a load is still writing.
  uint32_t a0[4][4], a1[4][4];
  nvfp4::WeightWord raw0, raw1;
  weights.load(0, raw0);
  nvfp4::decode_tile(raw0, a0);
  weights.load(1, raw1);
  weights.load(2, raw0);
  // Step kt: A set `cur`, tile kt + 1's raw words in `raw_next`.
  const auto step = [&](int kt, uint32_t (&cur)[4][4], uint32_t (&nxt)[4][4], nvfp4::WeightWord& raw_next) {
    const int s = kt % kStages;
    mbarrier_wait(full_bar + 8 * s, (kt / kStages) & 1);
    const uint64_t desc = b_descriptor(stages + s * kStageBytes<kTokens>);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_tile<kTokens>(d, cur[kk], desc + 2 * kk);  // + 32 bytes per k16 step
    wgmma_commit();
    wgmma_wait_one();  // the MMAs of tile kt - 1 are done: its fragments and its stage are free
    fence_fragments(nxt);
    if (kt > 0 && lane == 0) {
      // Release the stage of tile kt - 1; the last warp to do so refills it (no warp waits for another).
      const int prev = (kt - 1) % kStages;
      __threadfence_block();
      if (atomicAdd(&released[prev], 1u) == kWarps - 1) {
        released[prev] = 0;
        __threadfence_block();
        if (kt - 1 + kStages < k_tiles) fill(kt - 1 + kStages);
      }
    }
    __syncwarp();
    nvfp4::decode_tile(raw_next, nxt);
    weights.load(kt + 3, raw_next);
  };
  for (int kt = 0; kt < k_tiles; kt += 2) {
    step(kt, a0, a1, raw1);
    if (kt + 1 < k_tiles) step(kt + 1, a1, a0, raw0);
  }
  wgmma_wait_all();
  fence_accumulators(d);
  fence_fragments(a0);
  fence_fragments(a1);
  __syncthreads();  // every warp's MMAs are done: the stages are free for the epilogue
  uint8_t* const staging = smem_raw + (stages - raw_base);
  if (p.out_bf16 != nullptr) {
    store_block<kTokens>(p, p.out_bf16, staging, row_block, token0, warp, lane, d, has_rows);
  } else {
    store_block<kTokens>(p, p.out, staging, row_block, token0, warp, lane, d, has_rows);
  }
#else
  __trap();  // nvfp4_gemm() launches this only where nvfp4_gemm_supported() holds
#endif
}
__global__ void probe_kernel(int* supported) {
#if defined(ADALLM_WGMMA)
  *supported = 1;
#else
  *supported = 0;
#endif
}

bool probe_device(int device) {
  int major = 0, minor = 0;
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  if (major != 9 || minor != 0) return false;
  int* flag = nullptr;
  ADALLM_CUDA_CHECK(cudaMalloc(&flag, sizeof(int)));
  int supported = 0;
  probe_kernel<<<1, 1>>>(flag);
  const cudaError_t launched = cudaGetLastError();
  if (launched == cudaSuccess) ADALLM_CUDA_CHECK(cudaMemcpy(&supported, flag, sizeof(int), cudaMemcpyDeviceToHost));
  ADALLM_CUDA_CHECK(cudaFree(flag));
  // No kernel image for this device (a build without sm_90 code) means no wgmma either.
  if (launched != cudaSuccess && launched != cudaErrorNoKernelImageForDevice) ADALLM_CUDA_CHECK(launched);
  return supported == 1;
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("nvfp4 GEMM: " + what);
}

// The driver's tensor-map encoder, found through the runtime (no link against libcuda).
PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    ADALLM_CUDA_CHECK(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    require(found == cudaDriverEntryPointSuccess && fn != nullptr, "the driver has no cuTensorMapEncodeTiled");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  return encode;
}

// [tokens, columns] bf16 rows `stride` elements apart, read in [box_tokens × 64] boxes with the 128-byte
// swizzle.
CUtensorMap activation_map(const __nv_bfloat16* x, int64_t columns, int64_t stride, int64_t tokens, int box_tokens) {
  CUtensorMap map{};
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(columns), static_cast<cuuint64_t>(tokens)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(stride * 2)};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_tokens)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<__nv_bfloat16*>(x), dims,
                                          strides, box, element_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  require(r == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed with error " + std::to_string(static_cast<int>(r)) +
                                 " for activations [" + std::to_string(tokens) + ", " + std::to_string(columns) + "]");
  return map;
}

}  // namespace

bool nvfp4_gemm_supported() {
  static std::mutex mutex;
  static std::vector<int> known;  // per device: -1 unknown, 0 no, 1 yes
  int device = 0;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  const std::lock_guard<std::mutex> lock(mutex);
  if (known.size() <= static_cast<size_t>(device)) known.resize(device + 1, -1);
  if (known[device] < 0) known[device] = probe_device(device) ? 1 : 0;
  return known[device] == 1;
}

int64_t nvfp4_gemm_workspace_bytes(const Nvfp4TiledShape& shape, int64_t tokens) {
  return tokens * shape.k_tiles() * kNvfp4TileCols * 2;
}

void nvfp4_permute_activations(const __nv_bfloat16* x, int64_t x_stride, int64_t tokens, int64_t k,
                               __nv_bfloat16* out, cudaStream_t stream) {
  require(k > 0 && k % 16 == 0 && tokens >= 0, "permute: K must be a positive multiple of 16");
  require(x != nullptr && out != nullptr, "permute: null pointer");
  require(reinterpret_cast<uintptr_t>(x) % 4 == 0 && x_stride % 2 == 0 && x_stride >= k,
          "permute: activations need 4-byte alignment and an even row stride >= K");
  require(reinterpret_cast<uintptr_t>(out) % 16 == 0, "permute: the output must be 16-byte aligned");
  if (tokens == 0) return;
  const int64_t out_stride = (k + kNvfp4TileCols - 1) / kNvfp4TileCols * kNvfp4TileCols;
  const int64_t threads = tokens * out_stride / 8;
  permute_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(x, x_stride, tokens, k, out, out_stride);
  ADALLM_CUDA_CHECK_LAUNCH("nvfp4 activation permute");
}

void nvfp4_gemm(const Nvfp4LinearParams& params, void* workspace, cudaStream_t stream) {
  nvfp4_check_params(params, "nvfp4 GEMM");
  require(nvfp4_gemm_supported(), "needs an sm_90 GPU and a build with sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a)");
  if (params.tokens == 0) return;
  Nvfp4LinearParams p = params;
  const int64_t columns = p.shape.k_tiles() * kNvfp4TileCols;
  if (p.out_permuted) {
    const int64_t width = p.shape.gate_up ? p.shape.n / 2 : p.shape.n;
    require(p.out_bf16 != nullptr && width % kNvfp4TileCols == 0,
            "out_permuted needs bf16 output and an output width that is a multiple of 64 (got " + std::to_string(width) + ")");
  }
  if (!p.x_permuted) {
    require(workspace != nullptr, "needs a workspace of nvfp4_gemm_workspace_bytes() for the permuted activations");
    auto* permuted = static_cast<__nv_bfloat16*>(workspace);
    nvfp4_permute_activations(p.x, p.x_stride, p.tokens, p.shape.k, permuted, stream);
    p.x = permuted;
    p.x_stride = columns;
  } else {
    require(reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_stride % 8 == 0 && p.x_stride >= columns,
            "permuted activations must start 16-byte aligned, with a row stride that is a multiple of 8 and at "
            "least K rounded up to 64 (got stride " + std::to_string(p.x_stride) + ")");
  }
  // 256 tokens per block, or 128 where the waves of blocks say so: a 128-token block takes about 0.77 of a
  // 256-token one (half the MMAs, the same decode; H100, docs/performance.md), so 128 wins only where 256
  // leaves SMs idle.
  require(p.variant >= 0 && p.variant <= 2, "variant must be 0, 1 (256 tokens per block) or 2 (128)");
  const int64_t row_blocks = (p.shape.row_tiles() + kRowTilesPerBlock - 1) / kRowTilesPerBlock;
  const int64_t sms = multiprocessor_count();
  const auto waves = [&](int64_t tokens_per_block) {
    return ((p.tokens + tokens_per_block - 1) / tokens_per_block * row_blocks + sms - 1) / sms;
  };
  const bool wide = p.variant == 1 || (p.variant == 0 && 100 * waves(256) <= 77 * waves(128));
  const int block_tokens = wide ? 256 : 128;
  const CUtensorMap map = activation_map(p.x, columns, p.x_stride, p.tokens, block_tokens);
  const int64_t token_tiles = (p.tokens + block_tokens - 1) / block_tokens;
  require(token_tiles * row_blocks < (int64_t{1} << 31), "too many tokens × rows for one launch");
  // Token tiles per group: as many as keep their activations within 24 MB of L2 (half the H100's).
  const int64_t tile_bytes = block_tokens * columns * 2;
  const int64_t group = std::max<int64_t>(1, std::min<int64_t>(token_tiles, (int64_t{24} << 20) / tile_bytes));
  static const bool configured = [] {
    ADALLM_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel<128>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes<128>));
    ADALLM_CUDA_CHECK(cudaFuncSetAttribute(gemm_kernel<256>, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes<256>));
    return true;
  }();
  (void)configured;
  const unsigned blocks = static_cast<unsigned>(token_tiles * row_blocks);
  if (wide) {
    gemm_kernel<256><<<blocks, kThreads, kSmemBytes<256>, stream>>>(map, p, static_cast<int>(token_tiles), static_cast<int>(group));
  } else {
    gemm_kernel<128><<<blocks, kThreads, kSmemBytes<128>, stream>>>(map, p, static_cast<int>(token_tiles), static_cast<int>(group));
  }
  ADALLM_CUDA_CHECK_LAUNCH("nvfp4 GEMM");
}

}  // namespace adallm::kernels
