// NVFP4 weights repacked at load into the layout every NVFP4 linear kernel reads (the decode GEMV and the
// prefill GEMM), and the parameters those kernels share. Device pointers only; the kernels themselves
// live in nvfp4_gemv.h and nvfp4_gemm.h.
//
// Repacked layout ("tile16x64"): the weight [N, K] is cut into tiles of 16 rows × 64 columns, N padded to
// 16 and K to 64 with zeros. Tiles are stored row-tile-major, K-contiguous within a row tile, each as a
// 576-byte record: 512 bytes of codes, then its 64 bytes of block scales, so that one warp streams one
// contiguous run of DRAM (scales in an array of their own, a second stream per warp, measured ≈ 5 %
// slower on the H100). Lane L (g = L / 4, t = L % 4) owns the tile's 16-column block t
// of rows g and g + 8: its 16 bytes hold, for each of four mma.m16n8k16 steps, the eight e2m1 codes of its
// A fragment — columns 4kk, 4kk+1 as the MMA's k = 2t, 2t+1 and 4kk+2, 4kk+3 as k = 2t+8, 2t+9 (any k
// order is exact when the activations follow it) — placed so that three of its four bf16 pairs come out
// of one shift and one mask (see nvfp4_fragment.cuh). So a lane needs one block scale per row per tile,
// and its activations are 16 contiguous columns.
// Block scales are re-encoded at load from e4m3 into an unsigned e5m3 byte with no subnormals (every e4m3
// value is exact in it): 2 bytes per lane (rows g, g + 8), after the codes. A block whose e4m3 scale is
// zero has its codes zeroed, so its scale byte may decode to anything finite.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

#if defined(__CUDACC__)
#define ADALLM_HOST_DEVICE __host__ __device__
#else
#define ADALLM_HOST_DEVICE
#endif

