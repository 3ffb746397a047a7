// Paged attention kernels; see paged_attention.h.
#include "kernels/attention/paged_attention.h"

#include <cuda_fp8.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"
#include "kernels/reduce.cuh"

namespace adallm::kernels {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kDimsPerLane = kAttentionMaxHeadDim / 32;
constexpr int kMaxGroup = 16;  // query heads per KV head

// Keys per shared-memory tile: 64, or 32 where a cached row is longer than 256 bytes (bf16 head_dim 256).
int tile_keys(const PagedAttentionParams& p) { return p.head_dim * (p.fp8 ? 1 : 2) > 256 ? 32 : 64; }

// Splits of each (token, KV head)'s keys: enough blocks to fill the GPU four times over, no split shorter
// than one tile. Tried on the H100 and dropped: splits of at least 4 tiles, to save the merge kernel at
// short contexts (the batch-1 step at 256 keys 10 % slower: 8 blocks of 4 tiles wait longer than 32
// blocks of one tile and a merge), and merging in the last split block to finish instead of a second
// kernel (1 × 8K keys 55 → 97 µs: one block's serial loop over the splits is slower than a warp per head).
int choose_splits(const PagedAttentionParams& p, int multiprocessors) {
  const int64_t groups = p.tokens * p.kv_heads;
  const int64_t wanted = (int64_t{4} * multiprocessors + groups - 1) / groups;
  const int64_t max_tiles = std::max<int64_t>(1, (p.max_keys + tile_keys(p) - 1) / tile_keys(p));
  return static_cast<int>(std::clamp<int64_t>(wanted, 1, std::min<int64_t>(max_tiles, 64)));
}

struct SmemLayout {
  int q, scores, state, kv;  // byte offsets
  int row_stride;            // bytes per cached row in shared memory (padded by 16 against bank conflicts)
  int bytes;
};

SmemLayout smem_layout(const PagedAttentionParams& p, int keys) {
  const int group = p.heads / p.kv_heads;
  SmemLayout l;
  l.row_stride = p.head_dim * (p.fp8 ? 1 : 2) + 16;
  l.q = 0;
  l.scores = l.q + group * p.head_dim * 4;
  l.state = l.scores + group * keys * 4;
  l.kv = (l.state + 3 * kMaxGroup * 4 + 15) / 16 * 16;
  l.bytes = l.kv + 2 * 2 * keys * l.row_stride;  // two stages of K and V
  return l;
}

__device__ __forceinline__ void cp_async16(void* smem, const void* global) {
  const auto s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(global));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending)); }

// The cached values of one 16-byte chunk in shared memory as fp32: 16 fp8 codes (unscaled: the kernel
// folds the K scale into q and the V scale into the output) or 8 bf16 values.
__device__ __forceinline__ void smem_row16(const uint8_t* src, bool fp8, float* v) {
  const uint4 raw = *reinterpret_cast<const uint4*>(src);
  const uint32_t words[4] = {raw.x, raw.y, raw.z, raw.w};
  if (fp8) {
#pragma unroll
    for (int w = 0; w < 4; ++w) {
#pragma unroll
      for (int b = 0; b < 2; ++b) {
        const __half2_raw h = __nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(words[w] >> (16 * b)), __NV_E4M3);
        const float2 f = __half22float2(__half2(h));
        v[4 * w + 2 * b] = f.x;
        v[4 * w + 2 * b + 1] = f.y;
      }
    }
  } else {
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      v[2 * w] = __uint_as_float(words[w] << 16);
      v[2 * w + 1] = __uint_as_float(words[w] & 0xFFFF0000u);
    }
  }
}

