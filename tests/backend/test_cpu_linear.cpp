// Linear on the CPU backend: NVFP4 and dense (BF16, F16, F32) weights, fused parts each keeping their own
// weight_scale_2, against x W^T in fp64 with W decoded by quant::nvfp4_dequantize (the library decode);
// strided x/out views, odd token counts and the load errors. Also prints the measured NVFP4 speed.
#include <chrono>
#include <cstdio>
#include <cstring>

#include "core/float_codecs.h"
#include "cpu_test_util.h"
#include "quant/fp8_activations.h"
#include "quant/nvfp4.h"

namespace adallm::backend::test {
namespace {

struct Weight {
  quant::Nvfp4Tensor q;
  std::vector<float> decoded;  // [rows, cols]
};

Weight make_nvfp4(int64_t rows, int64_t cols, uint32_t seed) {
  const auto w = random_floats(size_t(rows * cols), seed, -2, 2);
  const float ws2 = quant::modelopt_weight_scale_2(quant::abs_max(w));
  Weight out{quant::nvfp4_quantize_modelopt(w, rows, cols, ws2), std::vector<float>(w.size())};
  quant::nvfp4_dequantize(out.q.view(), out.decoded);
  return out;
}

LinearSource nvfp4_source(const std::string& name, const Weight& w) {
  LinearSource s;
  s.name = name;
  s.out_features = w.q.rows;
  s.in_features = w.q.cols;
  s.nvfp4 = w.q.view();
  return s;
}

// y[r, o] = Σ_i x[r, i] W[o, i] in fp64; the result row stride is out_features.
std::vector<double> reference_linear(const std::vector<float>& x, const std::vector<float>& w, int64_t rows,
                                     int64_t in, int64_t out) {
  std::vector<double> y(size_t(rows * out));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t o = 0; o < out; ++o) {
      double acc = 0;
      for (int64_t i = 0; i < in; ++i) acc += double(x[r * in + i]) * w[o * in + i];
      y[r * out + o] = acc;
    }
  }
  return y;
}

// fp32 accumulation over `in` terms: error bounded by ~in * eps * Σ|x w|; this tolerance is generous.
void expect_linear(const std::vector<float>& got, const std::vector<double>& expected, int64_t in) {
  expect_near_all(got, expected, 1e-5, 1e-6 * double(in), "linear");
}

TEST(CpuLinear, Nvfp4MatchesFp64OnOddShapes) {
  auto b = cpu();
  for (int64_t rows : {1, 7, 83}) {
    for (auto [out, in] : {std::pair<int64_t, int64_t>{48, 16}, {33, 80}, {96, 208}}) {
      const Weight w = make_nvfp4(out, in, uint32_t(out * in));
      const LinearSource src = nvfp4_source("proj", w);
      auto lin = b->load_linear({&src, 1});
      EXPECT_TRUE(lin->nvfp4());
      EXPECT_EQ(lin->out_features(), out);
      const auto xs = random_floats(size_t(rows * in), uint32_t(rows));
      auto x = upload_f32(*b, xs, rows, in);
      auto y = b->alloc(rows, out, DType::F32);
      b->linear(*lin, x->view(), y->view());
      expect_linear(read(*b, y->view()), reference_linear(xs, w.decoded, rows, in, out), in);
    }
  }
}

TEST(CpuLinear, FusedPartsKeepTheirOwnScales) {
  auto b = cpu();
  const int64_t in = 64, rows = 7;
  // q, k, v with different magnitudes, so different weight_scale_2.
  Weight q = make_nvfp4(32, in, 1), k = make_nvfp4(16, in, 2), v = make_nvfp4(16, in, 3);
  for (auto& byte : k.q.scales) byte = static_cast<uint8_t>(std::min<int>(byte + 8, 0x7E));  // x2 block scales
  quant::nvfp4_dequantize(k.q.view(), k.decoded);
  v.q.weight_scale_2 *= 3.0f;
  quant::nvfp4_dequantize(v.q.view(), v.decoded);
  const LinearSource parts[] = {nvfp4_source("q_proj", q), nvfp4_source("k_proj", k), nvfp4_source("v_proj", v)};
  auto lin = b->load_linear(parts);
  EXPECT_EQ(lin->out_features(), 64);
  std::vector<float> all = q.decoded;
  all.insert(all.end(), k.decoded.begin(), k.decoded.end());
  all.insert(all.end(), v.decoded.begin(), v.decoded.end());
  const auto xs = random_floats(size_t(rows * in), 9);
  auto x = upload_f32(*b, xs, rows, in);
  auto y = b->alloc(rows, 64, DType::F32);
  b->linear(*lin, x->view(), y->view());
  expect_linear(read(*b, y->view()), reference_linear(xs, all, rows, in, 64), in);
}

