// NVFP4 decode GEMV (see nvfp4_gemv.h): mma.m16n8k16 bf16 × bf16 → fp32 with weights as A (16 rows ×
// 16 k) and tokens as B (n = 8). A lane's k values are its own 16-column block (see nvfp4_tiles.h), so
// one scale pair per row serves four MMA steps and the activations come in two 16-byte loads. The decode
// arithmetic is in nvfp4_fragment.cuh.
#include "kernels/linear/nvfp4_gemv.h"

#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/linear/nvfp4_fragment.cuh"

namespace adallm::kernels {
namespace {

// Streams a weight tile past L1 and marks it first to leave L2: each byte is used once.
__device__ __forceinline__ uint4 load_stream(const uint4* p) { return __ldcs(p); }

__device__ __forceinline__ uint32_t load_x_pair(const __nv_bfloat16* p) {
  return __ldg(reinterpret_cast<const unsigned int*>(p));
}

// Row tile rt's outputs, by warp j < kGroups once every warp's accumulators (c[j][0] for token group j) are
// in `partial`: the warps' split-K sums, then group j scaled and stored — tile row g (c0, c1: tokens 8j + 2t,
// 8j + 2t + 1) and tile row g + 8 (c2, c3), or act(gate) · up for a gate_up shape. x_scale[q] is token q's
// norm scale (1 without x_partials). With a residual, the results join it and leave the next norm's inputs.
template <int kWarps, int kGroups>
__device__ __forceinline__ void store_group(const Nvfp4LinearParams& p, const float4 (&partial)[kWarps][kGroups][32],
                                            const float (&x_scale)[kGroups * 8], int64_t rt, int64_t token0, int pass) {
  const int lane = threadIdx.x % 32, j = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  float sum[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
  for (int wp = 0; wp < kWarps; ++wp) {
    const float4 v = partial[wp][j][lane];
    sum[0] += v.x, sum[1] += v.y, sum[2] += v.z, sum[3] += v.w;
  }
  // sum[i] belongs to token 8j + 2t + i % 2.
  const float token_scale[2] = {x_scale[8 * j + 2 * t], x_scale[8 * j + 2 * t + 1]};
  if (p.shape.gate_up) {
    // Tile row g is gate row `pair`, tile row g + 8 the matching up row.
    const int64_t pair = rt * (kNvfp4TileRows / 2) + g;
    if (pair >= p.shape.n / 2) return;
    const float gate_scale = nvfp4::kDecodeUnscale * p.row_scale[pair];
    const float up_scale = nvfp4::kDecodeUnscale * p.row_scale[pair + p.shape.n / 2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int token = 8 * j + 2 * t + i;
      if (token >= pass) continue;
      const float gate = sum[i] * token_scale[i] * gate_scale, up = sum[i + 2] * token_scale[i] * up_scale;
      nvfp4::store_output(p, (token0 + token) * p.out_stride + pair, nvfp4::gated(gate, up, p.activation == Nvfp4Activation::silu));
    }
    return;
  }
  if (p.residual == nullptr) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int64_t row = rt * kNvfp4TileRows + g + (i >= 2 ? 8 : 0);
      const int token = 8 * j + 2 * t + (i % 2);
      if (row < p.shape.n && token < pass) {
        nvfp4::store_output(p, (token0 + token) * p.out_stride + row,
                            sum[i] * token_scale[i % 2] * nvfp4::kDecodeUnscale * p.row_scale[row]);
      }
    }
    return;
  }
  // The residual epilogue: each output has one owner, so the read-modify-write needs no atomics.
  float squares[2] = {0.0f, 0.0f};
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const int64_t row = rt * kNvfp4TileRows + g + (i >= 2 ? 8 : 0);
    const int token = 8 * j + 2 * t + (i % 2);
    if (row < p.shape.n && token < pass) {
      float* r = p.residual + (token0 + token) * p.residual_stride + row;
      const float v = *r + sum[i] * token_scale[i % 2] * nvfp4::kDecodeUnscale * p.row_scale[row];
      *r = v;
      const float w = p.norm_gemma ? 1.0f + p.norm_weight[row] : p.norm_weight[row];
      p.out_bf16[(token0 + token) * p.out_stride + row] = __float2bfloat16_rn(v * w);
      squares[i % 2] += v * v;
    }
  }
  // The tile's 16 rows of each token are spread over the lanes of one t (g = 0..7): a fixed shuffle tree,
  // so the partial sums do not depend on timing.
#pragma unroll
  for (int offset = 4; offset < 32; offset *= 2) {
    squares[0] += __shfl_xor_sync(0xffffffffu, squares[0], offset);
    squares[1] += __shfl_xor_sync(0xffffffffu, squares[1], offset);
  }
  if (g == 0) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int token = 8 * j + 2 * t + i;
      if (token < pass) p.norm_partials[(token0 + token) * p.norm_partials_stride + rt] = squares[i];
    }
  }
}