// One block per (token, KV head, split): the query heads of the KV head share every K/V tile, which
// cp.async brings into shared memory (two stages) while the previous tile is used. Per tile: scores for
// every (head, key), an online-softmax update per head, then P·V into per-thread accumulators of 4 dims.
// kGroups: the query heads per KV head rounded up to a power of two (registers are sized by it).
template <int kTileKeys, int kGroups>
__global__ void __launch_bounds__(kThreads) attention_kernel(PagedAttentionParams p, int splits, SmemLayout layout,
                                                             float* partial) {
  extern __shared__ __align__(16) uint8_t smem[];
  pdl_begin();
  const int group = p.heads / p.kv_heads;
  const int d = p.head_dim;
  const int tid = threadIdx.x, warp = tid / 32, lane = tid % 32;
  const int s = blockIdx.x % splits;
  const int64_t tk = blockIdx.x / splits;
  const int kvh = static_cast<int>(tk % p.kv_heads);
  const int64_t t = tk / p.kv_heads;
  const int position = p.positions[t];
  const int first = p.sliding_window > 0 ? max(0, position - p.sliding_window + 1) : 0;
  const int keys = position + 1 - first;
  const int per_split = ((keys + splits - 1) / splits + kTileKeys - 1) / kTileKeys * kTileKeys;
  const int begin = first + s * per_split;
  const int end = min(position + 1, begin + per_split);
  const int32_t* pages = p.page_tables + static_cast<int64_t>(p.seq_index[t]) * p.max_pages_per_seq;

  float* q = reinterpret_cast<float*>(smem + layout.q);            // [group][d]
  float* scores = reinterpret_cast<float*>(smem + layout.scores);  // [group][kTileKeys]
  float* m_state = reinterpret_cast<float*>(smem + layout.state);  // [group] running max
  float* l_state = m_state + kMaxGroup;                            // [group] running sum
  float* corr = l_state + kMaxGroup;                               // [group] this tile's rescale
  uint8_t* kv = smem + layout.kv;
  const int elem = p.fp8 ? 1 : 2;
  const int row_bytes = d * elem, chunks = row_bytes / 16;
  const auto k_tile = [&](int stage) { return kv + stage * 2 * kTileKeys * layout.row_stride; };
  const auto v_tile = [&](int stage) { return k_tile(stage) + kTileKeys * layout.row_stride; };

  const auto load_tile = [&](int base, int stage) {
    for (int i = tid; i < kTileKeys * chunks; i += kThreads) {
      const int j = i / chunks, c = i % chunks;
      const int key = base + j;
      if (key >= end) continue;
      const int64_t slot = static_cast<int64_t>(pages[key / p.page_size]) * p.page_size + key % p.page_size;
      const int64_t offset = ((slot * p.kv_heads + kvh) * d) * elem + c * 16;
      cp_async16(k_tile(stage) + j * layout.row_stride + c * 16, static_cast<const uint8_t*>(p.k_cache) + offset);
      cp_async16(v_tile(stage) + j * layout.row_stride + c * 16, static_cast<const uint8_t*>(p.v_cache) + offset);
    }
    cp_async_commit();
  };

  if (begin < end) load_tile(begin, 0);
  const __nv_bfloat16* q_row = p.q + t * p.q_stride + static_cast<int64_t>(kvh) * group * d;
  // fp8 pages hold x / scale: q · (k_scale · code) = (k_scale · q) · code.
  const float k_scale = p.fp8 ? p.k_scale : 1.0f, v_scale = p.fp8 ? p.v_scale : 1.0f;
  for (int i = tid; i < group * d; i += kThreads) q[i] = __bfloat162float(q_row[i]) * k_scale;
  if (tid < group) {
    m_state[tid] = -INFINITY;
    l_state[tid] = 0.0f;
  }
  // Scores: kThreads / kTileKeys threads per key, each over every such chunk of the row, for all the
  // group's heads at once (the K row is converted once). P·V: kThreads / (d / 4) threads per 4-dim chunk
  // (a power of two), each over every such key, again for all heads (V converted once); their partial
  // sums meet by shuffles at the end.
  constexpr int kPerKey = kThreads / kTileKeys;
  const int dim_chunks = d / 4;
  int per_chunk = 1;
  while (per_chunk * 2 * dim_chunks <= kThreads) per_chunk *= 2;
  const int chunk = tid / per_chunk, sub = tid % per_chunk;
  const bool has_chunk = chunk < dim_chunks;
  const int d0 = chunk * 4;
  float acc[kGroups][4];
#pragma unroll
  for (int g = 0; g < kGroups; ++g) acc[g][0] = acc[g][1] = acc[g][2] = acc[g][3] = 0.0f;

  int stage = 0;
  for (int base = begin; base < end; base += kTileKeys, stage ^= 1) {
    if (base + kTileKeys < end) {
      load_tile(base + kTileKeys, stage ^ 1);
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();  // the tile is in; q and the state are written
    const int valid = min(kTileKeys, end - base);
    {
      const int j = tid / kPerKey, part = tid % kPerKey;
      float dot[kGroups];
#pragma unroll
      for (int g = 0; g < kGroups; ++g) dot[g] = 0.0f;
      if (j < valid) {
        const uint8_t* row = k_tile(stage) + j * layout.row_stride;
        const int n = 16 / elem;  // values per 16-byte chunk
        for (int c = part; c < chunks; c += kPerKey) {
          float k[16];
          smem_row16(row + c * 16, p.fp8, k);
#pragma unroll
          for (int g = 0; g < kGroups; ++g) {
            if (g >= group) break;
            const float* qg = q + g * d + c * n;
            float sum = 0.0f;
#pragma unroll
            for (int e = 0; e < 16; ++e) {
              if (e < n) sum += qg[e] * k[e];
            }
            dot[g] += sum;
          }
        }
      }
#pragma unroll
      for (int g = 0; g < kGroups; ++g) {
        if (g >= group) break;
#pragma unroll
        for (int o = 1; o < kPerKey; o <<= 1) dot[g] += __shfl_xor_sync(0xffffffffu, dot[g], o);
        if (part == 0) scores[g * kTileKeys + j] = j < valid ? p.scale * dot[g] : -INFINITY;
      }
    }
    __syncthreads();
    for (int g = warp; g < group; g += kWarps) {
      float tile_max = -INFINITY;
      for (int j = lane; j < kTileKeys; j += 32) tile_max = fmaxf(tile_max, scores[g * kTileKeys + j]);
      tile_max = warp_max(tile_max);
      const float m_old = m_state[g];
      const float m_new = fmaxf(m_old, tile_max);
      float sum = 0.0f;
      for (int j = lane; j < kTileKeys; j += 32) {
        const float e = j < valid ? expf(scores[g * kTileKeys + j] - m_new) : 0.0f;
        scores[g * kTileKeys + j] = e;
        sum += e;
      }
      sum = warp_sum(sum);
      __syncwarp();
      if (lane == 0) {
        const float c = expf(m_old - m_new);  // 0 on the first tile (m_old = -inf)
        corr[g] = c;
        l_state[g] = l_state[g] * c + sum;
        m_state[g] = m_new;
      }
    }
    __syncthreads();
    if (has_chunk) {
#pragma unroll
      for (int g = 0; g < kGroups; ++g) {
        if (g >= group) break;
        const float cg = corr[g];
        acc[g][0] *= cg, acc[g][1] *= cg, acc[g][2] *= cg, acc[g][3] *= cg;
      }
      const uint8_t* vt = v_tile(stage) + d0 * elem;
      for (int j = sub; j < valid; j += per_chunk) {
        const uint8_t* src = vt + j * layout.row_stride;
        float v0, v1, v2, v3;
        if (p.fp8) {
          const uint32_t word = *reinterpret_cast<const uint32_t*>(src);
          const float2 lo = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(word), __NV_E4M3)));
          const float2 hi = __half22float2(__half2(__nv_cvt_fp8x2_to_halfraw2(static_cast<__nv_fp8x2_storage_t>(word >> 16), __NV_E4M3)));
          v0 = lo.x, v1 = lo.y, v2 = hi.x, v3 = hi.y;
        } else {
          const uint2 words = *reinterpret_cast<const uint2*>(src);
          v0 = __uint_as_float(words.x << 16);
          v1 = __uint_as_float(words.x & 0xFFFF0000u);
          v2 = __uint_as_float(words.y << 16);
          v3 = __uint_as_float(words.y & 0xFFFF0000u);
        }
#pragma unroll
        for (int g = 0; g < kGroups; ++g) {
          if (g >= group) break;
          const float w = scores[g * kTileKeys + j];
          acc[g][0] += w * v0, acc[g][1] += w * v1, acc[g][2] += w * v2, acc[g][3] += w * v3;
        }
      }
    }
    __syncthreads();  // scores and this stage are free for the next tile
  }

  // The per_chunk threads of a chunk are adjacent lanes of one warp: sum their keys' shares.
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    if (g >= group) break;
    for (int o = 1; o < per_chunk; o <<= 1) {
#pragma unroll
      for (int e = 0; e < 4; ++e) acc[g][e] += __shfl_xor_sync(0xffffffffu, acc[g][e], o);
    }
  }
  if (!has_chunk || sub != 0) return;
