// Paged attention kernels; see paged_attention.h.
#include "kernels/attention/paged_attention.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "core/error.h"
#include "kernels/attention/attention_common.cuh"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace adallm::kernels {
namespace {

using namespace attention;

constexpr int kChunkKeys = 16;  // keys per warp step: the M of one mma
// Two block shapes for the decode kernel. Narrow: 4 warps, each with a 3-deep cp.async ring. Wide: 16
// warps with 2-deep rings, for launches of few blocks (a small batch): there a block's fixed work — the
// query fragments, the merge of its warps, the partials of split-K and their merge by the last block —
// bounds the time, not DRAM (at 256 keys one narrow warp issues ~2,400 instructions for its one chunk of
// 16 keys), so one block of 16 warps per KV head takes 256 keys with no split-K merge through L2.
constexpr int kNarrowWarps = 4;
constexpr int kWideWarps = 16;
constexpr int ring_stages(int warps) { return warps == kNarrowWarps ? 3 : 2; }
constexpr int kCombineWarps = 4;  // combine_kernel: a warp per (token, head)
// At most this many splits are merged by the last of their blocks (an atomic count per token and KV
// head) rather than by a second kernel: one launch fewer per layer (the same time per call on the H100
// within noise: 32 × 8K keys in 2 splits 203–205 µs either way). More splits are merged by the combine
// kernel, a warp per head: one block's serial loop over many splits was slower (CUDA-core kernel, 1 × 8K
// keys in 64 splits: 55 → 97 µs). Wide blocks (512 threads) merge up to 16.
constexpr int kMaxBlockMergeSplits = 16;
constexpr int max_block_merge_splits(int warps) { return warps == kNarrowWarps ? 8 : kMaxBlockMergeSplits; }
constexpr int kMaxSplits = 32;  // the combine kernel's warp holds one split's weight per lane

// Blocks of the decode kernel (tokens alone of their sequence in the step).
int64_t decode_blocks(const PagedAttentionParams& p) {
  if (p.decode_blocks != nullptr || p.num_prefill_blocks > 0) return p.num_decode_blocks;
  return p.tokens;
}

// Splits of each (decode token, KV head)'s keys, given `slots` blocks resident on the GPU at once: about
// one wave of blocks (floor(slots / groups)), but no more than the keys want — splits of at least 512
// keys, or 4 of at least 64 for short contexts — and at most 32. Measured on the H100 (fp8, head_dim
// 128, 8 KV heads, 528 slots), every split count from 1 to 64: 64 sequences want 1 (8K keys: 380 µs,
// 94 % of copy), 32 want 2 (8K: 208 µs, 86 %; 1 or 3 splits: 261, 245 µs), 8 want 6–8, one sequence
// of 8K keys 16 (34 µs; 64 splits 54 µs), of 32K 32 (61 µs; 64: 73 µs), of 256–1K keys 4.
// Each token then takes as many of them as its own keys want (token_splits), so that a launch planned for
// more keys than a step holds (a CUDA graph replayed over growing contexts) cuts short contexts as an
// exact plan would; the blocks of the other splits return at once.
// Wide blocks (16 warps) want splits of 512 keys, two chunks per warp, both in flight at once in the
// warp's 2-deep ring: a warp's chunks are computed one after another, each ~2.5 µs at 1–4 chunks (H100,
// 1 sequence: 256 / 1K keys in one split 11.1 / 19.0 µs).
__host__ __device__ __forceinline__ int wanted_splits(int keys, int warps) {
  if (warps == kWideWarps) return max(1, (keys + 511) / 512);
  return max((keys + 511) / 512, min(4, (keys + 63) / 64));
}
__device__ __forceinline__ int token_splits(int keys, int max_splits, int warps) {
  return max(1, min(wanted_splits(keys, warps), max_splits));
}

int choose_splits(const PagedAttentionParams& p, int64_t slots, int warps) {
  const int64_t groups = decode_blocks(p) * p.kv_heads;
  if (groups <= 0) return 1;
  const int64_t wanted = wanted_splits(p.max_keys, warps);
  return static_cast<int>(std::clamp<int64_t>(slots / groups, 1, std::min<int64_t>(wanted, kMaxSplits)));
}

// The keys [lo, hi) a token at `position` sees.
__device__ __forceinline__ int2 token_keys(const PagedAttentionParams& p, int position) {
  return make_int2(p.sliding_window > 0 ? max(0, position - p.sliding_window + 1) : 0, position + 1);
}

// Shared memory: the queries' B fragments, then each warp's ring of (K, V) chunks of 16 rows. So
// that ldmatrix and the V word loads are free of bank conflicts, a row of a multiple of 8 16-byte parts
// keeps part j at j ^ (row % 8), other rows are padded by 16 bytes. Without the padding fp8 rows of
// head_dim 128 fit 4 blocks per SM instead of 3: 32 × 8K keys 218 → 206 µs, 64 × 8K 410 → 382 µs on the
// H100 (prefill unchanged). At the end the rings' space holds each warp's softmax state and output for the
// merge ([columns] m, [columns] l, [columns][head_dim] o per warp), then each warp's weight per column and
// the columns' merged m, l and output factor.
struct SmemLayout {
  int row_stride = 0;    // bytes per cached row
  bool swizzle = false;  // parts XOR-swizzled by row % 8 (else rows padded)
  int ring = 0;          // byte offset of warp 0's ring
  int ring_bytes = 0;    // per warp
  int bytes = 0;
};

SmemLayout smem_layout(int head_dim, bool fp8, int n_tiles, int warps) {
  SmemLayout l;
  const int row_bytes = head_dim * (fp8 ? 1 : 2);
  const int cols = 8 * n_tiles;
  l.swizzle = row_bytes % 128 == 0;
  l.row_stride = l.swizzle ? row_bytes : row_bytes + 16;
  l.ring = head_dim / 16 * n_tiles * 32 * 8;
  l.ring_bytes = ring_stages(warps) * 2 * kChunkKeys * l.row_stride;
  const int merge_bytes = (warps * cols * (head_dim + 2) + warps * cols + 3 * cols) * 4;
  l.bytes = l.ring + std::max(warps * l.ring_bytes, merge_bytes);
  return l;
}

// Byte `offset` of row `row` of a chunk's K or V rows in shared memory.
__device__ __forceinline__ int smem_offset(const SmemLayout& l, int row, int offset) {
  return attention::swizzled_offset(row, offset, l.row_stride, l.swizzle);
}

// The head dimension of O^T's accumulator row `row` (0..15) of m-tile `mt`. bf16 pages: natural order.
// fp8 pages: a lane reads 4 consecutive dims of a V row as one word and a 32-dim group spans two m-tiles
// (rows g and g + 8 of the even tile are dims 4g and 4g + 1, of the odd tile 4g + 2 and 4g + 3); a last
// group of 16 dims (head_dim % 32 == 16) reads 2 dims per lane (rows g, g + 8: dims 2g, 2g + 1).
template <bool kFp8>
__device__ __forceinline__ int output_dim(int mt, int row, int head_dim) {
  if constexpr (!kFp8) {
    return 16 * mt + row;
  } else {
    const int pairs = head_dim / 32;
    if (mt < 2 * pairs) return 32 * (mt / 2) + 4 * (row % 8) + 2 * (mt % 2) + row / 8;
    return 32 * pairs + 2 * (row % 8) + row / 8;
  }
}

// One block per (decode token, KV head, split); see paged_attention.h. kDim: head_dim rounded up to the
// instantiated size (registers are sized by it); kNTiles: n8 tiles of query columns (column j is query
// head j of the KV head); kWarps: kNarrowWarps or kWideWarps.
template <bool kFp8, int kDim, int kNTiles, int kWarps>
__global__ void __launch_bounds__(kWarps * 32) attention_kernel(PagedAttentionParams p, int splits, SmemLayout layout,
                                                                float* partial, int32_t* counters) {
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr int kThreads = kWarps * 32;
  constexpr int kTileKeys = kWarps * kChunkKeys;  // keys per block step (the unit of a split)
  constexpr int kStages = ring_stages(kWarps);
  constexpr int kCols = 8 * kNTiles;
  constexpr int kMTiles = kDim / 16;
  constexpr int kElem = kFp8 ? 1 : 2;
  pdl_begin();
  const int d = p.head_dim, ksteps = d / 16;
  const int group = p.heads / p.kv_heads;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, c = lane % 4;
  // 32-bit index arithmetic (the launch has fewer than 2^31 blocks): 64-bit divisions are long calls.
  const int s = static_cast<int>(blockIdx.x % static_cast<unsigned>(splits));
  const int bk = static_cast<int>(blockIdx.x / static_cast<unsigned>(splits));
  const int kvh = bk % p.kv_heads;
  const int qb = bk / p.kv_heads;
  const int64_t first_token = p.decode_blocks != nullptr ? p.decode_blocks[qb].first : qb;
  const int ncols = group;  // column j: query head kvh · group + j of the token
  // The token's keys, cut into its own number of splits (at most the launch's), of whole block steps.
  const int2 range = token_keys(p, p.positions[first_token]);
  const int lo = range.x, hi = range.y;
  const int my_splits = token_splits(hi - lo, splits, kWarps);
  if (s >= my_splits) return;
  const int per_split = ((hi - lo + my_splits - 1) / my_splits + kTileKeys - 1) / kTileKeys * kTileKeys;
  const int begin = lo + s * per_split;
  const int end = min(hi, begin + per_split);

  // Q^T as mma B fragments [kstep][n-tile][lane] in the k order the K fragments use: bf16 natural (b0 dims
  // 2c, 2c + 1; b1 dims 2c + 8, 2c + 9 of the k-step), fp8 pages as converted (b0 dims 4c, 4c + 1; b1
  // 4c + 2, 4c + 3), there in f16.
  uint2* q_frags = reinterpret_cast<uint2*>(smem);
  for (int i = tid; i < ksteps * kNTiles * 32; i += kThreads) {
    const int l = i % 32, nt = (i / 32) % kNTiles, kt = i / (32 * kNTiles);
    const int col = 8 * nt + l / 4, cc = l % 4;
    uint2 frag = make_uint2(0u, 0u);
    if (col < ncols) {
      const int h = kvh * group + col;
      const __nv_bfloat16* q = p.q + first_token * p.q_stride + static_cast<int64_t>(h) * d + 16 * kt;
      const int d0 = kFp8 ? 4 * cc : 2 * cc, d1 = kFp8 ? 4 * cc + 2 : 2 * cc + 8;
      const auto* q0 = reinterpret_cast<const __nv_bfloat162*>(q + d0);
      const auto* q1 = reinterpret_cast<const __nv_bfloat162*>(q + d1);
      if constexpr (kFp8) {
        const float2 f0 = __bfloat1622float2(*q0), f1 = __bfloat1622float2(*q1);
        frag = make_uint2(pack2<true>(f0.x, f0.y), pack2<true>(f1.x, f1.y));
      } else {
        frag = make_uint2(*reinterpret_cast<const uint32_t*>(q0), *reinterpret_cast<const uint32_t*>(q1));
      }
    }
    q_frags[i] = frag;
  }

  const int32_t* pages = p.page_tables + static_cast<int64_t>(p.seq_index[first_token]) * p.max_pages_per_seq;
  const int row_bytes = d * kElem, row_chunks = row_bytes / 16;
  uint8_t* ring = smem + layout.ring + warp * layout.ring_bytes;
  const auto k_stage = [&](int stage) { return ring + stage * 2 * kChunkKeys * layout.row_stride; };
  const auto v_stage = [&](int stage) { return k_stage(stage) + kChunkKeys * layout.row_stride; };
  const int chunks = end > begin ? (end - begin + kChunkKeys - 1) / kChunkKeys : 0;
  const int my_chunks = chunks > warp ? (chunks - warp + kWarps - 1) / kWarps : 0;
  const auto chunk_base = [&](int i) { return begin + kChunkKeys * (warp + kWarps * i); };

  // Brings chunk i's K and V rows into `stage` (rows past `end` zero-filled: their P is 0 and a stale
  // NaN would survive 0 · NaN) and commits the group.
  const auto* k_cache = static_cast<const uint8_t*>(p.k_cache);
  const auto* v_cache = static_cast<const uint8_t*>(p.v_cache);
  const auto load_chunk = [&](int i, int stage) {
    const int key = chunk_base(i) + (lane % kChunkKeys);
    int64_t offset = -1;
    if (key < end) {
      const int64_t slot = static_cast<int64_t>(pages[key / p.page_size]) * p.page_size + key % p.page_size;
      offset = (slot * p.kv_heads + kvh) * row_bytes;
    }
    for (int base = 0; base < kChunkKeys * row_chunks; base += 32) {
      const int item = base + lane;
      const int row = (item / row_chunks) % kChunkKeys, part = item % row_chunks;
      const int64_t row_offset = __shfl_sync(0xffffffffu, offset, row);
      if (item < kChunkKeys * row_chunks) {
        const bool valid = row_offset >= 0;
        const int64_t src = valid ? row_offset + 16 * part : 0;
        const int to = smem_offset(layout, row, 16 * part);
        cp_async16(k_stage(stage) + to, k_cache + src, valid);
        cp_async16(v_stage(stage) + to, v_cache + src, valid);
      }
    }
    cp_async_commit();
  };

  const float score_scale = p.scale * (kFp8 ? p.k_scale : 1.0f) * kLog2e;
  float m_run[kNTiles][2], l_run[kNTiles][2];
  float acc[kMTiles][kNTiles][4];
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt) {
    m_run[nt][0] = m_run[nt][1] = -INFINITY;
    l_run[nt][0] = l_run[nt][1] = 0.0f;
#pragma unroll
    for (int mt = 0; mt < kMTiles; ++mt) acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;
  }

#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < my_chunks) {
      load_chunk(i, i);
    } else {
      cp_async_commit();
    }
  }
  __syncthreads();  // q_frags written
  const int r8 = lane % 8, quad = lane / 8;
  for (int i = 0; i < my_chunks; ++i) {
    if (i + kStages - 1 < my_chunks) {
      load_chunk(i + kStages - 1, (i + kStages - 1) % kStages);
    } else {
      cp_async_commit();
    }
    cp_async_wait<kStages - 1>();
    __syncwarp();
    const int stage = i % kStages;
    const uint8_t* k_rows = k_stage(stage);
    const uint8_t* v_rows = v_stage(stage);
    const int base = chunk_base(i);

    // S^T[key][column] = K · Q^T over head_dim.
    float sacc[kNTiles][4];
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) sacc[nt][0] = sacc[nt][1] = sacc[nt][2] = sacc[nt][3] = 0.0f;
    if constexpr (kFp8) {
      // One ldmatrix.x4 gives two k-steps: matrices (keys 0-7 | 8-15) × (dims 16kt.. | 16(kt+1)..), each
      // lane's word 4 codes = dims 4c..4c+3 of key g (or g + 8).
#pragma unroll
      for (int kt = 0; kt < kMTiles; kt += 2) {
        if (kt >= ksteps) break;
        uint32_t x[4];
        const uint8_t* address = k_rows + smem_offset(layout, r8 + 8 * (quad & 1), 16 * kt + 16 * (quad >> 1));
        if (kt + 1 < ksteps) {
          ldmatrix_x4(x, address);
        } else {
          ldmatrix_x2(x, address);
        }
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          if (kt + half >= ksteps) break;
          const uint32_t a[4] = {lo_e4m3x2(x[2 * half]), lo_e4m3x2(x[2 * half + 1]), hi_e4m3x2(x[2 * half]),
                                 hi_e4m3x2(x[2 * half + 1])};
#pragma unroll
          for (int nt = 0; nt < kNTiles; ++nt) {
            const uint2 b = q_frags[((kt + half) * kNTiles + nt) * 32 + lane];
            mma16816<true>(sacc[nt], a, b.x, b.y);
          }
        }
      }
    } else {
#pragma unroll
      for (int kt = 0; kt < kMTiles; ++kt) {
        if (kt >= ksteps) break;
        uint32_t a[4];
        ldmatrix_x4(a, k_rows + smem_offset(layout, r8 + 8 * (quad & 1), 32 * kt + 16 * (quad >> 1)));
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) {
          const uint2 b = q_frags[(kt * kNTiles + nt) * 32 + lane];
          mma16816<false>(sacc[nt], a, b.x, b.y);
        }
      }
    }

    // Online softmax per column (in log2 units); this lane holds keys g and g + 8 of columns 2c, 2c + 1.
    uint32_t p_frag[kNTiles][2];
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt) {
      float pr[4];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const bool v0 = base + g < end && 8 * nt + 2 * c + j < ncols;
        const bool v1 = base + g + 8 < end && 8 * nt + 2 * c + j < ncols;
        const float s0 = v0 ? sacc[nt][j] * score_scale : -INFINITY;
        const float s1 = v1 ? sacc[nt][2 + j] * score_scale : -INFINITY;
        float mx = fmaxf(s0, s1);
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 4));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 8));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
        const float m_new = fmaxf(m_run[nt][j], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = exp2f(m_run[nt][j] - m_use);
        pr[j] = exp2f(s0 - m_use);
        pr[2 + j] = exp2f(s1 - m_use);
        l_run[nt][j] = l_run[nt][j] * corr + pr[j] + pr[2 + j];
        m_run[nt][j] = m_new;
#pragma unroll
        for (int mt = 0; mt < kMTiles; ++mt) {
          acc[mt][nt][j] *= corr;
          acc[mt][nt][2 + j] *= corr;
        }
      }
      // (key g | g + 8, columns 2c, 2c + 1) transposed to the B layout (keys 2c, 2c + 1 | + 8, column g).
      p_frag[nt][0] = movmatrix_trans(pack2<kFp8>(pr[0], pr[1]));
      p_frag[nt][1] = movmatrix_trans(pack2<kFp8>(pr[2], pr[3]));
    }

    // O^T[dim][column] += V^T · P^T over the chunk's 16 keys.
    if constexpr (kFp8) {
      const int pairs = d / 32;
      const auto word = [&](int row, int offset) {
        return *reinterpret_cast<const uint32_t*>(v_rows + smem_offset(layout, row, offset));
      };
      const auto half_word = [&](int row, int offset) {
        return static_cast<uint32_t>(*reinterpret_cast<const uint16_t*>(v_rows + smem_offset(layout, row, offset)));
      };
#pragma unroll
      for (int mt = 0; mt < kMTiles; mt += 2) {
        if (mt >= ksteps) break;
        if (mt / 2 < pairs) {
          const int offset = 16 * mt + 4 * g;  // dims 32·(mt/2) + 4g ..+3
          const uint32_t w0 = word(2 * c, offset), w1 = word(2 * c + 1, offset);
          const uint32_t w8 = word(2 * c + 8, offset), w9 = word(2 * c + 9, offset);
          const uint32_t x01 = byte_perm(w0, w1, 0x5140), x23 = byte_perm(w0, w1, 0x7362);
          const uint32_t y01 = byte_perm(w8, w9, 0x5140), y23 = byte_perm(w8, w9, 0x7362);
          const uint32_t a0[4] = {lo_e4m3x2(x01), hi_e4m3x2(x01), lo_e4m3x2(y01), hi_e4m3x2(y01)};
          const uint32_t a1[4] = {lo_e4m3x2(x23), hi_e4m3x2(x23), lo_e4m3x2(y23), hi_e4m3x2(y23)};
#pragma unroll
          for (int nt = 0; nt < kNTiles; ++nt) {
            mma16816<true>(acc[mt][nt], a0, p_frag[nt][0], p_frag[nt][1]);
            mma16816<true>(acc[mt + 1][nt], a1, p_frag[nt][0], p_frag[nt][1]);
          }
        } else {  // the last 16 dims: 2 per lane
          const int offset = 32 * pairs + 2 * g;
          const uint32_t w0 = half_word(2 * c, offset), w1 = half_word(2 * c + 1, offset);
          const uint32_t w8 = half_word(2 * c + 8, offset), w9 = half_word(2 * c + 9, offset);
          const uint32_t x = byte_perm(w0, w1, 0x5140), y = byte_perm(w8, w9, 0x5140);
          const uint32_t a[4] = {lo_e4m3x2(x), hi_e4m3x2(x), lo_e4m3x2(y), hi_e4m3x2(y)};
#pragma unroll
          for (int nt = 0; nt < kNTiles; ++nt) mma16816<true>(acc[mt][nt], a, p_frag[nt][0], p_frag[nt][1]);
        }
      }
    } else {
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        if (mt >= ksteps) break;
        uint32_t a[4];
        ldmatrix_x4_trans(a, v_rows + smem_offset(layout, r8 + 8 * (quad >> 1), 32 * mt + 16 * (quad & 1)));
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) mma16816<false>(acc[mt][nt], a, p_frag[nt][0], p_frag[nt][1]);
      }
    }
    __syncwarp();  // every lane is done with this stage before it is refilled
  }
  cp_async_wait<0>();

  // Merge the warps: each writes its state and output into its ring, then the block combines them.
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      l_run[nt][j] += __shfl_xor_sync(0xffffffffu, l_run[nt][j], 4);
      l_run[nt][j] += __shfl_xor_sync(0xffffffffu, l_run[nt][j], 8);
      l_run[nt][j] += __shfl_xor_sync(0xffffffffu, l_run[nt][j], 16);
    }
  }
  __syncthreads();  // every warp is done with its ring
  const int warp_floats = kCols * (d + 2);
  float* merged = reinterpret_cast<float*>(smem + layout.ring);
  float* mine = merged + warp * warp_floats;  // [kCols] m, [kCols] l, [kCols][d] o