namespace adallm::kernels {

inline constexpr int64_t kNvfp4TileRows = 16;
inline constexpr int64_t kNvfp4TileCols = 64;
inline constexpr int64_t kNvfp4TileBytes = 512;       // e2m1 codes of one tile
inline constexpr int64_t kNvfp4TileScaleBytes = 64;   // e5m3 scales of one tile, after its codes
inline constexpr int64_t kNvfp4TileRecordBytes = kNvfp4TileBytes + kNvfp4TileScaleBytes;

struct Nvfp4TiledShape {
  int64_t n = 0;  // output features (rows of W)
  int64_t k = 0;  // input features, a multiple of 16
  // A fused gate/up weight ([gate; up], n even) repacked so that tile rows 0-7 are gate rows 8·tile + 0-7
  // and rows 8-15 the matching up rows: a lane then holds gate and up of the same output in its
  // accumulators, and the GEMV can write act(gate) · up ([tokens, n / 2]) directly.
  bool gate_up = false;
  ADALLM_HOST_DEVICE int64_t row_tiles() const {
    return gate_up ? (n / 2 + kNvfp4TileRows / 2 - 1) / (kNvfp4TileRows / 2) : (n + kNvfp4TileRows - 1) / kNvfp4TileRows;
  }
  // The checkpoint row held by tile row r (0-15) of row tile rt; n or more for padding.
  ADALLM_HOST_DEVICE int64_t source_row(int64_t rt, int64_t r) const {
    if (!gate_up) return rt * kNvfp4TileRows + r;
    const int64_t pair = rt * (kNvfp4TileRows / 2) + r % (kNvfp4TileRows / 2);
    if (pair >= n / 2) return n;
    return r < kNvfp4TileRows / 2 ? pair : pair + n / 2;
  }
  ADALLM_HOST_DEVICE int64_t k_tiles() const { return (k + kNvfp4TileCols - 1) / kNvfp4TileCols; }
  // Bytes of the repacked weight, codes and scales.
  ADALLM_HOST_DEVICE int64_t tile_bytes() const { return row_tiles() * k_tiles() * kNvfp4TileRecordBytes; }
};

// Repacks a checkpoint-layout NVFP4 weight already on the device: packed [n, k/2] u8 (low nibble = even
// column), scales [n, k/16] e4m3, both row-major. Writes the tile records (shape.tile_bytes(), 16-byte
// aligned). Counts into *bad_scales (device int, zeroed by the caller) every scale that is
// negative or NaN: such a weight is invalid and the caller must refuse it.
// Two layouts share the record size: w4a16 (above; the GEMV and the bf16 GEMMs) and w4a8 (the FP8 GEMM of
// nvfp4_w4a8.h: each MMA step one 16-column block, codes placed for an e4m3 decode, scales by row).
enum class Nvfp4Layout { w4a16, w4a8 };
void nvfp4_repack(const uint8_t* packed, const uint8_t* scales, Nvfp4TiledShape shape, uint8_t* tiles,
                  int* bad_scales, cudaStream_t stream, Nvfp4Layout layout = Nvfp4Layout::w4a16);

enum class Nvfp4Activation { none, silu, gelu_tanh };

struct Nvfp4LinearParams {
  Nvfp4TiledShape shape;
  const uint8_t* tiles = nullptr;    // repacked tile records (codes and scales), 16-byte aligned
  const float* row_scale = nullptr;  // [n] per-row weight_scale_2 (ModelOpt multiplier convention)
  // [tokens, k] activations, row stride x_stride (even), 4-byte aligned; rows that start 16-byte aligned
  // (x 16-byte aligned, x_stride a multiple of 8) are read in 16-byte loads.
  const __nv_bfloat16* x = nullptr;
  int64_t x_stride = 0;
  int64_t tokens = 0;
  // GEMM only: x is already in the tiles' k order ([tokens, k rounded up to 64], 16-byte aligned rows;
  // see nvfp4_permute_activations in nvfp4_gemm.h).
  bool x_permuted = false;
  // [tokens, n] (or [tokens, n / 2] for a gate_up shape), row stride out_stride: fp32 into `out`, or bf16
  // (round to nearest even) into `out_bf16` — exactly one of the two — for a consumer that reads bf16
  // activations (the next GEMV).
  float* out = nullptr;
  __nv_bfloat16* out_bf16 = nullptr;
  // wgmma GEMM only, bf16 output only: write each 64-feature group of the output in the tiles' k order
  // (nvfp4_permute_activations'), so that the next layer's GEMM takes it with x_permuted (gate_up → down).
  // Needs an output width that is a multiple of 64.
  bool out_permuted = false;
  // gate_up shapes only (and required there): out = act(gate) · up, gelu_tanh being PyTorch's tanh form.
  Nvfp4Activation activation = Nvfp4Activation::none;
  int64_t out_stride = 0;
  // 0: chosen from the shape. Benchmarks force the GEMV's 1 (16 warps per block), 2 (8 warps, 4 blocks
  // per SM), 3 (8 warps, 2 row tiles per block), 4 (4 row tiles per block up to 16 tokens a pass, else 2)
  // or 5 (16 warps, 2 row tiles), the wgmma GEMM's 1 (256 tokens per block) or 2 (128).
  int variant = 0;
  // GEMV only: x holds residual ⊙ norm weight and its norm is still to apply (backend::NormedRows' second
  // form): each token's dot products are multiplied by 1 / sqrt(Σ_j x_partials[token, j] / k + x_eps),
  // j < x_partials_count, before row_scale and the activation.
  const float* x_partials = nullptr;
  int64_t x_partials_stride = 0;
  int x_partials_count = 0;
  float x_eps = 0.0f;
  // GEMV only, plain shapes with out_bf16: the block's output joins the residual stream and leaves the next
  // norm's inputs: residual[token, row] += the fp32 result, then out_bf16 gets residual · norm_weight (· (1 +
  // norm_weight) with norm_gemma) and norm_partials[token, row tile] the sum of residual² over the tile's
  // rows. norm_partials needs row_tiles() columns.
  float* residual = nullptr;
  int64_t residual_stride = 0;
  const float* norm_weight = nullptr;
  bool norm_gemma = false;
  float* norm_partials = nullptr;
  int64_t norm_partials_stride = 0;
  // GEMV only. sm_90: launch as a programmatic dependent of the previous kernel in the stream, which then
  // overlaps this one's weight prefetch (weights never depend on it; activations are read after it
  // completes).
  bool dependent_launch = true;
};

// Throws adallm::Error, prefixed with `kernel`, for a bad shape, pointer, alignment, stride or activation.
void nvfp4_check_params(const Nvfp4LinearParams& params, const char* kernel);

}  // namespace adallm::kernels
