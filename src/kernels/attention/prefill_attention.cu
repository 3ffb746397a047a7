// Prefill attention: causal flash attention of a sequence's new tokens over its paged KV cache.
//
// One block per (prefill block, KV head): the block's 128 query rows (64 at head_dim 256) are (token,
// head) pairs of the KV head's query heads for up to 128 / group consecutive tokens of one sequence, 32
// rows per warp as two m16 tiles that share every K and V fragment (16 at head_dim 256: the accumulators
// would not fit twice) — queries along the MMA's M, keys along N, as in FlashAttention-2. The block walks
// its keys in tiles of 32 (64 at head_dim 256): cp.async brings each tile's K and V rows into a 3-stage
// ring; fp8 tiles are converted once per block into f16 tiles (each code converted once for all the
// block's rows, not once per warp), bf16 tiles are used in place. Per tile each warp computes S = Q·K^T (Q and K by ldmatrix), an online softmax per row
// (in log2 units, fp32), and O += P·V with P straight from the S accumulators and V by ldmatrix.trans.
#include <algorithm>
#include <climits>
#include <string>

#include "core/error.h"
#include "kernels/attention/attention_common.cuh"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace adallm::kernels::attention {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kStages = 3;

// m16 row tiles per warp: two up to head_dim 128, one above. Rows per block and keys per tile follow
// (the S accumulators stay at 32 registers).
constexpr int m_tiles(int head_dim) { return head_dim <= 128 ? 2 : 1; }
constexpr int block_rows(int m_tiles) { return 16 * kWarps * m_tiles; }
constexpr int tile_keys(int m_tiles) { return 64 / m_tiles; }

// Shared memory: the Q tile (operand element rows), the ring of raw K/V tiles as the cache holds them,
// and for fp8 the converted f16 K and V tiles. Operand rows (2-byte elements) are XOR-swizzled when a
// row is a multiple of 128 bytes, else padded by 16 bytes; raw fp8 rows are plain (only the conversion
// pass reads them, 16 consecutive bytes per thread).
struct PrefillLayout {
  int row_stride = 0;  // bytes per operand row (Q, bf16 raw, f16 converted)
  bool swizzle = false;
  int raw_stride = 0;  // bytes per raw cached row in the ring
  int raw = 0;         // offset of the ring: kStages × (K tile, V tile)
  int raw_tile = 0;    // bytes of one raw K (or V) tile
  int converted = 0;   // offset of the f16 K tile (V follows); fp8 only
  int bytes = 0;
};

PrefillLayout prefill_layout(int head_dim, bool fp8) {
  PrefillLayout l;
  const int rows = block_rows(m_tiles(head_dim)), keys = tile_keys(m_tiles(head_dim));
  const int row_bytes = 2 * head_dim;
  l.swizzle = row_bytes % 128 == 0;
  l.row_stride = l.swizzle ? row_bytes : row_bytes + 16;
  l.raw_stride = fp8 ? head_dim : l.row_stride;
  l.raw = rows * l.row_stride;
  l.raw_tile = keys * l.raw_stride;
  l.converted = l.raw + kStages * 2 * l.raw_tile;
  l.bytes = l.converted + (fp8 ? 2 * keys * l.row_stride : 0);
  return l;
}

