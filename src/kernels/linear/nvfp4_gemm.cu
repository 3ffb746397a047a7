// NVFP4 prefill GEMM on sm_90a (see nvfp4_gemm.h).
//
// A block computes 256 weight rows × 128 tokens with four warpgroups; warp w of the block owns row tile
// w (16 rows) and, inside its warpgroup, the wgmma m64n128k16 A slice of those rows. Per 64-column k tile:
// - A: each lane loads its 16-byte code word and 2 scale bytes of the tile (nvfp4_tiles.h) and decodes
//   them exactly into the bf16 A fragments of four k16 steps (nvfp4_fragment.cuh).
// - B: the block's 128 token rows × 64 columns (16 KB) go through registers into shared memory in the
//   128-byte-swizzled K-major layout wgmma reads, with the tiles' k order: step kk's k = 2t + j and
//   2t + 8 + j are column 16t + 4kk + j and 16t + 4kk + 2 + j (j = 0, 1). So the 16-byte chunk c = 2kk + h
//   of a row holds the column pairs 8t + c (t = 0..3) in order, and the thread that loaded block t of a
//   row (32 contiguous bytes = pairs 8t..8t+7) writes pair 8t + c into slot t of chunk c.
// Two shared stages and a register prefetch: while the MMAs of tile kt run, the thread stores tile kt+1
// (loaded one step earlier) into the other stage, decodes its A, and issues the loads of tile kt+2.
// Blocks along grid x share a weight slab and walk the tokens, so each weight byte leaves DRAM once.
#include "kernels/linear/nvfp4_gemm.h"

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "core/error.h"
#include "kernels/cuda_check.h"
#include "kernels/linear/nvfp4_fragment.cuh"

namespace adallm::kernels {
namespace {

constexpr int kWarpgroups = 4;
constexpr int kThreads = kWarpgroups * 128;
constexpr int kRowTilesPerBlock = kWarpgroups * 4;
constexpr int kTokensPerBlock = 128;
constexpr int kStageBytes = kTokensPerBlock * 128;  // 128 tokens × 64 bf16
constexpr int kSmemBytes = 2 * kStageBytes + 1024;  // two stages, and slack to align them to 1024 bytes

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define ADALLM_WGMMA 1
#endif

#if defined(ADALLM_WGMMA)
// d += A · B for one warpgroup: A the m64 × k16 bf16 fragment in registers, B = [128 tokens × k16] bf16 in
// shared memory (descriptor), accumulate into d unless `accumulate` is 0.
__device__ __forceinline__ void wgmma_m64n128k16(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
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
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate));
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }

// Ties the accumulators to this point: the compiler may not move their uses across it.
__device__ __forceinline__ void fence_accumulators(float (&d)[64]) {
#pragma unroll
  for (int i = 0; i < 64; ++i) asm volatile("" : "+f"(d[i])::"memory");
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

// Shared-memory writes of ordinary stores become visible to wgmma (the async proxy).
__device__ __forceinline__ void fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }

// wgmma matrix descriptor: K-major, 128-byte swizzle, rows of 128 bytes in groups of 8 (1024 bytes apart).
__device__ __forceinline__ uint64_t b_descriptor(uint32_t smem_address) {
  return static_cast<uint64_t>((smem_address & 0x3FFFF) >> 4) | (static_cast<uint64_t>(1) << 16) |
         (static_cast<uint64_t>(1024 >> 4) << 32) | (static_cast<uint64_t>(1) << 62);
}

__device__ __forceinline__ void store(const Nvfp4LinearParams& p, int64_t index, float value) {
  if (p.out_bf16 != nullptr) {
    p.out_bf16[index] = __float2bfloat16_rn(value);
  } else {
    p.out[index] = value;
  }
}
#endif

__global__ void __launch_bounds__(kThreads, 1) gemm_kernel(Nvfp4LinearParams p) {
#if defined(ADALLM_WGMMA)
  extern __shared__ uint8_t smem_raw[];
  const uint32_t smem_base = (static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)) + 1023u) & ~1023u;
  uint8_t* const smem = smem_raw + (smem_base - static_cast<uint32_t>(__cvta_generic_to_shared(smem_raw)));

  const int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
  const int g = lane / 4, t = lane % 4;
  const int64_t k_tiles = p.shape.k_tiles();
  const int64_t token0 = static_cast<int64_t>(blockIdx.x) * kTokensPerBlock;

  // This warp's row tile (a padding warp past the last one multiplies zeros).
  const int64_t rt = static_cast<int64_t>(blockIdx.y) * kRowTilesPerBlock + warp;
  const bool has_rows = rt < p.shape.row_tiles();
  const uint4* tiles = reinterpret_cast<const uint4*>(p.tiles) + (has_rows ? rt : 0) * k_tiles * 32 + lane;
  const uint16_t* scales = reinterpret_cast<const uint16_t*>(p.tile_scales) + (has_rows ? rt : 0) * k_tiles * 32 + lane;

  // The B row this thread stages, and its 16-column block within each k tile.
  const int b_row = tid / 4, b_block = tid % 4;
  const bool has_token = token0 + b_row < p.tokens;
  const __nv_bfloat16* x = p.x + (has_token ? token0 + b_row : 0) * p.x_stride + 16 * b_block;
  const uint32_t b_store = static_cast<uint32_t>(b_row * 128 + b_block * 4);
  const int b_swizzle = b_row % 8;

  uint4 w_raw = make_uint4(0, 0, 0, 0), b_raw[2] = {make_uint4(0, 0, 0, 0), make_uint4(0, 0, 0, 0)};
  uint32_t s_raw = 0;
  const auto load = [&](int64_t kt) {
    if (has_rows) {
      w_raw = __ldg(tiles + kt * 32);
      s_raw = __ldg(scales + kt * 32);
    }
    const bool ok = has_token && kt * 64 + 16 * b_block < p.shape.k;
    b_raw[0] = ok ? __ldg(reinterpret_cast<const uint4*>(x + kt * 64)) : make_uint4(0, 0, 0, 0);
    b_raw[1] = ok ? __ldg(reinterpret_cast<const uint4*>(x + kt * 64 + 8)) : make_uint4(0, 0, 0, 0);
  };
  const auto stage_b = [&](int stage) {
    const uint32_t pairs[8] = {b_raw[0].x, b_raw[0].y, b_raw[0].z, b_raw[0].w,
                               b_raw[1].x, b_raw[1].y, b_raw[1].z, b_raw[1].w};
    uint8_t* base = smem + stage * kStageBytes + b_store;
#pragma unroll
    for (int c = 0; c < 8; ++c) *reinterpret_cast<uint32_t*>(base + ((c ^ b_swizzle) << 4)) = pairs[c];
  };
  const auto decode = [&](uint32_t (&a)[4][4]) {
    const uint32_t scale_g = nvfp4::scale_pair(s_raw & 0xFF), scale_g8 = nvfp4::scale_pair((s_raw >> 8) & 0xFF);
    const uint32_t q[4] = {w_raw.x, w_raw.y, w_raw.z, w_raw.w};
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) nvfp4::decode_fragment(q[kk], scale_g, scale_g8, a[kk]);
  };

  float d[64];