// Split-K over the block's kWarps warps: each warp's accumulators go to shared memory, then warps
// 0 .. kGroups - 1 store row tile rt (store_group). The caller synchronizes before `partial` is reused.
template <int kWarps, int kGroups, int kChains>
__device__ __forceinline__ void reduce_and_store(const Nvfp4LinearParams& p, float4 (&partial)[kWarps][kGroups][32],
                                                 const float (&x_scale)[kGroups * 8],
                                                 const float (&c)[kGroups][kChains][4], int64_t rt, int64_t token0,
                                                 int pass) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
#pragma unroll
  for (int j = 0; j < kGroups; ++j) partial[warp][j][lane] = make_float4(c[j][0][0], c[j][0][1], c[j][0][2], c[j][0][3]);
  __syncthreads();
  if (warp < kGroups) store_group<kWarps, kGroups>(p, partial, x_scale, rt, token0, pass);
}

// Each token's norm scale from its partial sums (1 without x_partials), into x_scale: warp w sums the
// tokens w, w + kWarps, ... of the pass, lanes striding the partials, then a fixed shuffle tree — the same
// order in every block, so every block scales a token alike. The caller synchronizes before reading. One
// round trip to L2 per token a warp takes: the backend folds norms only where that is one (≤ 8 tokens).
template <int kWarps, int kGroups>
__device__ __forceinline__ void token_norm_scales(const Nvfp4LinearParams& p, int64_t token0, int pass,
                                                  float (&x_scale)[kGroups * 8]) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  for (int q = warp; q < kGroups * 8; q += kWarps) {
    float scale = 1.0f;
    if (p.x_partials != nullptr && q < pass) {
      const float* partials = p.x_partials + (token0 + q) * p.x_partials_stride;
      float sum = 0.0f;
      for (int i = lane; i < p.x_partials_count; i += 32) sum += partials[i];
#pragma unroll
      for (int offset = 16; offset > 0; offset /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, offset);
      scale = 1.0f / sqrtf(sum / static_cast<float>(p.shape.k) + p.x_eps);
    }
    if (lane == 0) x_scale[q] = scale;
  }
}

// 32-bit index arithmetic in the loops.
constexpr int kTileCols = static_cast<int>(kNvfp4TileCols);
constexpr int kRecord = static_cast<int>(kNvfp4TileRecordBytes / 16);  // 16-byte words per tile record

// One tile's products: its four MMA steps, each decoded fragment feeding one MMA per token group.
template <int kGroups, int kChains>
__device__ __forceinline__ void accumulate_tile(float (&c)[kGroups][kChains][4], const uint4& w, uint32_t s,
                                                const uint32_t (&b)[kGroups][8]) {
  const uint32_t q[4] = {w.x, w.y, w.z, w.w};
  // One block per lane per tile: its two scales serve all four steps.
  const uint32_t scale_g = nvfp4::scale_pair(s & 0xFF), scale_g8 = nvfp4::scale_pair((s >> 8) & 0xFF);
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) {
    uint32_t a[4];
    nvfp4::decode_fragment(q[kk], scale_g, scale_g8, a);
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
      nvfp4::mma_bf16(c[j][kk % kChains], a[0], a[1], a[2], a[3], b[j][2 * kk], b[j][2 * kk + 1]);
    }
  }
}