// kFp8: the cache holds e4m3 codes (operands f16) or bf16 (operands bf16). kDim: head_dim rounded up to
// the instantiated size (the accumulators are sized by it).
template <bool kFp8, int kDim>
__global__ void __launch_bounds__(kThreads) prefill_kernel(PagedAttentionParams p, PrefillLayout layout) {
  extern __shared__ __align__(16) uint8_t smem[];
  constexpr bool kF16 = kFp8;
  constexpr int kElem = kFp8 ? 1 : 2;  // bytes per cached value
  constexpr int kDimTiles = kDim / 8;  // n8 tiles of O
  constexpr int kM = m_tiles(kDim), kRows = block_rows(kM), kTileKeys = tile_keys(kM);
  constexpr int kKeyTiles = kTileKeys / 8;  // n8 tiles of S
  __shared__ int block_lo, block_hi;
  pdl_begin();
  const int d = p.head_dim, ksteps = d / 16;
  const int group = p.heads / p.kv_heads;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32, g = lane / 4, c = lane % 4;
  const int kvh = static_cast<int>(blockIdx.x % p.kv_heads);
  const AttentionQueryBlock qb = p.prefill_blocks[blockIdx.x / p.kv_heads];
  const int rows = qb.count * group;
  const auto key_range = [&](int row, int& first, int& end) {  // empty for a padding row
    first = end = 0;
    if (row >= rows) return;
    const int position = p.positions[qb.first + row / group];
    first = p.sliding_window > 0 ? max(0, position - p.sliding_window + 1) : 0;
    end = position + 1;
  };
  if (tid == 0) {
    block_lo = INT_MAX;
    block_hi = 0;
  }
  __syncthreads();
  if (tid < qb.count) {
    int first, end;
    key_range(tid * group, first, end);
    atomicMin(&block_lo, first);
    atomicMax(&block_hi, end);
  }
  // This lane's rows: g and g + 8 of each of the warp's m-tiles (rows 16 · (kM · warp + mi) + ...).
  int row_first[kM][2], row_end[kM][2];
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
    for (int r = 0; r < 2; ++r) key_range(16 * (kM * warp + mi) + g + 8 * r, row_first[mi][r], row_end[mi][r]);
  }

  // Q into shared memory as operands (f16 for fp8 pages: the K scale goes into the softmax scale).
  for (int i = tid; i < kRows * (d / 8); i += kThreads) {
    const int row = i / (d / 8), part = i % (d / 8);
    uint4 v = make_uint4(0u, 0u, 0u, 0u);
    if (row < rows) {
      const __nv_bfloat16* q = p.q + (qb.first + row / group) * p.q_stride +
                               static_cast<int64_t>(kvh * group + row % group) * d + 8 * part;
      v = *reinterpret_cast<const uint4*>(q);
      if constexpr (kF16) {
        uint32_t* w = &v.x;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const float2 f = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&w[j]));
          w[j] = pack2<true>(f.x, f.y);
        }
      }
    }
    *reinterpret_cast<uint4*>(smem + swizzled_offset(row, 16 * part, layout.row_stride, layout.swizzle)) = v;
  }
  __syncthreads();  // block_lo / block_hi and Q are in
  const int lo = block_lo, hi = block_hi;
  const int tiles = (hi - lo + kTileKeys - 1) / kTileKeys;
  const int32_t* pages = p.page_tables + static_cast<int64_t>(p.seq_index[qb.first]) * p.max_pages_per_seq;
  const int row_bytes = d * kElem, row_parts = row_bytes / 16;
  const auto* k_cache = static_cast<const uint8_t*>(p.k_cache);
  const auto* v_cache = static_cast<const uint8_t*>(p.v_cache);
  const auto raw_k = [&](int stage) { return smem + layout.raw + stage * 2 * layout.raw_tile; };
  const auto raw_offset = [&](int row, int offset) {
    return kFp8 ? row * layout.raw_stride + offset : swizzled_offset(row, offset, layout.row_stride, layout.swizzle);
  };
  // Tile t's K and V rows into `stage` (keys past `hi` zero-filled), one commit group.
  const auto load_tile = [&](int t, int stage) {
    uint8_t* k_dst = raw_k(stage);
    uint8_t* v_dst = k_dst + layout.raw_tile;
    for (int i = tid; i < kTileKeys * row_parts; i += kThreads) {
      const int row = i / row_parts, part = i % row_parts;
      const int key = lo + kTileKeys * t + row;
      const bool valid = key < hi;
      int64_t src = 0;
      if (valid) {
        const int64_t slot = static_cast<int64_t>(pages[key / p.page_size]) * p.page_size + key % p.page_size;
        src = (slot * p.kv_heads + kvh) * row_bytes + 16 * part;
      }
      const int to = raw_offset(row, 16 * part);
      cp_async16(k_dst + to, k_cache + src, valid);
      cp_async16(v_dst + to, v_cache + src, valid);
    }
    cp_async_commit();
  };

  const float score_scale = p.scale * (kFp8 ? p.k_scale : 1.0f) * kLog2e;
  // This warp's keys: the union of its rows' ranges (tiles outside it are skipped).
  int warp_lo = INT_MAX, warp_hi = 0;
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      if (row_end[mi][r] == 0) continue;  // a padding row
      warp_lo = min(warp_lo, row_first[mi][r]);
      warp_hi = max(warp_hi, row_end[mi][r]);
    }
  }
  for (int o = 1; o < 32; o <<= 1) {
    warp_lo = min(warp_lo, __shfl_xor_sync(0xffffffffu, warp_lo, o));
    warp_hi = max(warp_hi, __shfl_xor_sync(0xffffffffu, warp_hi, o));
  }
  float m_run[kM][2], l_run[kM][2];
  float acc[kM][kDimTiles][4];
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
    m_run[mi][0] = m_run[mi][1] = -INFINITY;
    l_run[mi][0] = l_run[mi][1] = 0.0f;