TEST(CpuLinear, DenseDtypesAndStridedViews) {
  auto b = cpu();
  const int64_t out = 19, in = 21, rows = 7;  // not multiples of 16: dense allows any shape
  const auto wf = random_floats(size_t(out * in), 11);
  std::vector<uint16_t> wbf16(wf.size()), wf16(wf.size());
  std::vector<float> wbf16_f(wf.size()), wf16_f(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) {
    wbf16[i] = f32_to_bf16(wf[i]);
    wbf16_f[i] = bf16_to_f32(wbf16[i]);
    wf16[i] = f32_to_f16(wf[i]);
    wf16_f[i] = f16_to_f32(wf16[i]);
  }
  const auto xs = random_floats(size_t(rows * in), 12);
  // x lives in columns [5, 5 + in) of a wider buffer, out in columns [3, 3 + out).
  std::vector<float> wide(size_t(rows * (in + 9)), 100.0f);
  for (int64_t r = 0; r < rows; ++r) std::memcpy(&wide[size_t(r * (in + 9) + 5)], &xs[size_t(r * in)], in * 4);
  struct Case {
    DType dtype;
    const void* data;
    const std::vector<float>* decoded;
  } cases[] = {{DType::BF16, wbf16.data(), &wbf16_f}, {DType::F16, wf16.data(), &wf16_f}, {DType::F32, wf.data(), &wf}};
  for (const Case& c : cases) {
    LinearSource src;
    src.name = "dense";
    src.out_features = out;
    src.in_features = in;
    src.dense = c.data;
    src.dense_dtype = c.dtype;
    auto lin = b->load_linear({&src, 1});
    EXPECT_FALSE(lin->nvfp4());
    auto xbuf = upload_f32(*b, wide, rows, in + 9);
    auto ybuf = b->alloc(rows, out + 4, DType::F32);
    b->linear(*lin, xbuf->view().col_slice(5, in), ybuf->view().col_slice(3, out));
    expect_linear(read(*b, ybuf->view().col_slice(3, out)), reference_linear(xs, *c.decoded, rows, in, out), in);
    const auto untouched = read(*b, ybuf->view().col_slice(0, 3));
    for (float v : untouched) EXPECT_EQ(v, 0.0f) << "columns outside the out view must stay untouched";
  }
}

// A tied lm_head reads the uploaded embedding table in place: the same results as a copied Linear, and
// it follows the table (no private copy).
// W4A8 emulation: an NVFP4 Linear sees each token's activations after the FP8 e4m3 round trip (bit for bit
// what the default backend computes on round-tripped input); dense Linears see them unchanged.
TEST(CpuLinear, Fp8ActivationsQuantizeEachTokenForNvfp4WeightsOnly) {
  auto plain = cpu();
  auto w4a8 = make_cpu_backend(0, CpuOptions{.fp8_activations = true});
  const int64_t rows = 5, in = 80, out = 33;
  const Weight w = make_nvfp4(out, in, 4);
  const LinearSource src = nvfp4_source("proj", w);
  auto xs = random_floats(size_t(rows * in), 12);
  xs[3] = 40.0f;  // one large value per token row sets its scale
  xs[in + 7] = -0.001f;
  std::vector<float> rounded(xs.size());
  for (int64_t r = 0; r < rows; ++r) quant::fp8_e4m3_round_trip_row(xs.data() + r * in, in, rounded.data() + r * in);
  ASSERT_NE(rounded, xs);  // the round trip changes this input

  const auto run = [&](Backend& b, const std::vector<float>& input, const LinearSource& source) {
    auto lin = b.load_linear({&source, 1});
    auto x = upload_f32(b, input, rows, in);
    auto y = b.alloc(rows, source.out_features, DType::F32);
    b.linear(*lin, x->view(), y->view());
    return read(b, y->view());
  };
  EXPECT_EQ(run(*w4a8, xs, src), run(*plain, rounded, src));
  EXPECT_NE(run(*w4a8, xs, src), run(*plain, xs, src));

  // A BF16 Linear ignores the option.
  std::vector<uint16_t> dense(size_t(out * in));
  for (size_t i = 0; i < dense.size(); ++i) dense[i] = f32_to_bf16(w.decoded[i]);
  LinearSource bf16;
  bf16.name = "dense";
  bf16.out_features = out;
  bf16.in_features = in;
  bf16.dense = dense.data();
  bf16.dense_dtype = DType::BF16;
  EXPECT_EQ(run(*w4a8, xs, bf16), run(*plain, xs, bf16));
}