// This lane's activations of one tile: block t's 16 columns of its token as bf16 pairs (step kk uses
// words 2kk, 2kk + 1), or zeros where `ok` is false.
template <bool kVectorX>
__device__ __forceinline__ void load_x(const __nv_bfloat16* at, bool ok, uint32_t (&b)[8]) {
  if (kVectorX) {
    const uint4 lo = ok ? __ldg(reinterpret_cast<const uint4*>(at)) : make_uint4(0, 0, 0, 0);
    const uint4 hi = ok ? __ldg(reinterpret_cast<const uint4*>(at + 8)) : make_uint4(0, 0, 0, 0);
    b[0] = lo.x, b[1] = lo.y, b[2] = lo.z, b[3] = lo.w;
    b[4] = hi.x, b[5] = hi.y, b[6] = hi.z, b[7] = hi.w;
  } else {
#pragma unroll
    for (int i = 0; i < 8; ++i) b[i] = ok ? load_x_pair(at + 2 * i) : 0u;
  }
}

// A block owns kRows 16-row tiles and splits K over its kWarps warps; each warp issues the loads of kUnroll
// tiles of each of its rows before using the first. Every block reads all of the pass's activations from
// L2 once (32 tokens of a K = 4096 layer: 256 KB, against 37 KB of weights per row tile), so with 16 or 32
// tokens that traffic, not DRAM, bounds one row tile per block; more rows per block divide it. A pass
// covers kGroups groups of 8 tokens: each decoded weight fragment feeds one MMA per group, so 16 or 32
// tokens cost little more than 8. kMinBlocks caps registers so that
// that many blocks share an SM. Instruction issue bounds the kernel as much as DRAM does, so the main
// loop carries no predicates and no per-step 64-bit index arithmetic (it covers the tiles wholly inside K
// in steps of kUnroll; a predicated tail does the rest): about 70 instructions per tile per warp in the
// loop's SASS, of which the decode is 52 (107 with the predicated loop).
// x_rows (MoE experts): column q of the pass reads x row x_rows[token0 + q] instead of row token0 + q. It is
// read before the body waits for the previous kernel: a caller passing it has waited already.
template <int kWarps, int kUnroll, int kMinBlocks, int kGroups, bool kVectorX, int kRows = 1>
__device__ __forceinline__ void gemv_body(const Nvfp4LinearParams& p, int64_t token0, int pass,
                                          const int32_t* x_rows = nullptr) {
  // One group has two accumulator sets (even and odd steps) to halve its chain of dependent MMAs; with
  // several groups or rows their chains interleave anyway.
  constexpr int kChains = kGroups == 1 && kRows == 1 ? 2 : 1;
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t rt0 = static_cast<int64_t>(blockIdx.x) * kRows;
  const int k_tiles = static_cast<int>(p.shape.k_tiles());
  // Row r's tiles are r_off[r] words past row tile rt0's (a last block past the row tiles reads the last
  // one again and stores nothing for it). Row 0 always exists: its offset is the constant 0, so that one
  // row per block costs no address arithmetic.
  int64_t r_off[kRows];
  r_off[0] = 0;
#pragma unroll
  for (int r = 1; r < kRows; ++r) {
    const int64_t rt = rt0 + r < p.shape.row_tiles() ? rt0 + r : p.shape.row_tiles() - 1;
    r_off[r] = (rt - rt0) * k_tiles * kRecord;
  }
  // Tile kt's record: codes at words kRecord · kt + lane, scales right after (kNvfp4TileBytes in).
  const uint4* const row_tile = reinterpret_cast<const uint4*>(p.tiles) + rt0 * k_tiles * kRecord;
  const uint4* const tiles = row_tile + lane;
  const uint16_t* const scales = reinterpret_cast<const uint16_t*>(row_tile + kNvfp4TileBytes / 16) + lane;
  // This lane's B column in group j is token 8j + g of the pass, and its k values are the 16 columns of
  // block t of each tile. A column past the pass reads token 0 instead: an MMA's output column depends on
  // its B column only, and those outputs are never stored.
  const __nv_bfloat16* x[kGroups];
#pragma unroll
  for (int j = 0; j < kGroups; ++j) {
    const int64_t column = token0 + (8 * j + g < pass ? 8 * j + g : 0);
    x[j] = p.x + (x_rows != nullptr ? x_rows[column] : column) * p.x_stride + 16 * t;
  }

  float c[kRows][kGroups][kChains][4] = {};
  // Each warp takes one contiguous share of K: whole steps of kUnroll tiles with no column past K, then a
  // tail (an odd tile, and the last tile when K is not a multiple of 64). Interleaving the warps' steps
  // instead, so that a block reads one contiguous stretch at a time, measured no faster (slower on o).
  const int full_tiles = static_cast<int>(p.shape.k / kNvfp4TileCols);
  const int per_warp = (k_tiles + kWarps - 1) / kWarps;
  const int first = warp * per_warp;
  const int last = first + per_warp < k_tiles ? first + per_warp : k_tiles;
  const int whole = (last < full_tiles ? last : full_tiles) - first;
  const int end = whole > 0 ? first + whole / kUnroll * kUnroll : first;
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // Programmatic dependent launch (sm_90): this kernel may start while the previous one finishes. Weights
  // do not depend on it, so the first step's tiles are prefetched into L2 now; activations and the output
  // wait for the previous kernel's writes.
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (first + u < end) asm volatile("prefetch.global.L2 [%0];" ::"l"(tiles + r_off[r] + (first + u) * kRecord));
    }
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  // The norm scales first: after the main loop their loads would add a round trip to every block's tail
  // (measured: qkv 9.30 → 9.03 µs, gate_up 25.16 → 24.41 at batch 1 under ncu). reduce_and_store's barrier
  // orders the writes before the reads.
  __shared__ float x_scale[kGroups * 8];
  token_norm_scales<kWarps, kGroups>(p, token0, pass, x_scale);
  // Pointers step through the tiles (64-bit adds) rather than being recomputed from an index each step.
  const uint4* tile = tiles + first * kRecord;
  const uint16_t* scale = scales + first * kRecord * 8;
  const __nv_bfloat16* xs[kGroups];
