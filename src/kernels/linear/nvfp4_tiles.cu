// The NVFP4 repack kernel and the checks every NVFP4 linear kernel makes of its parameters (see
// nvfp4_tiles.h).
#include "kernels/linear/nvfp4_tiles.h"

#include <cstdint>
#include <string>

#include "core/error.h"
#include "kernels/cuda_check.h"

namespace adallm::kernels {
namespace {

__device__ uint32_t code_at(const uint8_t* packed, const uint8_t* scales, int64_t n, int64_t k, int64_t row,
                            int64_t col) {
  if (row >= n || col >= k) return 0;
  if ((scales[row * (k / 16) + col / 16] & 0x7F) == 0) return 0;  // zero scale: the block is zero
  const uint8_t b = packed[row * (k / 2) + col / 2];
  return (col & 1) ? (b >> 4) : (b & 0x0F);
}

// e4m3 (sign 0, bias 7, subnormals) → e5m3 (E = exp + 16, no subnormals); NaN and negative are counted.
__device__ uint32_t e5m3_of(uint32_t s, int* bad_scales) {
  if (s == 0x80) return 0;  // -0 is a zero scale
  if ((s & 0x80) != 0 || (s & 0x7F) == 0x7F) {
    atomicAdd(bad_scales, 1);
    return 0;
  }
  const uint32_t e = (s >> 3) & 0x0F;
  uint32_t m = s & 7;
  int exp = static_cast<int>(e) - 7;
  if (e == 0) {
    if (m == 0) return 0;
    // m · 2^-9 with m in 1..7: normalize the leading one away.
    const int p = m >= 4 ? 2 : (m >= 2 ? 1 : 0);
    exp = p - 9;
    m = (m - (1u << p)) << (3 - p);
  }
  return (static_cast<uint32_t>(exp + 16) << 3) | m;
}

// One warp per tile; lane (g, t) writes its 16-byte word of rows g and g + 8, and the tile's scales.
// w4a16 (nvfp4_tiles.h): lane t owns the tile's 16-column block t: MMA step kk's k = 2t, 2t+1 are its
// columns 4kk, 4kk+1 and k = 2t+8, 2t+9 its columns 4kk+2, 4kk+3 (any k order is right when A and B agree).
// w4a8: MMA step kk is block kk of the tile; the lane holds its columns 16kk + 4t … + 3 as e4m3-ready
// bits — row g's code j in byte j at sign 7, e1 e0 m 4..2 (one mask gives e2m1 · 2^-6 as e4m3), row
// g + 8's at sign 6, e1 1, e0 0, m 5 (three shifts); scales 4 bytes per row, row r's blocks 0..3 at byte
// 8 (r % 8) + 4 (r / 8) of the scale area.
template <Nvfp4Layout kLayout>
__global__ void repack_kernel(const uint8_t* __restrict__ packed, const uint8_t* __restrict__ scales,
                              Nvfp4TiledShape shape, uint4* __restrict__ tiles, int* bad_scales) {
  const int64_t k_tiles = shape.k_tiles();
  const int64_t tile = blockIdx.x;  // rt * k_tiles + kt
  const int64_t rt = tile / k_tiles, kt = tile % k_tiles;
  const int lane = threadIdx.x, g = lane / 4, t = lane % 4;
  const int64_t r0 = shape.source_row(rt, g), r1 = shape.source_row(rt, g + 8);
  const auto at = [&](int64_t row, int64_t col) { return code_at(packed, scales, shape.n, shape.k, row, col); };
  // The e5m3 scale of `row`'s `block` (0 past N or K).
  const auto scale_of = [&](int64_t row, int64_t block) {
    return (row < shape.n && block * 16 < shape.k) ? e5m3_of(scales[row * (shape.k / 16) + block], bad_scales) : 0u;
  };
  uint4* const record = tiles + tile * (kNvfp4TileRecordBytes / 16);
  uint8_t* const scale_area = reinterpret_cast<uint8_t*>(record + kNvfp4TileBytes / 16);
  uint32_t words[4];
  if constexpr (kLayout == Nvfp4Layout::w4a16) {
    const int64_t block = kt * (kNvfp4TileCols / 16) + t;
    for (int kk = 0; kk < 4; ++kk) {
      const int64_t c = block * 16 + 4 * kk;
      // Bit places (nvfp4_fragment.cuh decodes them): in each 16-bit half (column c or c + 2 low, c + 1
      // or c + 3 high), row g at c: sign 15, e1 e0 m at 8..6; row g + 8 at c: 12, 5..3; row g at c + 2:
      // 9, 2..0; row g + 8 at c + 2: sign 13, e1 11, e0 10, m 14.
      const auto plain = [](uint32_t code, int sign_bit, int magnitude_shift) {
        return (code >> 3) << sign_bit | (code & 7u) << magnitude_shift;
      };
      const auto split = [](uint32_t code, int half) {
        return (code >> 3) << (13 + half) | ((code >> 2) & 1u) << (11 + half) | ((code >> 1) & 1u) << (10 + half) |
               (code & 1u) << (14 + half);
      };
      words[kk] = plain(at(r0, c), 15, 6) | plain(at(r0, c + 1), 31, 22) | plain(at(r1, c), 12, 3) |
                  plain(at(r1, c + 1), 28, 19) | plain(at(r0, c + 2), 9, 0) | plain(at(r0, c + 3), 25, 16) |
                  split(at(r1, c + 2), 0) | split(at(r1, c + 3), 16);
    }
    // Each lane's two scales (block t of rows g and g + 8), 2 bytes per lane in lane order.
    reinterpret_cast<uint16_t*>(scale_area)[lane] = static_cast<uint16_t>(scale_of(r0, block) | scale_of(r1, block) << 8);
  } else {
    for (int kk = 0; kk < 4; ++kk) {
      const int64_t c = kt * kNvfp4TileCols + 16 * kk + 4 * t;
      uint32_t w = 0;
      for (int j = 0; j < 4; ++j) {
        const uint32_t a = at(r0, c + j), b = at(r1, c + j);
        const uint32_t byte = (a >> 3) << 7 | (a & 7u) << 2 | (b >> 3) << 6 | ((b >> 2) & 1u) << 1 |
                              ((b >> 1) & 1u) | (b & 1u) << 5;
        w |= byte << (8 * j);
      }
      words[kk] = w;
    }
    if (lane < 16) {  // lane L writes the four block scales of tile row L
      uint32_t four = 0;
      for (int b = 0; b < 4; ++b) four |= scale_of(shape.source_row(rt, lane), kt * (kNvfp4TileCols / 16) + b) << (8 * b);
      reinterpret_cast<uint32_t*>(scale_area)[2 * (lane % 8) + lane / 8] = four;
    }
  }
  record[lane] = make_uint4(words[0], words[1], words[2], words[3]);
}

void require(const char* kernel, bool ok, const std::string& what) {
  if (!ok) throw Error(std::string(kernel) + ": " + what);
}

bool aligned(const void* p, uintptr_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

}  // namespace

void nvfp4_repack(const uint8_t* packed, const uint8_t* scales, Nvfp4TiledShape shape, uint8_t* tiles,
                  int* bad_scales, cudaStream_t stream, Nvfp4Layout layout) {
  require("nvfp4 repack", shape.n > 0 && shape.k > 0 && shape.k % 16 == 0,
          "repack of [" + std::to_string(shape.n) + ", " + std::to_string(shape.k) + "]: K must be a positive multiple of 16");
  require("nvfp4 repack", !shape.gate_up || shape.n % 2 == 0, "repack of a gate_up weight: N must be even");
  require("nvfp4 repack", packed && scales && tiles && bad_scales, "null pointer");
  require("nvfp4 repack", aligned(tiles, 16), "the output buffer must be 16-byte aligned");
  const int64_t blocks = shape.row_tiles() * shape.k_tiles();
  const auto kernel = layout == Nvfp4Layout::w4a8 ? repack_kernel<Nvfp4Layout::w4a8> : repack_kernel<Nvfp4Layout::w4a16>;
  kernel<<<static_cast<unsigned>(blocks), 32, 0, stream>>>(packed, scales, shape, reinterpret_cast<uint4*>(tiles), bad_scales);
  ADALLM_CUDA_CHECK_LAUNCH("nvfp4 repack");
}

void nvfp4_check_params(const Nvfp4LinearParams& p, const char* kernel) {
  const std::string shape = "[" + std::to_string(p.shape.n) + ", " + std::to_string(p.shape.k) + "]";
  require(kernel, p.shape.n > 0 && p.shape.k > 0 && p.shape.k % 16 == 0, "weight " + shape + ": K must be a positive multiple of 16");
  require(kernel, p.tiles && p.row_scale && (p.x || p.tokens == 0), "null pointer for weight " + shape);
  require(kernel, (p.out != nullptr) != (p.out_bf16 != nullptr), "weight " + shape + ": give exactly one of out and out_bf16");
  require(kernel, aligned(p.tiles, 16), "repacked weight " + shape + " is misaligned");
  require(kernel, aligned(p.x, 4) && p.x_stride % 2 == 0 && p.x_stride >= p.shape.k,
          "activations need 4-byte alignment and an even row stride >= K");
  require(kernel, !p.shape.gate_up || p.shape.n % 2 == 0, "gate_up weight " + shape + ": N must be even");
  require(kernel, p.out_stride >= (p.shape.gate_up ? p.shape.n / 2 : p.shape.n), "output row stride below the output width");
  require(kernel, p.shape.gate_up == (p.activation != Nvfp4Activation::none),
          "weight " + shape + ": an activation goes with a gate_up weight, and only there");
  require(kernel, p.tokens >= 0, "negative token count");
}

}  // namespace adallm::kernels