#pragma unroll
  for (int nt = 0; nt < kNTiles; ++nt) {
#pragma unroll
    for (int j = 0; j < 2; ++j) {
      const int col = 8 * nt + 2 * c + j;
      if (g == 0) {
        mine[col] = m_run[nt][j];
        mine[kCols + col] = l_run[nt][j];
      }
#pragma unroll
      for (int mt = 0; mt < kMTiles; ++mt) {
        if (mt >= ksteps) break;
        mine[2 * kCols + col * d + output_dim<kFp8>(mt, g, d)] = acc[mt][nt][j];
        mine[2 * kCols + col * d + output_dim<kFp8>(mt, g + 8, d)] = acc[mt][nt][2 + j];
      }
    }
  }
  // Each column's weight per warp (0 for a warp without keys of it), its merged m and l, and the factor
  // of its output: 1 / l for a token of one split, else the partial stays unnormalized.
  float* weight = merged + kWarps * warp_floats;  // [kWarps][kCols]
  float* col_m = weight + kWarps * kCols;
  float* col_l = col_m + kCols;
  float* col_factor = col_l + kCols;
  const float v_scale = kFp8 ? p.v_scale : 1.0f;
  __syncthreads();
  if (tid < ncols) {
    float m = -INFINITY;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) m = fmaxf(m, merged[w * warp_floats + tid]);
    float l = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) {
      const float wt = m == -INFINITY ? 0.0f : exp2f(merged[w * warp_floats + tid] - m);
      weight[w * kCols + tid] = wt;
      l += wt * merged[w * warp_floats + kCols + tid];
    }
    col_m[tid] = m;  // log2 units; -inf (and l = 0) for a split with none of the token's keys
    col_l[tid] = l;
    col_factor[tid] = my_splits == 1 ? v_scale / l : v_scale;
  }
  __syncthreads();
  for (int i = tid; i < ncols * d; i += kThreads) {
    const int col = i / d, dim = i % d;
    float o = 0.0f;
#pragma unroll
    for (int w = 0; w < kWarps; ++w) o += weight[w * kCols + col] * merged[w * warp_floats + 2 * kCols + col * d + dim];
    o *= col_factor[col];
    const int64_t t = first_token;
    const int h = kvh * group + col;
    if (my_splits == 1) {
      p.out[t * p.out_stride + static_cast<int64_t>(h) * d + dim] = __float2bfloat16_rn(o);
    } else {
      float* part = partial + ((t * p.heads + h) * splits + s) * (d + 2);
      if (dim == 0) {
        part[0] = col_m[col];
        part[1] = col_l[col];
      }
      part[2 + dim] = o;
    }
  }
  if (my_splits == 1 || counters == nullptr) return;
  // Few splits: the last block of this (token, KV head) to finish merges them (no second kernel).
  // Its scratch in shared memory reuses the rings (every warp is past its ring).
  int* last = reinterpret_cast<int*>(smem + layout.ring);
  float* split_m = reinterpret_cast<float*>(smem + layout.ring) + 4;
  float* split_w = split_m + kCols * kMaxBlockMergeSplits;
  __syncthreads();  // everyone is done reading `merged`
  __threadfence();  // this block's partials are visible device-wide before it is counted
  __syncthreads();
  if (tid == 0) {
    *last = atomicAdd(counters + bk, 1) == my_splits - 1;
    if (*last) counters[bk] = 0;  // left zero for the next call
  }
  __syncthreads();
  if (!*last) return;
  __threadfence();
  // Partials are read through L2 (other blocks wrote them): first every (column, split)'s m and l at
  // once, then the weights, then each output from all splits' values, the loads independent.
  const auto parts_of = [&](int col) { return partial + (first_token * p.heads + kvh * group + col) * splits * (d + 2); };
  const int n = my_splits;
  for (int i = tid; i < ncols * n; i += kThreads) {
    const float* part = parts_of(i / n) + (i % n) * (d + 2);
    split_m[i] = __ldcg(part);
    split_w[i] = __ldcg(part + 1);
  }
  __syncthreads();
  if (tid < ncols) {
    float m = -INFINITY, l = 0.0f;
    for (int j = 0; j < n; ++j) m = fmaxf(m, split_m[tid * n + j]);
    for (int j = 0; j < n; ++j) {
      const float ls = split_w[tid * n + j];
      const float w = ls == 0.0f ? 0.0f : exp2f(split_m[tid * n + j] - m);  // a split without keys: 0
      split_w[tid * n + j] = w;
      l += ls * w;
    }
    for (int j = 0; j < n; ++j) split_w[tid * n + j] /= l;
  }
  __syncthreads();
  for (int i = tid; i < ncols * d; i += kThreads) {
    const int col = i / d, dim = i % d;
    const float* parts = parts_of(col) + 2 + dim;
    float o = 0.0f;
#pragma unroll
    for (int j = 0; j < max_block_merge_splits(kWarps); ++j) {
      if (j < n) o += split_w[col * n + j] * __ldcg(parts + j * (d + 2));
    }
    p.out[first_token * p.out_stride + static_cast<int64_t>(kvh * group + col) * d + dim] = __float2bfloat16_rn(o);
  }
}