#pragma unroll
  for (int j = 0; j < kGroups; ++j) xs[j] = x[j] + first * kTileCols;
  for (int kt = first; kt < end; kt += kUnroll) {
    // Every load of the step first (weights from DRAM, activations from L1 or, on first touch, L2), so
    // that their latencies overlap; then the arithmetic.
    uint4 w[kRows][kUnroll];
    uint32_t s[kRows][kUnroll];
    uint32_t b[kUnroll][kGroups][8];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        w[r][u] = load_stream(tile + r_off[r] + u * kRecord);
        s[r][u] = __ldg(scale + r_off[r] * 8 + u * kRecord * 8);
      }
#pragma unroll
      for (int j = 0; j < kGroups; ++j) load_x<kVectorX>(xs[j] + u * kTileCols, true, b[u][j]);
    }
    tile += kUnroll * kRecord;
    scale += kUnroll * kRecord * 8;
#pragma unroll
    for (int j = 0; j < kGroups; ++j) xs[j] += kUnroll * kTileCols;
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int r = 0; r < kRows; ++r) accumulate_tile(c[r], w[r][u], s[r][u], b[u]);
    }
  }
  // The tail, whose blocks past K hold zero codes and must not read their activations.
  for (int kt = end; kt < last; ++kt) {
    uint4 w[kRows];
    uint32_t s[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) {
      w[r] = load_stream(tiles + r_off[r] + kt * kRecord);
      s[r] = __ldg(scales + r_off[r] * 8 + kt * kRecord * 8);
    }
    uint32_t b[kGroups][8];
    const bool ok = static_cast<int64_t>(kt) * kTileCols + 16 * t < p.shape.k;
#pragma unroll
    for (int j = 0; j < kGroups; ++j) load_x<kVectorX>(x[j] + kt * kTileCols, ok, b[j]);
#pragma unroll
    for (int r = 0; r < kRows; ++r) accumulate_tile(c[r], w[r], s[r], b);
  }
  if (kChains == 2) {
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
#pragma unroll
      for (int i = 0; i < 4; ++i) c[0][j][0][i] += c[0][j][kChains - 1][i];
    }
  }

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // The weights are read: the next kernel in the stream may begin its own prefetch.
  asm volatile("griddepcontrol.launch_dependents;");
