// Device helpers shared by the NVFP4 linear kernels: one lane's 16-byte word of a repacked tile (see
// nvfp4_tiles.h) decoded into the bf16 A fragment of an m16n8k16 MMA step (the same fragment serves a
// wgmma m64nNk16 warp slice). Bit reasoning, all exact:
// - e2m1 → bf16: the code's sign on bit 15 of a 16-bit half and e1 e0 m on bits 8..6 put e1 e0 on the
//   exponent's two low bits and m on the mantissa's top bit: value × 2^-126 (0.5 becomes the subnormal
//   2^-127).
// - scale: the e5m3 byte u (exponent E = exp + 16, no subnormals) gives the bf16 of s × 2^63 as
//   (u << 4) + (174 << 7). One bf16 multiply gives e2m1 · s · 2^-63: at most 6 significant bits, within
//   [2^-73, 2^-51.6], so exact and normal; the 2^63 returns in the fp32 epilogue with weight_scale_2.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

#include "kernels/linear/nvfp4_tiles.h"

namespace adallm::kernels::nvfp4 {

// What the epilogue multiplies by, with the row's weight_scale_2, to undo the decode's 2^-63.
inline constexpr float kDecodeUnscale = 0x1p63f;

// bf16x2 (s · 2^63, s · 2^63) from an e5m3 byte.
__device__ __forceinline__ uint32_t scale_pair(uint32_t byte) { return ((byte << 4) + (174u << 7)) * 0x10001u; }

__device__ __forceinline__ uint32_t bf16x2_mul(uint32_t a, uint32_t b) {
  __nv_bfloat162 x = *reinterpret_cast<__nv_bfloat162*>(&a);
  __nv_bfloat162 y = *reinterpret_cast<__nv_bfloat162*>(&b);
  __nv_bfloat162 r = __hmul2(x, y);
  return *reinterpret_cast<uint32_t*>(&r);
}

// The A fragment of one MMA step from the step's code word q and the lane's scale pairs of rows g, g + 8:
// a[0] row g, k = 2t, 2t+1; a[1] row g+8, same k; a[2] row g, k = 2t+8, 2t+9; a[3] row g+8, same k.
// The repack places three of the four code pairs so that one shift and one mask put sign and e1 e0 m on
// bf16 bits 15 and 8..6 of each half; the fourth pair fills the remaining bits of each half (sign 13,
// e1 11, e0 10, m 14; see nvfp4_tiles.cu), where no single shift reaches: after a shift by 8 and a mask,
// one multiply by 1 + 2^5 + 2^10 moves m by 0, e1 e0 by 5 and the sign by 10 at once — its partial
// products occupy pairwise distinct bits (checked exhaustively when the places were chosen), so the sum
// has no carries and equals their OR.
__device__ __forceinline__ void decode_fragment(uint32_t q, uint32_t scale_g, uint32_t scale_g8, uint32_t (&a)[4]) {
  constexpr uint32_t kPlaces = 0x81C081C0u;  // sign, e1, e0, m of both halves
  a[0] = bf16x2_mul(q & kPlaces, scale_g);
  a[1] = bf16x2_mul((q << 3) & kPlaces, scale_g8);
  a[2] = bf16x2_mul((q << 6) & kPlaces, scale_g);
  a[3] = bf16x2_mul((((q >> 8) & 0x006C006Cu) * 1057u) & kPlaces, scale_g8);
}

// c += A · B: mma.m16n8k16 bf16 × bf16 → fp32 (A the fragment above, B two bf16 pairs of one token).
__device__ __forceinline__ void mma_bf16(float (&c)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                         uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// One lane's 16-byte code word and two scale bytes of one tile.
struct WeightWord {
  uint4 codes;
  uint32_t scales;
};

// A lane's words of one row tile, k tile by k tile. A row tile past the last reads row tile 0 instead (a
// padding warp's products are never stored) and a k tile past the last repeats it, so loads need no
// branch.
struct TileStream {
  static constexpr int kRecordWords = static_cast<int>(kNvfp4TileRecordBytes / 16);  // 16-byte words per tile
  const uint4* codes;
  const uint16_t* scales;
  int k_tiles;
  __device__ TileStream(const Nvfp4LinearParams& p, int64_t rt, int lane) : k_tiles(static_cast<int>(p.shape.k_tiles())) {
    const int64_t source = rt < p.shape.row_tiles() ? rt : 0;
    const uint4* const first = reinterpret_cast<const uint4*>(p.tiles) + source * k_tiles * kRecordWords;
    codes = first + lane;
    scales = reinterpret_cast<const uint16_t*>(first + kNvfp4TileBytes / 16) + lane;
  }
  __device__ __forceinline__ void load(int kt, WeightWord& w) const {
    const int at = kt < k_tiles ? kt : k_tiles - 1;
    w.codes = __ldg(codes + at * kRecordWords);
    w.scales = __ldg(scales + at * kRecordWords * 8);
  }
};

// The A fragments of a tile's four MMA steps.
__device__ __forceinline__ void decode_tile(const WeightWord& w, uint32_t (&a)[4][4]) {
  const uint32_t scale_g = scale_pair(w.scales & 0xFF), scale_g8 = scale_pair((w.scales >> 8) & 0xFF);
  const uint32_t q[4] = {w.codes.x, w.codes.y, w.codes.z, w.codes.w};
#pragma unroll
  for (int kk = 0; kk < 4; ++kk) decode_fragment(q[kk], scale_g, scale_g8, a[kk]);
}

// One output element: fp32 into p.out, or rounded to bf16 into p.out_bf16.
__device__ __forceinline__ void store_output(const Nvfp4LinearParams& p, int64_t index, float value) {
  if (p.out_bf16 != nullptr) {
    p.out_bf16[index] = __float2bfloat16_rn(value);
  } else {
    p.out[index] = value;
  }
}

// act(gate) · up, gelu_tanh being PyTorch's tanh form.
__device__ __forceinline__ float gated(float gate, float up, bool silu) {
  const float act = silu ? gate / (1.0f + expf(-gate))
                         : 0.5f * gate * (1.0f + tanhf(0.7978845608028654f * (gate + 0.044715f * gate * gate * gate)));
  return act * up;
}

// The epilogue of an mma.sync GEMM warp that owns row tile rt and kGroups groups of 8 tokens from token0:
// c[j] holds tile row g (c0, c1: tokens 8j + 2t, 8j + 2t + 1) and row g + 8 (c2, c3). Each value is
// multiplied by `unscale`, its row's weight_scale_2 and token_scale(token), then stored (or gated for a
// gate_up shape, whose tile row g is gate row `pair` and g + 8 the matching up row).
template <int kGroups, typename TokenScale>
__device__ __forceinline__ void store_warp_tile(const Nvfp4LinearParams& p, const float (&c)[kGroups][4], int64_t rt,
                                                int64_t token0, int lane, float unscale, TokenScale token_scale) {
  const int g = lane / 4, t = lane % 4;
  if (p.shape.gate_up) {
    const int64_t pair = rt * (kNvfp4TileRows / 2) + g;
    if (pair >= p.shape.n / 2) return;
    const float gate_scale = unscale * p.row_scale[pair];
    const float up_scale = unscale * p.row_scale[pair + p.shape.n / 2];
    const bool silu = p.activation == Nvfp4Activation::silu;
#pragma unroll
    for (int j = 0; j < kGroups; ++j) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int64_t token = token0 + 8 * j + 2 * t + i;
        if (token >= p.tokens) continue;
        const float x_scale = token_scale(token);
        store_output(p, token * p.out_stride + pair, gated(c[j][i] * x_scale * gate_scale, c[j][i + 2] * x_scale * up_scale, silu));
      }
    }
    return;
  }
  const int64_t row_g = rt * kNvfp4TileRows + g, row_g8 = row_g + 8;
  const float scale_g = row_g < p.shape.n ? unscale * p.row_scale[row_g] : 0.0f;
  const float scale_g8 = row_g8 < p.shape.n ? unscale * p.row_scale[row_g8] : 0.0f;
#pragma unroll
  for (int j = 0; j < kGroups; ++j) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t token = token0 + 8 * j + 2 * t + i;
      if (token >= p.tokens) continue;
      const float x_scale = token_scale(token);
      if (row_g < p.shape.n) store_output(p, token * p.out_stride + row_g, c[j][i] * x_scale * scale_g);
      if (row_g8 < p.shape.n) store_output(p, token * p.out_stride + row_g8, c[j][i + 2] * x_scale * scale_g8);
    }
  }
}

}  // namespace adallm::kernels::nvfp4