// One warp per (token, head): merges its splits' partial softmaxes (m in log2 units; at most 32 splits,
// one per lane for the weights).
__global__ void combine_kernel(PagedAttentionParams p, int64_t decode_count, int splits, int block_warps,
                               const float* partial) {
  pdl_begin();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t bh = static_cast<int64_t>(blockIdx.x) * kCombineWarps + warp;
  if (bh >= decode_count * p.heads) return;
  const int64_t t = p.decode_blocks != nullptr ? p.decode_blocks[bh / p.heads].first : bh / p.heads;
  const int h = static_cast<int>(bh % p.heads);
  const int d = p.head_dim;
  const int2 range = token_keys(p, p.positions[t]);
  const int n = token_splits(range.y - range.x, splits, block_warps);
  if (n == 1) return;  // the attention kernel wrote this token's output
  const float* parts = partial + (t * p.heads + h) * splits * (d + 2);
  float m = -INFINITY, l = 0.0f;
  if (lane < n) {
    m = parts[lane * (d + 2)];
    l = parts[lane * (d + 2) + 1];
  }
  const float m_all = warp_max(m);
  float w = l == 0.0f ? 0.0f : exp2f(m - m_all);  // a split without keys (and lanes past the splits): 0
  w /= warp_sum(l * w);
  __nv_bfloat16* out = p.out + t * p.out_stride + static_cast<int64_t>(h) * d;
  for (int i = lane; i < d; i += 32) {
    float o = 0.0f;
    for (int j = 0; j < n; ++j) o += __shfl_sync(0xffffffffu, w, j) * parts[j * (d + 2) + 2 + i];
    out[i] = __float2bfloat16_rn(o);
  }
}