#pragma unroll
    for (int n = 0; n < kDimTiles; ++n) acc[mi][n][0] = acc[mi][n][1] = acc[mi][n][2] = acc[mi][n][3] = 0.0f;
  }

#pragma unroll
  for (int i = 0; i < kStages - 1; ++i) {
    if (i < tiles) {
      load_tile(i, i);
    } else {
      cp_async_commit();
    }
  }
  for (int t = 0; t < tiles; ++t) {
    cp_async_wait<kStages - 2>();
    __syncthreads();  // tile t is in for everyone; everyone is done with tile t - 1
    if (t + kStages - 1 < tiles) {
      load_tile(t + kStages - 1, (t + kStages - 1) % kStages);
    } else {
      cp_async_commit();
    }
    const int stage = t % kStages;
    const uint8_t* k_tile = raw_k(stage);
    const uint8_t* v_tile = k_tile + layout.raw_tile;
    if constexpr (kFp8) {
      // Convert the tile once for the block: 16 codes per thread and step into two f16 parts.
      uint8_t* k_out = smem + layout.converted;
      uint8_t* v_out = k_out + kTileKeys * layout.row_stride;
      for (int i = tid; i < 2 * kTileKeys * row_parts; i += kThreads) {
        const bool is_v = i >= kTileKeys * row_parts;
        const int j = is_v ? i - kTileKeys * row_parts : i;
        const int row = j / row_parts, part = j % row_parts;
        const uint4 raw = *reinterpret_cast<const uint4*>((is_v ? v_tile : k_tile) + row * layout.raw_stride + 16 * part);
        const uint4 lo4 = make_uint4(lo_e4m3x2(raw.x), hi_e4m3x2(raw.x), lo_e4m3x2(raw.y), hi_e4m3x2(raw.y));
        const uint4 hi4 = make_uint4(lo_e4m3x2(raw.z), hi_e4m3x2(raw.z), lo_e4m3x2(raw.w), hi_e4m3x2(raw.w));
        uint8_t* out = is_v ? v_out : k_out;
        *reinterpret_cast<uint4*>(out + swizzled_offset(row, 32 * part, layout.row_stride, layout.swizzle)) = lo4;
        *reinterpret_cast<uint4*>(out + swizzled_offset(row, 32 * part + 16, layout.row_stride, layout.swizzle)) = hi4;
      }
      __syncthreads();
      k_tile = k_out;
      v_tile = v_out;
    }
    const int base = lo + kTileKeys * t;
    if (base >= warp_hi || base + kTileKeys <= warp_lo) continue;  // none of this warp's rows see the tile

    // S = Q · K^T for the warp's rows and the tile's keys; each K fragment serves every m-tile.
    float s[kM][kKeyTiles][4];
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
      for (int n = 0; n < kKeyTiles; ++n) s[mi][n][0] = s[mi][n][1] = s[mi][n][2] = s[mi][n][3] = 0.0f;
    }
