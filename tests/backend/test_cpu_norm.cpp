// RMSNorm (llama and gemma forms) and the fused residual add: a hand-computed row, then random rows of
// odd sizes against an fp64 restatement, strided views, and out aliasing x.
#include "cpu_test_util.h"

namespace adallm::backend::test {
namespace {

std::vector<double> reference_norm(const std::vector<float>& x, const std::vector<float>& w, int64_t rows, int64_t n,
                                   double eps, NormKind kind) {
  std::vector<double> out(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
    const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
    for (int64_t i = 0; i < n; ++i) {
      const double wi = kind == NormKind::llama ? w[i] : 1.0 + w[i];
      out[r * n + i] = x[r * n + i] * inv * wi;
    }
  }
  return out;
}

TEST(CpuNorm, HandComputedRow) {
  auto b = cpu();
  // x = (3, 4): mean(x²) = 12.5, eps 0 -> inv = 1/sqrt(12.5); w = (2, 0.5).
  auto x = upload_f32(*b, {3, 4}, 1, 2);
  auto w = upload_f32(*b, {2, 0.5f}, 1, 2);
  auto out = b->alloc(1, 2, DType::F32);
  const double inv = 1.0 / std::sqrt(12.5);
  b->rms_norm(x->view(), w->view(), 0.0f, NormKind::llama, out->view());
  expect_near_all(read(*b, out->view()), {3 * inv * 2, 4 * inv * 0.5}, 1e-6, 0, "llama");
  b->rms_norm(x->view(), w->view(), 0.0f, NormKind::gemma, out->view());
  expect_near_all(read(*b, out->view()), {3 * inv * 3, 4 * inv * 1.5}, 1e-6, 0, "gemma");
}

TEST(CpuNorm, RandomRowsAgainstFp64) {
  auto b = cpu();
  for (int64_t rows : {1, 7, 83}) {
    for (int64_t n : {16, 48, 80, 4096}) {
      for (NormKind kind : {NormKind::llama, NormKind::gemma}) {
        const auto xs = random_floats(size_t(rows * n), uint32_t(rows * n), -3, 3);
        const auto ws = random_floats(size_t(n), 7, -0.5f, 1.5f);
        auto x = upload_f32(*b, xs, rows, n);
        auto w = upload_f32(*b, ws, 1, n);
        auto out = b->alloc(rows, n, DType::F32);
        b->rms_norm(x->view(), w->view(), 1e-6f, kind, out->view());
        const auto expected = reference_norm(xs, ws, rows, n, 1e-6, kind);
        expect_near_all(read(*b, out->view()), expected, 1e-5, 1e-6, "rms_norm");
        b->rms_norm(x->view(), w->view(), 1e-6f, kind, x->view());  // out aliases x
        expect_near_all(read(*b, x->view()), expected, 1e-5, 1e-6, "rms_norm in place");
      }
    }
  }
}

TEST(CpuNorm, AddRmsNormUpdatesResidualThenNormalises) {
  auto b = cpu();
  const int64_t rows = 7, n = 48;
  const auto xs = random_floats(size_t(rows * n), 1, -2, 2);
  const auto rs = random_floats(size_t(rows * n), 2, -2, 2);
  const auto ws = random_floats(size_t(n), 3);
  std::vector<float> sum(xs.size());
  std::vector<double> sum_d(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) {
    sum[i] = xs[i] + rs[i];
    sum_d[i] = sum[i];
  }
  for (NormKind kind : {NormKind::llama, NormKind::gemma}) {
    auto x = upload_f32(*b, xs, rows, n);
    auto res = upload_f32(*b, rs, rows, n);
    auto w = upload_f32(*b, ws, 1, n);
    b->add_rms_norm(x->view(), res->view(), w->view(), 1e-5f, kind, x->view());
    EXPECT_EQ(read(*b, res->view()), sum);  // the fp32 sum, exactly
    expect_near_all(read(*b, x->view()), reference_norm(sum, ws, rows, n, 1e-5, kind), 1e-5, 1e-6, "add_rms_norm");
  }
}

TEST(CpuNorm, StridedViews) {
  auto b = cpu();
  const int64_t rows = 7, n = 32;
  const auto xs = random_floats(size_t(rows * 3 * n), 4);
  const auto ws = random_floats(size_t(n), 5);
  auto x = upload_f32(*b, xs, rows, 3 * n);
  auto w = upload_f32(*b, ws, 1, n);
  const Tensor xin = x->view().col_slice(n, n);
  std::vector<float> middle;
  for (int64_t r = 0; r < rows; ++r) middle.insert(middle.end(), xs.begin() + r * 3 * n + n, xs.begin() + r * 3 * n + 2 * n);
  b->rms_norm(xin, w->view(), 1e-6f, NormKind::llama, x->view().col_slice(2 * n, n));
  expect_near_all(read(*b, x->view().col_slice(2 * n, n)), reference_norm(middle, ws, rows, n, 1e-6, NormKind::llama),
                  1e-5, 1e-6, "strided");
  auto bad_w = b->alloc(1, n + 1, DType::F32);
  expect_error([&] { b->rms_norm(xin, bad_w->view(), 1e-6f, NormKind::llama, xin); }, "weight expected F32 [1, 32]");
}

}  // namespace
}  // namespace adallm::backend::test