#pragma unroll
  for (int i = 0; i < 64; ++i) d[i] = 0.0f;
  uint32_t a_cur[4][4], a_next[4][4];

  load(0);
  stage_b(0);
  fence_proxy_async();
  decode(a_cur);
  if (k_tiles > 1) load(1);
  __syncthreads();
  for (int64_t kt = 0; kt < k_tiles; ++kt) {
    const int stage = static_cast<int>(kt % 2);
    const uint64_t desc = b_descriptor(smem_base + stage * kStageBytes);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) wgmma_m64n128k16(d, a_cur[kk], desc + 2 * kk, 1);  // + 32 bytes per k16 step
    wgmma_commit();
    if (kt + 1 < k_tiles) {
      stage_b(stage ^ 1);
      // The proxy fence waits for this thread's outstanding memory operations: before the next loads are
      // issued, so that it does not wait for them.
      fence_proxy_async();
      decode(a_next);
    }
    if (kt + 2 < k_tiles) load(kt + 2);
    wgmma_wait_all();
    fence_accumulators(d);
    fence_fragments(a_cur);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < 4; ++kk) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a_cur[kk][i] = a_next[kk][i];
    }
  }
  if (!has_rows) return;

  // d[4j + i]: tile row g + 8 (i / 2), token 8j + 2t + i % 2 of the block's 128.
  if (p.shape.gate_up) {
    const int64_t pair = rt * (kNvfp4TileRows / 2) + g;
    if (pair >= p.shape.n / 2) return;
    const float gate_scale = nvfp4::kDecodeUnscale * p.row_scale[pair];
    const float up_scale = nvfp4::kDecodeUnscale * p.row_scale[pair + p.shape.n / 2];
    const bool silu = p.activation == Nvfp4Activation::silu;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        const int64_t token = token0 + 8 * j + 2 * t + i;
        if (token < p.tokens) store(p, token * p.out_stride + pair, nvfp4::gated(d[4 * j + i] * gate_scale, d[4 * j + 2 + i] * up_scale, silu));
      }
    }
    return;
  }
  const int64_t row_g = rt * kNvfp4TileRows + g, row_g8 = row_g + 8;
  const float scale_g = row_g < p.shape.n ? nvfp4::kDecodeUnscale * p.row_scale[row_g] : 0.0f;
  const float scale_g8 = row_g8 < p.shape.n ? nvfp4::kDecodeUnscale * p.row_scale[row_g8] : 0.0f;
#pragma unroll
  for (int j = 0; j < 16; ++j) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int64_t token = token0 + 8 * j + 2 * t + i;
      if (token >= p.tokens) continue;
      if (row_g < p.shape.n) store(p, token * p.out_stride + row_g, d[4 * j + i] * scale_g);
      if (row_g8 < p.shape.n) store(p, token * p.out_stride + row_g8, d[4 * j + 2 + i] * scale_g8);
    }
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

void nvfp4_gemm(const Nvfp4LinearParams& p, cudaStream_t stream) {
  nvfp4_check_params(p, "nvfp4 GEMM");
  require(reinterpret_cast<uintptr_t>(p.x) % 16 == 0 && p.x_stride % 8 == 0,
          "activations must start 16-byte aligned with a row stride that is a multiple of 8 (got stride " +
              std::to_string(p.x_stride) + ")");
  require(nvfp4_gemm_supported(), "needs an sm_90 GPU and a build with sm_90a code (CMAKE_CUDA_ARCHITECTURES 90a)");
  if (p.tokens == 0) return;
  const dim3 grid(static_cast<unsigned>((p.tokens + kTokensPerBlock - 1) / kTokensPerBlock),
                  static_cast<unsigned>((p.shape.row_tiles() + kRowTilesPerBlock - 1) / kRowTilesPerBlock));
  require(grid.y <= 65535, "weight has too many rows for one launch");
  gemm_kernel<<<grid, kThreads, kSmemBytes, stream>>>(p);
  ADALLM_CUDA_CHECK_LAUNCH("nvfp4 GEMM");
}

}  // namespace adallm::kernels