#pragma unroll
    for (int kt = 0; kt < kDim / 16; ++kt) {
      if (kt >= ksteps) break;
      uint32_t a[kM][4];
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        ldmatrix_x4(a[mi], smem + swizzled_offset(16 * (kM * warp + mi) + lane % 16, 32 * kt + 16 * (lane / 16),
                                                  layout.row_stride, layout.swizzle));
      }
#pragma unroll
      for (int j = 0; j < kKeyTiles / 2; ++j) {  // keys 16j..16j + 15: n-tiles 2j and 2j + 1
        uint32_t b[4];
        ldmatrix_x4(b, k_tile + swizzled_offset(16 * j + lane % 8 + 8 * (lane / 16), 32 * kt + 16 * ((lane / 8) % 2),
                                                layout.row_stride, layout.swizzle));
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) {
          mma16816<kF16>(s[mi][2 * j], a[mi], b[0], b[1]);
          mma16816<kF16>(s[mi][2 * j + 1], a[mi], b[2], b[3]);
        }
      }
    }

    // Online softmax per row (this lane: rows g and g + 8 of each m-tile, keys 8n + 2c, + 1 of each
    // n-tile), then P as A fragments, one per 16 keys.
    uint32_t pa[kM][kKeyTiles / 2][4];
#pragma unroll
    for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
      for (int r = 0; r < 2; ++r) {
        float mx = -INFINITY;
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int key = base + 8 * n + 2 * c + e;
            const bool valid = key >= row_first[mi][r] && key < row_end[mi][r];
            float& v = s[mi][n][2 * r + e];
            v = valid ? v * score_scale : -INFINITY;
            mx = fmaxf(mx, v);
          }
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m_run[mi][r], mx);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new;
        const float corr = exp2f(m_run[mi][r] - m_use);
        float sum = 0.0f;
#pragma unroll
        for (int n = 0; n < kKeyTiles; ++n) {
          s[mi][n][2 * r] = exp2f(s[mi][n][2 * r] - m_use);
          s[mi][n][2 * r + 1] = exp2f(s[mi][n][2 * r + 1] - m_use);
          sum += s[mi][n][2 * r] + s[mi][n][2 * r + 1];
        }
        l_run[mi][r] = l_run[mi][r] * corr + sum;
        m_run[mi][r] = m_new;
#pragma unroll
        for (int n = 0; n < kDimTiles; ++n) {
          acc[mi][n][2 * r] *= corr;
          acc[mi][n][2 * r + 1] *= corr;
        }
      }
#pragma unroll
      for (int j = 0; j < kKeyTiles / 2; ++j) {
        pa[mi][j][0] = pack2<kF16>(s[mi][2 * j][0], s[mi][2 * j][1]);
        pa[mi][j][1] = pack2<kF16>(s[mi][2 * j][2], s[mi][2 * j][3]);
        pa[mi][j][2] = pack2<kF16>(s[mi][2 * j + 1][0], s[mi][2 * j + 1][1]);
        pa[mi][j][3] = pack2<kF16>(s[mi][2 * j + 1][2], s[mi][2 * j + 1][3]);
      }
    }

    // O += P · V: V^T fragments by ldmatrix.trans, 16 dims (two n-tiles) per load, each for every m-tile.
#pragma unroll
    for (int u = 0; u < kDim / 16; ++u) {
      if (u >= ksteps) break;
#pragma unroll
      for (int j = 0; j < kKeyTiles / 2; ++j) {
        uint32_t b[4];
        ldmatrix_x4_trans(b, v_tile + swizzled_offset(16 * j + lane % 8 + 8 * ((lane / 8) % 2), 32 * u + 16 * (lane / 16),
                                                      layout.row_stride, layout.swizzle));
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) {
          mma16816<kF16>(acc[mi][2 * u], pa[mi][j], b[0], b[1]);
          mma16816<kF16>(acc[mi][2 * u + 1], pa[mi][j], b[2], b[3]);
        }
      }
    }
  }
  cp_async_wait<0>();

  const float v_scale = kFp8 ? p.v_scale : 1.0f;
