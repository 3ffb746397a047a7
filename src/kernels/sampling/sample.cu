// The sampling kernel; see sample.h (the penalties before it are penalties.cu's). One block of 1024 threads per row. The row (a vocabulary of fp32
// logits, 600 KB for Qwen3) is read from L2 or DRAM once per pass and never staged whole: each pass
// recomputes a token's weight exp((logit - max) / temperature) rather than keep a second copy. Passes load
// 16 bytes per lane, kUnroll steps in flight. Usually the kept set of top_k / top_p is small, so after a
// pass that counts how many tokens lie within a few units of log-probability of the most likely one, those
// few (at most kCandidates) are gathered in shared memory and selected there by sorts; a row whose
// selection would not fit (a flat distribution, top_k > kCandidates) takes radix selects over the whole
// row instead (8 bits per pass, order-preserving keys for top_k, probability mass for top_p). Masses are
// fixed point (weight · 2^40 in 64-bit integers), so every sum that decides a token is exact and
// independent of the order the threads add in: a seeded request draws the same token every run. One
// block per row leaves most SMs idle at small batches (a pass over 150K tokens is instruction-bound on
// one SM); splitting a row over several blocks is the next step.
#include "kernels/sampling/sample.h"

#include <cfloat>
#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/launch.cuh"