#endif
  __shared__ float4 partial[kWarps][kGroups][32];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    if (r > 0) __syncthreads();  // the previous row tile's partials are read
    if (rt0 + r < p.shape.row_tiles()) reduce_and_store<kWarps, kGroups>(p, partial, x_scale, c[r], rt0 + r, token0, pass);
  }
}

template <int kWarps, int kUnroll, int kMinBlocks, int kGroups, bool kVectorX, int kRows = 1>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) gemv_kernel(Nvfp4LinearParams p, int64_t token0, int pass) {
  gemv_body<kWarps, kUnroll, kMinBlocks, kGroups, kVectorX, kRows>(p, token0, pass);
}

// One (row tile, active expert) per block: blockIdx.y's expert from the sorted routing, then its rows
// offsets[e] .. offsets[e + 1] in passes of up to 8 tokens (the weights of a row tile come from DRAM once,
// from L2 in any later pass).
template <int kWarps, int kUnroll, int kMinBlocks, bool kVectorX, int kRows>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks) expert_gemv_kernel(Nvfp4LinearParams p, Nvfp4ExpertGemv g) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  // The routing (and, for down, x) is the previous kernels' output: wait before reading it. The body's
  // weight prefetch then has nothing to overlap, the price of choosing the weights on the device.
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
  const int expert = g.active[blockIdx.y];
  if (expert < 0 || expert >= g.num_experts) return;
  const int first = g.offsets[expert], rows = g.offsets[expert + 1] - first;
  p.tiles = g.tiles[expert];
  p.row_scale = g.row_scale[expert];
  if (p.out != nullptr) p.out += static_cast<int64_t>(first) * p.out_stride;
  if (p.out_bf16 != nullptr) p.out_bf16 += static_cast<int64_t>(first) * p.out_stride;
  const int32_t* x_rows = g.x_rows != nullptr ? g.x_rows + first : nullptr;
  if (x_rows == nullptr) p.x += static_cast<int64_t>(first) * p.x_stride;
  for (int token0 = 0; token0 < rows; token0 += 8) {
    if (token0 > 0) __syncthreads();  // the previous pass's partial sums are read
    gemv_body<kWarps, kUnroll, kMinBlocks, 1, kVectorX, kRows>(p, token0, rows - token0 < 8 ? rows - token0 : 8, x_rows);
  }
}