#pragma unroll
  for (int mi = 0; mi < kM; ++mi) {
#pragma unroll
    for (int r = 0; r < 2; ++r) {
      l_run[mi][r] += __shfl_xor_sync(0xffffffffu, l_run[mi][r], 1);
      l_run[mi][r] += __shfl_xor_sync(0xffffffffu, l_run[mi][r], 2);
      const int row = 16 * (kM * warp + mi) + g + 8 * r;
      if (row >= rows) continue;
      const float inv = v_scale / l_run[mi][r];
      __nv_bfloat16* out =
          p.out + (qb.first + row / group) * p.out_stride + static_cast<int64_t>(kvh * group + row % group) * d;
#pragma unroll
      for (int n = 0; n < kDimTiles; ++n) {
        if (n >= 2 * ksteps) break;
        *reinterpret_cast<__nv_bfloat162*>(out + 8 * n + 2 * c) =
            __floats2bfloat162_rn(acc[mi][n][2 * r] * inv, acc[mi][n][2 * r + 1] * inv);
      }
    }
  }
}

using PrefillKernel = void (*)(PagedAttentionParams, PrefillLayout);

template <bool kFp8>
PrefillKernel pick_dim(int head_dim) {
  if (head_dim <= 32) return prefill_kernel<kFp8, 32>;
  if (head_dim <= 64) return prefill_kernel<kFp8, 64>;
  if (head_dim <= 128) return prefill_kernel<kFp8, 128>;
  return prefill_kernel<kFp8, 256>;
}

PrefillKernel pick_kernel(bool fp8, int head_dim) { return fp8 ? pick_dim<true>(head_dim) : pick_dim<false>(head_dim); }

}  // namespace

}  // namespace adallm::kernels::attention

namespace adallm::kernels {

int paged_attention_prefill_tokens(int heads, int kv_heads, int head_dim) {
  if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0) return 1;
  const int rows = attention::block_rows(attention::m_tiles(head_dim));
  int tokens = 1;
  while (tokens * 2 * (heads / kv_heads) <= rows) tokens *= 2;
  return tokens;
}

}  // namespace adallm::kernels

namespace adallm::kernels::attention {

void prefill_attention(const PagedAttentionParams& p, cudaStream_t stream) {
  if (p.num_prefill_blocks <= 0) return;
  const int group = p.heads / p.kv_heads;
  const int rows = block_rows(m_tiles(p.head_dim));
  if (paged_attention_prefill_tokens(p.heads, p.kv_heads, p.head_dim) * group > rows) {
    throw Error("prefill_attention kernel: more query rows per block than " + std::to_string(rows));
  }
  const int64_t blocks = p.num_prefill_blocks * p.kv_heads;
  if (blocks >= (int64_t{1} << 31)) throw Error("prefill_attention kernel: too many tokens for one launch");
  static const bool configured = [] {
    for (const bool fp8 : {false, true}) {
      for (const int dim : {32, 64, 128, 256}) {
        const PrefillKernel k = pick_kernel(fp8, dim);
        ADALLM_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, prefill_layout(dim, fp8).bytes));
        ADALLM_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared));
      }
    }
    return true;
  }();
  (void)configured;
  const PrefillLayout layout = prefill_layout(p.head_dim, p.fp8);
  launch_dependent("prefill_attention", pick_kernel(p.fp8, p.head_dim), dim3(static_cast<unsigned>(blocks)),
                   dim3(kThreads), static_cast<size_t>(layout.bytes), stream, p, layout);
}

}  // namespace adallm::kernels::attention