namespace adallm::kernels {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;
constexpr int kStep = 128;      // tokens a warp covers per step: 4 per lane
constexpr int kUnroll = 4;      // steps whose loads are in flight together
constexpr float kMassScale = 1099511627776.0f;  // 2^40: a weight in (0, 1] has 40 fractional bits of mass
// The candidate path: tokens within kBuckets / kBucketsPerUnit units of log-probability (at the row's
// temperature) of the top one are counted in buckets of 1 / kBucketsPerUnit; the selection gathers up to
// kCandidates of them.
constexpr int kBuckets = 64;
constexpr float kBucketsPerUnit = 4.0f;
constexpr int kCandidates = 4096;
constexpr int kShortOfTarget = -3;
constexpr size_t kMaxDynamicBytes = 192 * 1024;  // select_and_draw: the candidates hold less than top_p's target

using Mass = unsigned long long;

// Keys that order like the floats they come from (-0 and +0 equal, as the CPU's compare has them).
__device__ __forceinline__ uint32_t logit_key(float v) {
  const uint32_t u = __float_as_uint(v + 0.0f);
  return (u & 0x80000000u) != 0 ? ~u : (u | 0x80000000u);
}

__device__ __forceinline__ Mass mass_of(float weight) { return __float2ull_rn(weight * kMassScale); }

__device__ __forceinline__ Mass warp_sum_mass(Mass v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Inclusive prefix over the lanes.
__device__ __forceinline__ Mass warp_scan_mass(Mass v) {
  const int lane = threadIdx.x % 32;
  for (int o = 1; o < 32; o <<= 1) {
    const Mass t = __shfl_up_sync(0xffffffffu, v, o);
    if (lane >= o) v += t;
  }
  return v;
}

// Everything a pass needs to decide whether a token is kept and with what mass.
struct Row {
  const float* x = nullptr;
  int vocab = 0;
  bool vector = false;  // 16-byte loads where the row is 16-byte aligned (load4 does a short tail singly)
  float max = 0.0f;
  float log2_scale = 1.0f;    // log2(e) / temperature
  float bucket_scale = 1.0f;  // kBucketsPerUnit / temperature
  float min_p = 0.0f;
  bool top_k = false;
  uint32_t kth_key = 0;  // top_k: keep logits whose key is at least this
  bool top_p = false;
  uint32_t cut_bits = 0;  // top_p: weights above this are kept, weights equal to it while ranked < keep_ties
  Mass keep_ties = 0;

  // The weight of a token of logit v if it survives min_p (and top_k, once kth_key is set), else 0.
  __device__ __forceinline__ float weight(float v) const {
    if (top_k && logit_key(v) < kth_key) return 0.0f;
    // exp((v - max) / temperature) as one multiply and ex2: within a few ulp of the reference's expf of
    // the divided difference, which moves a draw only where the uniform lies that close to a boundary.
    const float w = exp2f((v - max) * log2_scale);  // -inf: 0
    return w > 0.0f && w >= min_p ? w : 0.0f;
  }
};

// Warp w owns the contiguous segment [w · seg, min(vocab, (w + 1) · seg)) and walks it kStep tokens at a
// time, lane l taking tokens base + 4l .. base + 4l + 3: loads are coalesced and the warp knows the token
// order, which the draw (a prefix sum in token order) and top_p's ties (ranked by token id) need.
struct Segment {
  int begin = 0;
  int end = 0;
};

__device__ __forceinline__ Segment warp_segment(int vocab) {
  const int seg = ((vocab + kWarps - 1) / kWarps + kStep - 1) / kStep * kStep;
  const int w = static_cast<int>(threadIdx.x / 32);
  return {min(vocab, w * seg), min(vocab, (w + 1) * seg)};
}

// The lane's 4 logits from token i (-inf past the segment's end: they weigh nothing and are not finite).
__device__ __forceinline__ void load4(const Row& r, int i, int end, float (&v)[4]) {
  if (r.vector && i + 3 < end) {
    const float4 q = __ldg(reinterpret_cast<const float4*>(r.x + i));
    v[0] = q.x, v[1] = q.y, v[2] = q.z, v[3] = q.w;
  } else {
#pragma unroll
    for (int j = 0; j < 4; ++j) v[j] = i + j < end ? r.x[i + j] : -INFINITY;
  }
}

// f(token, logit) for every token of this warp's segment (and a few -inf past its end, token >= end).
template <typename F>
__device__ __forceinline__ void for_each_token(const Row& r, F f) {
  const Segment seg = warp_segment(r.vocab);
  const int lane = threadIdx.x % 32;
  for (int base = seg.begin; base < seg.end; base += kUnroll * kStep) {
    float v[kUnroll][4];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) load4(r, base + u * kStep + 4 * lane, seg.end, v[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
#pragma unroll
      for (int j = 0; j < 4; ++j) f(base + u * kStep + 4 * lane + j, v[u][j]);
    }
  }
}

struct Shared {
  Mass hist[256];
  int buckets[kBuckets];
  float bucket_weight[kBuckets];  // float sums (order-dependent rounding): only pick how many buckets to gather
  Mass warp_mass[kWarps];
  Mass warp_ties[kWarps];
  float warp_max[kWarps];
  int warp_arg[kWarps];
  int warp_finite[kWarps];
  int warp_bad[kWarps];
  uint32_t bin;
  Mass above;
  int found;
  int count;
};

// The candidate arrays (dynamic shared memory): sort keys and their values.
struct Candidates {
  Mass* keys;       // [kCandidates]
  uint32_t* values; // [kCandidates]
};

// Sum over the block of per-thread masses; every thread gets it. Uses s.warp_mass.
__device__ Mass block_sum_mass(Shared& s, Mass v) {
  v = warp_sum_mass(v);
  __syncthreads();  // earlier readers of warp_mass are done
  if (threadIdx.x % 32 == 0) s.warp_mass[threadIdx.x / 32] = v;
  __syncthreads();
  Mass total = 0;
  for (int w = 0; w < kWarps; ++w) total += s.warp_mass[w];
  return total;
}

// Exclusive prefix over the block of per-thread masses (thread order); `total` gets the sum.
__device__ Mass block_exclusive_scan_mass(Shared& s, Mass v, Mass& total) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const Mass inclusive = warp_scan_mass(v);
  __syncthreads();
  if (lane == 31) s.warp_mass[warp] = inclusive;
  __syncthreads();
  Mass before = 0;
  total = 0;
  for (int w = 0; w < kWarps; ++w) {
    before += w < warp ? s.warp_mass[w] : 0;
    total += s.warp_mass[w];
  }
  return before + inclusive - v;
}

// Bitonic sort of keys[0, n) with their values, descending or ascending; n a power of two <= kCandidates.
__device__ void bitonic_sort(Candidates c, int n, bool descending) {
  for (int k = 2; k <= n; k <<= 1) {
    for (int j = k >> 1; j > 0; j >>= 1) {
      for (int i = threadIdx.x; i < n; i += kThreads) {
        const int partner = i ^ j;
        if (partner <= i) continue;
        const bool first_smaller = (i & k) == 0;  // this pair's half ends ascending (before `descending`)
        const Mass a = c.keys[i], b = c.keys[partner];
        if ((a > b) == (first_smaller != descending)) {
          c.keys[i] = b, c.keys[partner] = a;
          const uint32_t t = c.values[i];
          c.values[i] = c.values[partner], c.values[partner] = t;
        }
      }
      __syncthreads();
    }
  }
}

__device__ __forceinline__ int pow2_at_least(int n) {
  int p = 1;
  while (p < n) p <<= 1;
  return p;
}

// Radix select, 8 bits per pass from the top, over the tokens `item` gives a (key, mass) for (mass 0:
// not taking part): the largest key K whose tokens with key >= K hold at least `target`. Returns false
// when all of them hold less. `above` gets the mass of keys > K.
template <typename Item>
__device__ bool radix_select(Shared& s, const Row& r, Mass target, Item item, uint32_t& key_out, Mass& above_out) {
  const int lane = threadIdx.x % 32;
  uint32_t prefix = 0, mask = 0;
  Mass above = 0;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int b = threadIdx.x; b < 256; b += kThreads) s.hist[b] = 0;
    if (threadIdx.x == 0) s.found = 0;
    __syncthreads();
    // The rows that come here are flat, so most lanes of a warp fall in the same few bins: the lanes of a
    // bin add once (their masses summed in 20-bit halves, each sum below 2^25).
    for_each_token(r, [&](int, float v) {
      uint32_t key;
      const Mass m = item(v, key);
      const int bin = m != 0 && (key & mask) == prefix ? static_cast<int>((key >> shift) & 0xFF) : -1;
      const unsigned group = __match_any_sync(0xffffffffu, bin);
      const unsigned low = __reduce_add_sync(group, static_cast<unsigned>(m & 0xFFFFF));
      const unsigned high = __reduce_add_sync(group, static_cast<unsigned>(m >> 20));
      if (bin >= 0 && lane == __ffs(group) - 1) atomicAdd(&s.hist[bin], (static_cast<Mass>(high) << 20) + low);
    });
    __syncthreads();
    if (threadIdx.x < 32) {
      // Lane l holds bins 8l .. 8l + 7; the crossing lies in the one lane whose bins take the running
      // mass, counted from the top bin down, from below target to at least target.
      Mass local = 0;
#pragma unroll
      for (int b = 0; b < 8; ++b) local += s.hist[8 * lane + b];
      Mass suffix = local;  // lanes l .. 31
      for (int o = 1; o < 32; o <<= 1) {
        const Mass t = __shfl_down_sync(0xffffffffu, suffix, o);
        if (lane + o < 32) suffix += t;
      }
      Mass run = above + suffix - local;
      if (run < target && run + local >= target) {
        for (int b = 7; b >= 0; --b) {
          const Mass h = s.hist[8 * lane + b];
          if (run + h >= target) {
            s.bin = static_cast<uint32_t>(8 * lane + b);
            s.above = run;
            s.found = 1;
            break;
          }
          run += h;
        }
      }
    }
    __syncthreads();
    const bool found = s.found != 0;
    prefix |= s.bin << shift;
    mask |= 0xFFu << shift;
    above = s.above;
    __syncthreads();  // everyone has read found, bin and above before they are written again
    if (!found) return false;
  }
  key_out = prefix;
  above_out = above;
  return true;
}