#pragma unroll
  for (int g = 0; g < kGroups; ++g) {
    if (g >= group) break;
    const int h = kvh * group + g;
    if (splits == 1) {
      const float inv = v_scale / l_state[g];
      __nv_bfloat16* out = p.out + t * p.out_stride + static_cast<int64_t>(h) * d + d0;
      for (int e = 0; e < 4; ++e) out[e] = __float2bfloat16_rn(acc[g][e] * inv);
    } else {
      float* part = partial + ((t * p.heads + h) * splits + s) * (d + 2);
      if (d0 == 0) {
        part[0] = m_state[g];  // -inf (and l = 0) for a split past the token's keys
        part[1] = l_state[g];
      }
      for (int e = 0; e < 4; ++e) part[2 + d0 + e] = acc[g][e] * v_scale;
    }
  }
}

// One warp per (token, head): merges the splits' partial softmaxes.
__global__ void combine_kernel(PagedAttentionParams p, int splits, const float* partial) {
  pdl_begin();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int64_t th = static_cast<int64_t>(blockIdx.x) * kWarps + warp;
  if (th >= p.tokens * p.heads) return;
  const int64_t t = th / p.heads;
  const int h = static_cast<int>(th % p.heads);
  const int d = p.head_dim;
  const float* parts = partial + th * splits * (d + 2);
  float m = -INFINITY;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, parts[s * (d + 2)]);
  float l = 0.0f;
  float acc[kDimsPerLane];