using AttentionKernel = void (*)(PagedAttentionParams, int, SmemLayout, float*, int32_t*);

template <bool kFp8, int kNTiles, int kWarps>
AttentionKernel pick_dim(int head_dim) {
  if (head_dim <= 32) return attention_kernel<kFp8, 32, kNTiles, kWarps>;
  if (head_dim <= 64) return attention_kernel<kFp8, 64, kNTiles, kWarps>;
  if (head_dim <= 128) return attention_kernel<kFp8, 128, kNTiles, kWarps>;
  if constexpr (kWarps == kNarrowWarps) return attention_kernel<kFp8, 256, kNTiles, kWarps>;
  return nullptr;  // wide blocks: 16 warps cannot hold head_dim 256's accumulators in 128 registers
}

template <int kWarps>
AttentionKernel pick_kernel(bool fp8, int n_tiles, int head_dim) {
  if (fp8) return n_tiles == 1 ? pick_dim<true, 1, kWarps>(head_dim) : pick_dim<true, 2, kWarps>(head_dim);
  return n_tiles == 1 ? pick_dim<false, 1, kWarps>(head_dim) : pick_dim<false, 2, kWarps>(head_dim);
}

AttentionKernel pick_kernel(bool fp8, int n_tiles, int head_dim, int warps) {
  return warps == kWideWarps ? pick_kernel<kWideWarps>(fp8, n_tiles, head_dim)
                             : pick_kernel<kNarrowWarps>(fp8, n_tiles, head_dim);
}