// Kept mass of a token of weight w, given its rank among top_p's tied tokens (weight bits == cut_bits).
__device__ __forceinline__ Mass kept_mass(const Row& r, float w, Mass tie_rank) {
  if (w == 0.0f) return 0;
  if (r.top_p) {
    const uint32_t bits = __float_as_uint(w);
    if (bits < r.cut_bits || (bits == r.cut_bits && tie_rank >= r.keep_ties)) return 0;
  }
  return mass_of(w);
}

// Warp w's segment (warp_segment for another warp).
__device__ __forceinline__ Segment segment_of(int vocab, int w) {
  const int seg = ((vocab + kWarps - 1) / kWarps + kStep - 1) / kStep * kStep;
  return {min(vocab, w * seg), min(vocab, (w + 1) * seg)};
}

// The kept masses of the 4 tokens (logits v) this lane holds in a step, given the number of top_p ties
// ranked before the step; returns the step's ties (warp-uniform).
__device__ __forceinline__ int step_masses(const Row& r, const float (&v)[4], Mass ties, Mass (&m)[4]) {
  const int lane = threadIdx.x % 32;
  float w[4];
  int tied = 0;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    w[j] = r.weight(v[j]);
    tied += r.top_p && w[j] > 0.0f && __float_as_uint(w[j]) == r.cut_bits ? 1 : 0;
  }
  // Ties of lower lanes come first in token order.
  int before = tied;
  for (int o = 1; o < 32; o <<= 1) {
    const int t = __shfl_up_sync(0xffffffffu, before, o);
    if (lane >= o) before += t;
  }
  const int step_ties = __shfl_sync(0xffffffffu, before, 31);
  before -= tied;
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    m[j] = kept_mass(r, w[j], ties + before);
    before += r.top_p && w[j] > 0.0f && __float_as_uint(w[j]) == r.cut_bits ? 1 : 0;
  }
  return step_ties;
}