#pragma unroll
  for (int r = 0; r < kDimsPerLane; ++r) acc[r] = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float* part = parts + s * (d + 2);
    if (part[1] == 0.0f) continue;  // an empty split
    const float w = expf(part[0] - m);
    l += part[1] * w;
#pragma unroll
    for (int r = 0; r < kDimsPerLane; ++r) {
      const int i = lane + 32 * r;
      if (i < d) acc[r] += part[2 + i] * w;
    }
  }
  __nv_bfloat16* out = p.out + t * p.out_stride + static_cast<int64_t>(h) * d;
  const float inv = 1.0f / l;
#pragma unroll
  for (int r = 0; r < kDimsPerLane; ++r) {
    const int i = lane + 32 * r;
    if (i < d) out[i] = __float2bfloat16_rn(acc[r] * inv);
  }
}

}  // namespace

int64_t paged_attention_workspace_bytes(const PagedAttentionParams& p, int multiprocessors) {
  if (p.tokens <= 0 || p.heads <= 0 || p.kv_heads <= 0 || p.max_keys <= 0) return 0;
  const int splits = choose_splits(p, multiprocessors);
  if (splits == 1) return 0;
  return p.tokens * p.heads * splits * (p.head_dim + 2) * static_cast<int64_t>(sizeof(float));
}

void paged_attention(const PagedAttentionParams& p, int multiprocessors, void* workspace, cudaStream_t stream) {
  const auto bad = [](const std::string& what) { throw Error("paged_attention kernel: " + what); };
  if (p.head_dim <= 0 || p.head_dim % 16 != 0 || p.head_dim > kAttentionMaxHeadDim) {
    bad("head_dim " + std::to_string(p.head_dim) + " must be a multiple of 16 and at most " +
        std::to_string(kAttentionMaxHeadDim));
  }
  if (p.heads <= 0 || p.kv_heads <= 0 || p.heads % p.kv_heads != 0 || p.heads / p.kv_heads > kMaxGroup) {
    bad("heads must be a multiple of kv_heads, at most " + std::to_string(kMaxGroup) + " per KV head");
  }
  if (p.page_size <= 0 || p.max_keys <= 0) bad("page_size and max_keys must be > 0");
  if (!p.q || !p.out || !p.k_cache || !p.v_cache || !p.positions || !p.seq_index || !p.page_tables) bad("null pointer");
  if (p.tokens <= 0) return;
  const int splits = choose_splits(p, multiprocessors);
  if (splits > 1 && workspace == nullptr) bad("needs a workspace of paged_attention_workspace_bytes()");
  const int keys = tile_keys(p);
  const SmemLayout layout = smem_layout(p, keys);
  const int64_t blocks = p.tokens * p.kv_heads * splits;
  if (blocks >= (int64_t{1} << 31)) bad("too many tokens for one launch");
  const int group = p.heads / p.kv_heads;
  const auto pick = [&](auto tile) {
    constexpr int kKeys = decltype(tile)::value;
    if (group <= 1) return attention_kernel<kKeys, 1>;
    if (group <= 2) return attention_kernel<kKeys, 2>;
    if (group <= 4) return attention_kernel<kKeys, 4>;
    if (group <= 8) return attention_kernel<kKeys, 8>;
    return attention_kernel<kKeys, 16>;
  };
  const auto kernel = keys == 64 ? pick(std::integral_constant<int, 64>{}) : pick(std::integral_constant<int, 32>{});
  static const bool configured = [] {
    // Up to 160 KB: the largest layout is 16 query heads of head_dim 256 with bf16 rows.
    for (const auto k : {attention_kernel<64, 1>, attention_kernel<64, 2>, attention_kernel<64, 4>, attention_kernel<64, 8>,
                         attention_kernel<64, 16>, attention_kernel<32, 1>, attention_kernel<32, 2>, attention_kernel<32, 4>,
                         attention_kernel<32, 8>, attention_kernel<32, 16>}) {
      ADALLM_CUDA_CHECK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, 160 * 1024));
    }
    return true;
  }();
  (void)configured;
  launch_dependent("paged_attention", kernel, dim3(static_cast<unsigned>(blocks)), dim3(kThreads),
                   static_cast<size_t>(layout.bytes), stream, p, splits, layout, static_cast<float*>(workspace));
  if (splits > 1) {
    const int64_t heads = p.tokens * p.heads;
    launch_dependent("paged_attention combine", combine_kernel, dim3(static_cast<unsigned>((heads + kWarps - 1) / kWarps)),
                     dim3(kThreads), 0, stream, p, splits, static_cast<const float*>(workspace));
  }
}

}  // namespace adallm::kernels