void require(bool ok, const std::string& what) {
  if (!ok) throw Error("nvfp4 GEMV: " + what);
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace

void nvfp4_gemv(const Nvfp4LinearParams& p, cudaStream_t stream) {
  nvfp4_check_params(p, "nvfp4 GEMV");
  require(!p.out_permuted, "writes its output in natural order only (out_permuted is the wgmma GEMM's)");
  require(p.variant >= 0 && p.variant <= 5, "variant must be 0 to 5");
  require(p.x_partials == nullptr || (p.x_partials_count > 0 && p.x_partials_stride >= p.x_partials_count && p.x_eps >= 0.0f),
          "x_partials need a positive count, a row stride >= it and an eps >= 0");
  if (p.residual != nullptr) {
    require(!p.shape.gate_up && p.out_bf16 != nullptr && p.norm_weight != nullptr && p.norm_partials != nullptr,
            "the residual epilogue needs a plain weight, bf16 output, the norm weight and the partials");
    require(p.residual_stride >= p.shape.n && p.norm_partials_stride >= p.shape.row_tiles(),
            "residual or norm_partials row stride below its width");
  }
  // Measured on the H100 (docs/performance.md): with few row tiles (up to two per SM) 16 warps per block,
  // each with 2 tiles in flight, keep the most loads going; with more, 8 warps per block and 4 blocks per SM.
  const int sms = multiprocessor_count();
  const bool wide = p.variant == 1 || (p.variant == 0 && p.shape.row_tiles() <= 2 * sms);
  // A pass of 9 to 32 tokens reads 64–256 KB of activations per block from L2 (K = 4096), several times
  // the 37 KB of a row tile's weights: two row tiles per block halve that. Where such blocks of 8 warps
  // still fill the SMs (≥ 4/3 of a wave of one per SM) they win at 9–32 tokens (H100, Qwen3-8B: qkv and
  // gate_up −1 to −28 %); with fewer row tiles (o, down: 128 blocks) they lose 15–40 %, and blocks of 16
  // warps win only at 17–32 tokens (o −6 %, down −10 %; +3–8 % at 16). docs/performance.md, session 11.
  const bool many_row_tiles = p.shape.row_tiles() / 2 >= sms + sms / 3;
  // Activation rows that start 16-byte aligned are read 16 bytes at a time.
  const bool vector_x = aligned(p.x, 16) && p.x_stride % 8 == 0;
  // Passes of up to 32 tokens (four groups of 8); the last takes as few groups as its tokens need.
  for (int64_t token0 = 0; token0 < p.tokens;) {
    const int64_t left = p.tokens - token0;
    const int groups = left > 16 ? 4 : (left > 8 ? 2 : 1);
    const int pass = static_cast<int>(left < 8 * groups ? left : 8 * groups);
    void (*kernel)(Nvfp4LinearParams, int64_t, int) = nullptr;
    int warps = 8, rows = 1;
    if (p.variant == 5 || (p.variant == 0 && groups == 4 && !many_row_tiles)) {
      // Two row tiles per block, 16 warps (for shapes of few row tiles).
      warps = 16, rows = 2;
      if (groups == 1) {
        kernel = vector_x ? gemv_kernel<16, 1, 1, 1, true, 2> : gemv_kernel<16, 1, 1, 1, false, 2>;
      } else if (groups == 2) {
        kernel = vector_x ? gemv_kernel<16, 1, 1, 2, true, 2> : gemv_kernel<16, 1, 1, 2, false, 2>;
      } else {
        kernel = vector_x ? gemv_kernel<16, 1, 1, 4, true, 2> : gemv_kernel<16, 1, 1, 4, false, 2>;
      }
    } else if (p.variant == 3 || p.variant == 4 || (p.variant == 0 && groups > 1 && many_row_tiles)) {
      // Several row tiles per block (2 or, up to 16 tokens, 4), one tile of each in flight per warp.
      rows = p.variant != 4 || groups == 4 ? 2 : 4;
      if (groups == 1) {
        kernel = rows == 2 ? (vector_x ? gemv_kernel<8, 1, 2, 1, true, 2> : gemv_kernel<8, 1, 2, 1, false, 2>)
                           : (vector_x ? gemv_kernel<8, 1, 2, 1, true, 4> : gemv_kernel<8, 1, 2, 1, false, 4>);
      } else if (groups == 2) {
        kernel = rows == 2 ? (vector_x ? gemv_kernel<8, 1, 2, 2, true, 2> : gemv_kernel<8, 1, 2, 2, false, 2>)
                           : (vector_x ? gemv_kernel<8, 1, 2, 2, true, 4> : gemv_kernel<8, 1, 2, 2, false, 4>);
      } else {
        kernel = vector_x ? gemv_kernel<8, 1, 2, 4, true, 2> : gemv_kernel<8, 1, 2, 4, false, 2>;
      }
    } else if (groups == 1 && wide) {
      kernel = vector_x ? gemv_kernel<16, 2, 2, 1, true> : gemv_kernel<16, 2, 2, 1, false>;
      warps = 16;
    } else if (groups == 1) {
      kernel = vector_x ? gemv_kernel<8, 2, 4, 1, true> : gemv_kernel<8, 2, 4, 1, false>;
    } else if (groups == 2) {
      // More activations per tile: 8 warps and 2 blocks per SM leave each thread 128 registers.
      kernel = vector_x ? gemv_kernel<8, 2, 2, 2, true> : gemv_kernel<8, 2, 2, 2, false>;
    } else {
      kernel = vector_x ? gemv_kernel<8, 2, 2, 4, true> : gemv_kernel<8, 2, 2, 4, false>;
    }
    const auto blocks = static_cast<unsigned>((p.shape.row_tiles() + rows - 1) / rows);
    launch_kernel("nvfp4 GEMV", kernel, dim3(blocks), dim3(warps * 32), 0, stream, p.dependent_launch, p, token0, pass);
    token0 += pass;
  }
}

void nvfp4_gemv_experts(const Nvfp4LinearParams& params, const Nvfp4ExpertGemv& g, cudaStream_t stream) {
  Nvfp4LinearParams p = params;
  p.tokens = 1;  // per row; the rows come from the routing
  nvfp4_check_params(p, "nvfp4 expert GEMV");
  require(!p.out_permuted, "writes its output in natural order only");
  require(p.x_partials == nullptr && p.residual == nullptr, "the norm prologue and residual epilogue are the dense GEMV's");
  require(g.active != nullptr && g.offsets != nullptr && g.tiles != nullptr && g.row_scale != nullptr, "null routing or expert table");
  require(g.num_experts > 0, "no experts");
  if (g.slots <= 0) return;
  require(g.slots <= g.num_experts && g.slots < 65536, "slots outside 1 .. min(num_experts, 65535)");
  // Block shapes (variant; 0 chooses): 1: 16 warps, one row tile; 2: 8 warps, one row tile, 4 blocks per
  // SM; 3: 8 warps, 2 row tiles; 4: 8 warps, 4 row tiles; 5: 4 warps, 2 row tiles; 6: 4 warps, 4 row tiles;
  // 7: 8 warps, one row tile, 4 tiles in flight per warp, 3 blocks per SM.
  const bool vector_x = aligned(params.x, 16) && p.x_stride % 8 == 0;
  // Every block first reads its expert and rows (two dependent L2 round trips) and keeps little DRAM work
  // after them, so what counts is how many blocks an SM holds at once: blocks of 8 warps, 4 per SM, for
  // gate/up (K = 2048), and for a short K (down, 768: 12 tiles) 4 warps over 2 row tiles, 3 tiles per
  // warp. H100, Qwen3-30B-A3B layer, 1 / 32 tokens: 28.3 / 267.1 µs with 16-warp blocks for both, 20.7 /
  // 162.7 with 8 warps, and the down shape alone a further 4 % faster (docs/performance.md, session 13).
  const int variant = p.variant != 0 ? p.variant : (p.shape.k_tiles() <= 16 ? 5 : 2);
  require(variant >= 1 && variant <= 7, "variant must be 0 to 7");
  using Kernel = void (*)(Nvfp4LinearParams, Nvfp4ExpertGemv);
  struct Shape {
    Kernel vector, scalar;
    int warps, rows;
  };
  static const Shape shapes[] = {
      {expert_gemv_kernel<16, 2, 2, true, 1>, expert_gemv_kernel<16, 2, 2, false, 1>, 16, 1},
      {expert_gemv_kernel<8, 2, 4, true, 1>, expert_gemv_kernel<8, 2, 4, false, 1>, 8, 1},
      {expert_gemv_kernel<8, 1, 2, true, 2>, expert_gemv_kernel<8, 1, 2, false, 2>, 8, 2},
      {expert_gemv_kernel<8, 1, 2, true, 4>, expert_gemv_kernel<8, 1, 2, false, 4>, 8, 4},
      {expert_gemv_kernel<4, 1, 4, true, 2>, expert_gemv_kernel<4, 1, 4, false, 2>, 4, 2},
      {expert_gemv_kernel<4, 1, 4, true, 4>, expert_gemv_kernel<4, 1, 4, false, 4>, 4, 4},
      {expert_gemv_kernel<8, 4, 3, true, 1>, expert_gemv_kernel<8, 4, 3, false, 1>, 8, 1},
  };
  const Shape& shape = shapes[variant - 1];
  const auto blocks = static_cast<unsigned>((p.shape.row_tiles() + shape.rows - 1) / shape.rows);
  launch_kernel("nvfp4 expert GEMV", vector_x ? shape.vector : shape.scalar, dim3(blocks, static_cast<unsigned>(g.slots)),
                dim3(shape.warps * 32), 0, stream, p.dependent_launch, p, g);
}

}  // namespace adallm::kernels