// The draw over the whole row: the first token, in token order, whose inclusive prefix of kept mass
// exceeds uniform · (the kept mass). One pass records every step's mass (and, for top_p, the ties before
// it) in shared memory; a scan over the steps finds the one holding the threshold, and one warp walks
// that step. `scratch`: dynamic shared memory for 2 · kWarps · (steps per warp) masses.
__device__ int draw_row(Shared& s, const Row& r, double uniform, Mass* scratch) {
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const Segment seg = warp_segment(r.vocab);
  const int steps = ((r.vocab + kWarps - 1) / kWarps + kStep - 1) / kStep;  // per warp
  Mass* step_mass = scratch;                 // [kWarps * steps], warp-major: token order
  Mass* step_ties = scratch + kWarps * steps;  // top_p ties ranked before the step
  // Ties before this warp's segment (top_p ranks them by token id).
  Mass ties = 0;
  if (r.top_p) {
    for_each_token(r, [&](int, float v) { ties += __float_as_uint(r.weight(v)) == r.cut_bits ? 1 : 0; });
    ties = warp_sum_mass(ties);
    __syncthreads();
    if (lane == 0) s.warp_ties[warp] = ties;
    __syncthreads();
    ties = 0;
    for (int w = 0; w < warp; ++w) ties += s.warp_ties[w];
  }
  for (int k0 = 0; k0 < steps; k0 += kUnroll) {
    float v[kUnroll][4];  // kUnroll steps' loads in flight
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) load4(r, seg.begin + (k0 + u) * kStep + 4 * lane, seg.end, v[u]);
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (k0 + u >= steps) break;
      Mass m[4];
      const int tied = step_masses(r, v[u], ties, m);  // a step past the segment's end: -inf, nothing kept
      const Mass sum = warp_sum_mass(m[0] + m[1] + m[2] + m[3]);
      if (lane == 0) step_mass[warp * steps + k0 + u] = sum, step_ties[warp * steps + k0 + u] = ties;
      ties += tied;
    }
  }
  __syncthreads();
  // Each thread a run of consecutive steps; the one whose run holds the threshold finds the step.
  const int n = kWarps * steps, per = (n + kThreads - 1) / kThreads;
  const int lo = min(n, static_cast<int>(threadIdx.x) * per), hi = min(n, lo + per);
  Mass mine = 0;
  for (int i = lo; i < hi; ++i) mine += step_mass[i];
  Mass total = 0;
  Mass run = block_exclusive_scan_mass(s, mine, total);
  Mass threshold = static_cast<Mass>(uniform * static_cast<double>(total));
  if (threshold >= total) threshold = total - 1;  // total > 0: the most likely token always stays
  if (threadIdx.x == 0) s.found = -1, s.bin = ~0u;
  __syncthreads();
  if (run <= threshold && threshold < run + mine) {
    for (int i = lo; i < hi; ++i) {
      if (threshold < run + step_mass[i]) {
        s.bin = static_cast<uint32_t>(i);
        s.above = run;
        break;
      }
      run += step_mass[i];
    }
  }
  __syncthreads();
  if (warp == 0 && s.bin != ~0u) {
    const int i = static_cast<int>(s.bin), w = i / steps;
    const Segment owner = segment_of(r.vocab, w);
    const int base = owner.begin + (i % steps) * kStep;
    float v[4];
    load4(r, base + 4 * lane, owner.end, v);
    Mass m[4];
    step_masses(r, v, step_ties[i], m);
    const Mass lane_total = m[0] + m[1] + m[2] + m[3];
    const Mass inclusive = warp_scan_mass(lane_total);
    Mass c = s.above + inclusive - lane_total;
    const unsigned past = __ballot_sync(0xffffffffu, lane_total != 0 && s.above + inclusive > threshold);
    if (past != 0 && lane == __ffs(past) - 1) {
      for (int j = 0; j < 4; ++j) {
        c += m[j];
        if (m[j] != 0 && c > threshold) {
          s.found = base + 4 * lane + j;
          break;
        }
      }
    }
  }
  __syncthreads();
  return s.found;
}