// n8 tiles of query columns a block needs.
int n_tiles(const PagedAttentionParams& p) { return p.heads / p.kv_heads > 8 ? 2 : 1; }

// What one call launches: the kernel, its block of warps, its shared memory, and the splits.
struct Plan {
  AttentionKernel kernel = nullptr;
  int warps = kNarrowWarps;
  SmemLayout layout;
  int splits = 1;
};

// The most dynamic shared memory a block of the current device may ask for.
int max_block_smem() {
  int device = 0, bytes = 0;
  ADALLM_CUDA_CHECK(cudaGetDevice(&device));
  ADALLM_CUDA_CHECK(cudaDeviceGetAttribute(&bytes, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  return bytes;
}

// The kernel of `warps` warps for p, its layout, and its splits over the SMs; kernel null when that block
// shape does not exist for p's head_dim or does not fit the shared memory.
Plan plan_for(const PagedAttentionParams& p, int multiprocessors, int warps) {
  static const int smem_limit = [] {
    // Up to 206 KB (bf16 rows of head_dim 256, two query tiles), and the largest carveout, so that as
    // many blocks as the shared memory allows share an SM.
    const int limit = max_block_smem();
    for (const int w : {kNarrowWarps, kWideWarps}) {
      for (const bool fp8 : {false, true}) {
        for (const int t : {1, 2}) {
          for (const int dim : {32, 64, 128, 256}) {
            const AttentionKernel k = pick_kernel(fp8, t, dim, w);
            const int bytes = smem_layout(dim, fp8, t, w).bytes;
            if (k == nullptr || bytes > limit) continue;
            ADALLM_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes));
            ADALLM_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
          }
        }
      }
    }
    return limit;
  }();
  Plan plan;
  const int tiles = n_tiles(p);
  plan.warps = warps;
  plan.layout = smem_layout(p.head_dim, p.fp8, tiles, warps);
  plan.kernel = pick_kernel(p.fp8, tiles, p.head_dim, warps);
  if (plan.kernel == nullptr || plan.layout.bytes > smem_limit) {
    plan.kernel = nullptr;
    return plan;
  }
  // Blocks per SM of this kernel at this shared memory size, asked once per pair.
  static std::mutex mutex;
  static std::map<std::pair<AttentionKernel, int>, int> resident;
  int per_sm = 0;
  {
    const std::lock_guard<std::mutex> lock(mutex);
    const auto key = std::make_pair(plan.kernel, plan.layout.bytes);
    const auto it = resident.find(key);
    if (it != resident.end()) {
      per_sm = it->second;
    } else {
      ADALLM_CUDA_CHECK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, plan.kernel, warps * 32, plan.layout.bytes));
      resident.emplace(key, per_sm);
    }
  }
  plan.splits = choose_splits(p, int64_t{std::max(1, per_sm)} * multiprocessors, warps);
  return plan;
}