TEST(CpuLinear, LinearFromTableReadsTheTableInPlace) {
  auto b = cpu();
  const int64_t out = 37, in = 48, rows = 5;
  const auto wf = random_floats(size_t(out * in), 21);
  std::vector<uint16_t> wbf16(wf.size());
  std::vector<float> wbf16_f(wf.size());
  for (size_t i = 0; i < wf.size(); ++i) {
    wbf16[i] = f32_to_bf16(wf[i]);
    wbf16_f[i] = bf16_to_f32(wbf16[i]);
  }
  const auto xs = random_floats(size_t(rows * in), 22);
  for (DType dtype : {DType::BF16, DType::F32}) {
    HostArray host;
    host.name = "embed_tokens";
    host.data = dtype == DType::BF16 ? static_cast<const void*>(wbf16.data()) : static_cast<const void*>(wf.data());
    host.dtype = dtype;
    host.rows = out;
    host.cols = in;
    auto table = b->upload(host, dtype);
    auto lin = b->linear_from_table(table->view());
    EXPECT_EQ(lin->out_features(), out);
    EXPECT_EQ(lin->in_features(), in);
    auto xbuf = upload_f32(*b, xs, rows, in);
    auto ybuf = b->alloc(rows, out, DType::F32);
    b->linear(*lin, xbuf->view(), ybuf->view());
    const std::vector<float>& decoded = dtype == DType::BF16 ? wbf16_f : wf;
    expect_linear(read(*b, ybuf->view()), reference_linear(xs, decoded, rows, in, out), in);
    // Zero the table: the Linear sees it, so it holds no copy.
    std::memset(table->view().data, 0, size_t(out * in) * dtype_size(dtype));
    b->linear(*lin, xbuf->view(), ybuf->view());
    for (float v : read(*b, ybuf->view())) EXPECT_EQ(v, 0.0f);
  }
  auto f32 = b->alloc(4, 8, DType::F32);
  expect_error([&] { b->linear_from_table(f32->view().col_slice(0, 4)); }, "contiguous");
}

TEST(CpuLinear, LoadErrorsNameThePart) {
  auto b = cpu();
  const Weight q = make_nvfp4(16, 32, 1), k = make_nvfp4(16, 48, 2);
  const LinearSource mismatched[] = {nvfp4_source("q_proj", q), nvfp4_source("k_proj", k)};
  expect_error([&] { b->load_linear(mismatched); }, "k_proj [16, 48] has in_features 48");
  std::vector<uint16_t> dense(16 * 32);
  LinearSource d;
  d.name = "v_proj";
  d.out_features = 16;
  d.in_features = 32;
  d.dense = dense.data();
  const LinearSource mixed[] = {nvfp4_source("q_proj", q), d};
  expect_error([&] { b->load_linear(mixed); }, "v_proj [16, 32] is dense");
  d.dense_dtype = DType::I8;
  expect_error([&] { b->load_linear({&d, 1}); }, "v_proj [16, 32] has dense dtype I8");
  const LinearSource one = nvfp4_source("q_proj", q);
  auto lin = b->load_linear({&one, 1});
  auto x = b->alloc(3, 31, DType::F32);
  auto y = b->alloc(3, 16, DType::F32);
  expect_error([&] { b->linear(*lin, x->view(), y->view()); }, "x expected F32 [*, 32]");
}

TEST(CpuLinear, MeasuredSpeed) {
  auto b = cpu();
  const int64_t out = 768, in = 256, rows = 512;
  const Weight w = make_nvfp4(out, in, 5);
  const LinearSource src = nvfp4_source("bench", w);
  auto lin = b->load_linear({&src, 1});
  auto x = upload_f32(*b, random_floats(size_t(rows * in), 6), rows, in);
  auto y = b->alloc(rows, out, DType::F32);
  b->linear(*lin, x->view(), y->view());  // warm-up
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    const auto t0 = std::chrono::steady_clock::now();
    b->linear(*lin, x->view(), y->view());
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  const double gflops = 2.0 * double(out * in * rows) / best / 1e9;
  std::printf("NVFP4 linear [%lld x %lld] x %lld tokens: %.3f ms, %.2f GFLOP/s\n", (long long)out, (long long)in,
              (long long)rows, best * 1e3, gflops);
  EXPECT_GT(gflops, 0.0);
}

}  // namespace
}  // namespace adallm::backend::test