// This thread's run of consecutive entries [lo, hi) of the n candidates, and their mass: runs in thread
// order, so that a block scan gives the prefixes in entry order.
struct EntryRun {
  int lo = 0;
  int hi = 0;
  Mass mass = 0;
};

__device__ EntryRun entry_run(Candidates c, int n) {
  const int per = (n + kThreads - 1) / kThreads;
  EntryRun run;
  run.lo = min(n, static_cast<int>(threadIdx.x) * per);
  run.hi = min(n, run.lo + per);
  for (int i = run.lo; i < run.hi; ++i) run.mass += mass_of(__uint_as_float(c.values[i]));
  return run;
}

// The selection among candidates in shared memory: `n` tokens (every token that top_k and top_p could
// keep), keys[i] = logit key << 32 | ~token, values[i] = weight bits; row_mass: the mass of every min_p
// survivor of the row (top_p's base without top_k). Returns the drawn token.
__device__ int select_and_draw(Shared& s, Candidates c, int n, const SampleRowParams& p, bool top_k, bool top_p,
                               Mass row_mass) {
  const int tid = threadIdx.x;
  // top_k: the k largest logits, ties with the k-th included: a prefix once sorted by logit.
  if (top_k) {
    const int n2 = pow2_at_least(n);
    for (int i = n + tid; i < n2; i += kThreads) c.keys[i] = 0, c.values[i] = 0;
    __syncthreads();
    bitonic_sort(c, n2, /*descending=*/true);
    const uint32_t kth = static_cast<uint32_t>(c.keys[p.top_k - 1] >> 32);
    if (tid == 0) s.count = 0;
    __syncthreads();
    for (int i = tid; i < n; i += kThreads) {
      if (static_cast<uint32_t>(c.keys[i] >> 32) >= kth) atomicAdd(&s.count, 1);
    }
    __syncthreads();
    n = s.count;
    __syncthreads();
  }
  // top_p: re-keyed by weight (ties by token id, as the reference ranks them), the shortest prefix whose
  // mass reaches ceil(top_p · the mass of what is left).
  if (top_p && n > 1) {
    for (int i = tid; i < n; i += kThreads) {
      const uint32_t token = ~static_cast<uint32_t>(c.keys[i]);
      c.keys[i] = static_cast<Mass>(c.values[i]) << 32 | ~token;
    }
    const int n2 = pow2_at_least(n);
    for (int i = n + tid; i < n2; i += kThreads) c.keys[i] = 0, c.values[i] = 0;
    __syncthreads();
    bitonic_sort(c, n2, /*descending=*/true);
    const EntryRun own = entry_run(c, n);
    Mass total = 0;
    Mass run = block_exclusive_scan_mass(s, own.mass, total);
    // Without top_k the candidates are a part of the row (holding at least the target) and the base is
    // the whole row's mass.
    if (!top_k) total = row_mass;
    const Mass target = static_cast<Mass>(ceil(static_cast<double>(p.top_p) * static_cast<double>(total)));
    if (tid == 0) s.count = -1;
    __syncthreads();
    for (int i = own.lo; i < own.hi; ++i) {
      run += mass_of(__uint_as_float(c.values[i]));
      if (run >= target) {  // the first such entry is unique: the prefix grows with i
        if (run - mass_of(__uint_as_float(c.values[i])) < target) s.count = i + 1;
        break;
      }
    }
    __syncthreads();
    n = s.count;
    __syncthreads();
    if (n < 0) return kShortOfTarget;
  }
  // The draw in token order: re-keyed by token, ascending.
  for (int i = tid; i < n; i += kThreads) c.keys[i] = ~static_cast<uint32_t>(c.keys[i]);
  const int n2 = pow2_at_least(n);
  for (int i = n + tid; i < n2; i += kThreads) c.keys[i] = ~Mass{0}, c.values[i] = 0;
  __syncthreads();
  bitonic_sort(c, n2, /*descending=*/false);
  const EntryRun own = entry_run(c, n);
  Mass total = 0;
  Mass run = block_exclusive_scan_mass(s, own.mass, total);
  Mass threshold = static_cast<Mass>(p.uniform * static_cast<double>(total));
  if (threshold >= total) threshold = total - 1;
  if (tid == 0) s.found = -1;
  __syncthreads();
  if (run <= threshold && threshold < run + own.mass) {
    for (int i = own.lo; i < own.hi; ++i) {
      const Mass m = mass_of(__uint_as_float(c.values[i]));
      run += m;
      if (m != 0 && run > threshold) {
        s.found = static_cast<int>(c.keys[i]);
        break;
      }
    }
  }
  __syncthreads();
  return s.found;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int64_t stride, int vocab, const SampleRowParams* __restrict__ params,
                  float greedy_temperature, int32_t* __restrict__ ids, int32_t non_finite, int32_t no_finite) {
  __shared__ Shared s;
  extern __shared__ __align__(16) uint8_t dynamic_smem[];
  pdl_begin();
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const SampleRowParams p = params[blockIdx.x];
  Row r;
  r.x = logits + static_cast<int64_t>(blockIdx.x) * stride;
  r.vocab = vocab;
  r.vector = reinterpret_cast<uintptr_t>(r.x) % 16 == 0;

  // Pass 1: NaN or +inf anywhere, the maximum (the lowest index on ties: the greedy token), finite count.
  int finite = 0;
  {
    float best = -INFINITY;
    int arg = INT32_MAX;
    bool bad = false;
    for_each_token(r, [&](int i, float v) {
      bad |= !(v < INFINITY);
      finite += v > -INFINITY ? 1 : 0;
      if (v > best) best = v, arg = i;  // a lane visits its tokens in increasing order
    });
    for (int o = 16; o > 0; o >>= 1) {
      const float ob = __shfl_xor_sync(0xffffffffu, best, o);
      const int oa = __shfl_xor_sync(0xffffffffu, arg, o);
      if (ob > best || (ob == best && oa < arg)) best = ob, arg = oa;
      finite += __shfl_xor_sync(0xffffffffu, finite, o);
      bad |= __shfl_xor_sync(0xffffffffu, static_cast<int>(bad), o) != 0;
    }
    if (lane == 0) {
      s.warp_max[warp] = best, s.warp_arg[warp] = arg;
      s.warp_finite[warp] = finite, s.warp_bad[warp] = bad;
    }
    for (int b = threadIdx.x; b < kBuckets; b += kThreads) s.buckets[b] = 0, s.bucket_weight[b] = 0.0f;
    __syncthreads();
    best = -INFINITY, arg = INT32_MAX, finite = 0, bad = false;
    for (int w = 0; w < kWarps; ++w) {  // warps in token order: strict > keeps the lowest index
      if (s.warp_max[w] > best) best = s.warp_max[w], arg = s.warp_arg[w];
      finite += s.warp_finite[w];
      bad |= s.warp_bad[w] != 0;
    }
    if (bad || finite == 0 || p.temperature < greedy_temperature) {
      if (threadIdx.x == 0) ids[blockIdx.x] = bad ? non_finite : (finite == 0 ? no_finite : arg);
      return;
    }
    r.max = best;
    r.log2_scale = 1.4426950408889634f / p.temperature;
    r.bucket_scale = kBucketsPerUnit / p.temperature;
    r.min_p = p.min_p;
  }
  const bool want_top_k = p.top_k > 0 && p.top_k < vocab && finite > p.top_k;  // else every finite token stays
  const bool want_top_p = p.top_p < 1.0f;
  if (!want_top_k && !want_top_p) {
    const int token = draw_row(s, r, p.uniform, reinterpret_cast<Mass*>(dynamic_smem));
    if (threadIdx.x == 0) ids[blockIdx.x] = token >= 0 ? token : no_finite;
    return;
  }

  // Pass 2: the mass of the min_p survivors, their count, and how many lie in each bucket of distance
  // (max - logit) / temperature from the top.
  Mass total = 0, survivors = 0;
  for_each_token(r, [&](int, float v) {
    const float w = r.weight(v);
    total += w > 0.0f ? mass_of(w) : 0;
    survivors += w > 0.0f ? 1 : 0;
    const float scaled = (r.max - v) * r.bucket_scale;
    if (w > 0.0f && scaled < kBuckets) {
      // Plain shared atomics: aggregating the lanes of a bucket first (match + reduce) measured slower, and
      // 64-bit fixed-point sums slower than fp32 ones.
      atomicAdd(&s.buckets[static_cast<int>(scaled)], 1);
      atomicAdd(&s.bucket_weight[static_cast<int>(scaled)], w);
    }
  });
  total = block_sum_mass(s, total);  // its barriers also complete the buckets
  survivors = block_sum_mass(s, survivors);
  const bool top_k = want_top_k && survivors > static_cast<Mass>(p.top_k);  // min_p left k or fewer: top_k keeps them all
  // The fewest buckets that hold what top_k and top_p keep: for top_k at least k survivors; for top_p
  // (without top_k: with it, top_p cuts within top_k's set) the target mass, by the float sums with a
  // margin. The selection checks the mass exactly and sends a row that falls short to the whole-row path.
  int buckets = -1, in_buckets = 0;
  {
    // In weight units, with a margin for the rounding of the fp32 sums.
    const double target = static_cast<double>(p.top_p) * static_cast<double>(total) / kMassScale * (1.0 + 1e-3);
    double weight = 0.0;
    for (int b = 0; b < kBuckets; ++b) {
      in_buckets += s.buckets[b];
      weight += static_cast<double>(s.bucket_weight[b]);
      const bool enough = top_k ? in_buckets >= p.top_k : weight >= target;
      if (enough) {
        buckets = b + 1;
        break;
      }
    }
  }
  const bool top_p_needed = want_top_p && (top_k ? p.top_k > 1 : survivors > 1);
  if (buckets > 0 && in_buckets <= kCandidates && (top_k || top_p_needed)) {
    // Pass 3: gather the candidates (the same arithmetic as pass 2 picks the same tokens).
    Candidates c{reinterpret_cast<Mass*>(dynamic_smem), reinterpret_cast<uint32_t*>(dynamic_smem + kCandidates * sizeof(Mass))};
    if (threadIdx.x == 0) s.count = 0;
    __syncthreads();
    for_each_token(r, [&](int i, float v) {
      const float w = r.weight(v);
      const bool take = w > 0.0f && (r.max - v) * r.bucket_scale < static_cast<float>(buckets);  // as pass 2
      const unsigned takers = __ballot_sync(0xffffffffu, take);
      if (takers == 0) return;
      int base = 0;
      if (lane == __ffs(takers) - 1) base = atomicAdd(&s.count, __popc(takers));
      base = __shfl_sync(0xffffffffu, base, __ffs(takers) - 1);
      if (take) {
        const int slot = base + __popc(takers & ((1u << lane) - 1u));
        c.keys[slot] = static_cast<Mass>(logit_key(v)) << 32 | ~static_cast<uint32_t>(i);
        c.values[slot] = __float_as_uint(w);
      }
    });
    __syncthreads();
    const int token = select_and_draw(s, c, s.count, p, top_k, want_top_p, total);
    if (token != kShortOfTarget) {
      if (threadIdx.x == 0) ids[blockIdx.x] = token >= 0 ? token : no_finite;
      return;
    }
  }

  // The whole-row path. top_k: the k-th largest logit's key (ties with it all stay).
  if (top_k) {
    Mass above = 0;
    radix_select(s, r, static_cast<Mass>(p.top_k), [&](float v, uint32_t& key) -> Mass {
      key = logit_key(v);
      return v > -INFINITY ? 1 : 0;
    }, r.kth_key, above);
    r.top_k = true;
  }
  // top_p: the smallest set of most likely tokens (ties by token id) holding top_p of the mass.
  Mass top_p_target = 0;  // 0: no cut
  if (want_top_p) {
    Mass kept = 0, count = 0;
    for_each_token(r, [&](int, float v) {
      const float w = r.weight(v);
      kept += w > 0.0f ? mass_of(w) : 0;
      count += w > 0.0f ? 1 : 0;
    });
    kept = block_sum_mass(s, kept);
    count = block_sum_mass(s, count);
    if (count > 1) top_p_target = static_cast<Mass>(ceil(static_cast<double>(p.top_p) * static_cast<double>(kept)));
  }
  if (top_p_target > 0) {
    uint32_t cut = 0;
    Mass above = 0;
    const bool found = radix_select(s, r, top_p_target, [&](float v, uint32_t& key) -> Mass {
      const float w = r.weight(v);
      key = __float_as_uint(w);
      return w > 0.0f ? mass_of(w) : 0;
    }, cut, above);
    if (found) {  // else rounding left the total a hair below target: everything stays
      // The tokens of weight `cut` are kept in token order until the mass reaches target; each holds
      // `tie` > 0 (the bin that took the mass to target was not empty).
      const Mass tie = mass_of(__uint_as_float(cut));
      r.top_p = true;
      r.cut_bits = cut;
      r.keep_ties = (top_p_target - above + tie - 1) / tie;
    }
  }
  const int token = draw_row(s, r, p.uniform, reinterpret_cast<Mass*>(dynamic_smem));
  if (threadIdx.x == 0) ids[blockIdx.x] = token >= 0 ? token : no_finite;
}

}  // namespace