// Wide blocks where the step's (token, KV head) groups are no more than the SMs (a small batch: its time
// is each block's fixed work and each warp's chain of chunks), when they exist for p; p.decode_warps
// forces one shape. H100, fp8, 8 KV heads, µs narrow → wide: 1 × 256 keys 16.7 → 11.5, 1 × 8K 32.2 →
// 22.5, 4 × 4K 29.4 → 24.2, 16 × 1K 27.6 → 21.5, 16 × 8K 110.8 → 111.9; 32 sequences 3–6 % slower.
Plan plan(const PagedAttentionParams& p, int multiprocessors) {
  if (p.decode_warps == kNarrowWarps) return plan_for(p, multiprocessors, kNarrowWarps);
  const Plan wide = plan_for(p, multiprocessors, kWideWarps);
  if (p.decode_warps == kWideWarps) {
    if (wide.kernel == nullptr) {
      throw Error("paged_attention kernel: no 16-warp decode blocks for head_dim " + std::to_string(p.head_dim) +
                  (p.fp8 ? " with fp8" : " with bf16") + " pages on this GPU (head_dim ≤ 128 and shared memory)");
    }
    return wide;
  }
  if (wide.kernel != nullptr && decode_blocks(p) * p.kv_heads <= multiprocessors) return wide;
  return plan_for(p, multiprocessors, kNarrowWarps);
}

}  // namespace

bool paged_attention_wide_blocks(int head_dim, bool fp8, int group) {
  PagedAttentionParams p;
  p.head_dim = head_dim;
  p.fp8 = fp8;
  p.heads = group;
  p.kv_heads = 1;
  p.tokens = 1;
  p.max_keys = 1;
  return plan_for(p, 1, kWideWarps).kernel != nullptr;
}

int64_t paged_attention_counters(const PagedAttentionParams& p) {
  return p.tokens > 0 && p.kv_heads > 0 ? decode_blocks(p) * p.kv_heads : 0;
}

int64_t paged_attention_workspace_bytes(const PagedAttentionParams& p, int multiprocessors) {
  if (p.tokens <= 0 || p.heads <= 0 || p.kv_heads <= 0 || p.max_keys <= 0 || decode_blocks(p) == 0) return 0;
  const int splits = plan(p, multiprocessors).splits;
  if (splits == 1) return 0;
  return p.tokens * p.heads * splits * (p.head_dim + 2) * static_cast<int64_t>(sizeof(float));
}

void paged_attention(const PagedAttentionParams& p, int multiprocessors, void* workspace, cudaStream_t stream) {
  const auto bad = [](const std::string& what) { throw Error("paged_attention kernel: " + what); };
  if (p.head_dim <= 0 || p.head_dim % 16 != 0 || p.head_dim > kAttentionMaxHeadDim) {
    bad("head_dim " + std::to_string(p.head_dim) + " must be a multiple of 16 and at most " +
        std::to_string(kAttentionMaxHeadDim));
  }
  if (p.heads <= 0 || p.kv_heads <= 0 || p.heads % p.kv_heads != 0 || p.heads / p.kv_heads > kAttentionMaxGroup) {
    bad("heads must be a multiple of kv_heads, at most " + std::to_string(kAttentionMaxGroup) + " per KV head");
  }
  if (p.page_size <= 0 || p.max_keys <= 0) bad("page_size and max_keys must be > 0");
  if (p.decode_warps != 0 && p.decode_warps != 4 && p.decode_warps != 16) {
    bad("decode_warps " + std::to_string(p.decode_warps) + " must be 0 (chosen per launch), 4 or 16");
  }
  if (!p.q || !p.out || !p.k_cache || !p.v_cache || !p.positions || !p.seq_index || !p.page_tables) bad("null pointer");
  const auto check_list = [&](const AttentionQueryBlock* list, int64_t n, const char* what) {
    if (n < 0 || n > p.tokens || (n > 0 && list == nullptr)) {
      bad(std::string(what) + ": " + std::to_string(n) + " blocks over " + std::to_string(p.tokens) + " tokens");
    }
  };
  check_list(p.decode_blocks, p.num_decode_blocks, "decode_blocks");
  check_list(p.prefill_blocks, p.num_prefill_blocks, "prefill_blocks");
  if (p.tokens <= 0) return;
  attention::prefill_attention(p, stream);
  const int64_t decode_count = decode_blocks(p);
  if (decode_count == 0) return;
  const Plan launch = plan(p, multiprocessors);
  const int splits = launch.splits;
  if (splits > 1 && workspace == nullptr) bad("needs a workspace of paged_attention_workspace_bytes()");
  const int64_t blocks = decode_count * p.kv_heads * splits;
  if (blocks >= (int64_t{1} << 31)) bad("too many tokens for one launch");
  // Up to kMaxBlockMergeSplits splits merge in their last block when the caller gave counters.
  const bool block_merge = splits > 1 && splits <= max_block_merge_splits(launch.warps) && p.split_counters != nullptr;
  launch_dependent("paged_attention", launch.kernel, dim3(static_cast<unsigned>(blocks)), dim3(launch.warps * 32),
                   static_cast<size_t>(launch.layout.bytes), stream, p, splits, launch.layout,
                   static_cast<float*>(workspace), block_merge ? p.split_counters : nullptr);
  if (splits > 1 && !block_merge) {
    const int64_t heads = decode_count * p.heads;
    launch_dependent("paged_attention combine", combine_kernel,
                     dim3(static_cast<unsigned>((heads + kCombineWarps - 1) / kCombineWarps)), dim3(kCombineWarps * 32), 0,
                     stream, p, decode_count, splits, launch.warps, static_cast<const float*>(workspace));
  }
}

}  // namespace adallm::kernels