void sample_rows(const float* logits, int64_t stride, int64_t rows, int64_t vocab, const SampleRowParams* params,
                 float greedy_temperature, int32_t* ids, int32_t non_finite, int32_t no_finite, cudaStream_t stream) {
  if (rows <= 0) return;
  // Dynamic shared memory: the candidates, or draw_row's two masses per step of every warp.
  const int64_t steps = ((vocab + kWarps - 1) / kWarps + kStep - 1) / kStep;
  const size_t bytes = std::max<size_t>(kCandidates * (sizeof(Mass) + sizeof(uint32_t)),
                                        static_cast<size_t>(2 * kWarps * steps) * sizeof(Mass));
  if (bytes > kMaxDynamicBytes) {
    throw Error("sample_rows kernel: vocab_size " + std::to_string(vocab) + " is above the " +
                std::to_string(kMaxDynamicBytes / (2 * kWarps * sizeof(Mass)) * kWarps * kStep) + " it supports");
  }
  static const bool configured = [] {
    ADALLM_CUDA_CHECK(cudaFuncSetAttribute(sample_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kMaxDynamicBytes));
    return true;
  }();
  (void)configured;
  launch_dependent("sample_rows", sample_kernel, dim3(static_cast<unsigned>(rows)), dim3(kThreads), bytes,
                   stream, logits, stride, static_cast<int>(vocab), params, greedy_temperature, ids, non_finite,
                   no_finite);
}

}  // namespace adallm::kernels
