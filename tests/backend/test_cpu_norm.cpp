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

// linear_residual_norm on the CPU is linear then add_rms_norm (normalized rows, no partials), and the
// normed linear ops read both NormedRows forms: the second (residual ⊙ weight with the row's sum of
// squares split into partials) gives the first's results.
TEST(CpuNorm, NormedRowsInBothFormsFeedTheLinearOps) {
  auto b = cpu();
  const int64_t rows = 5, n = 48, out_features = 24;
  const auto rs = random_floats(size_t(rows * n), 11, -3, 3);
  const auto ws = random_floats(size_t(n), 12, 0.5f, 1.5f);
  const auto ls = random_floats(size_t(out_features * n), 13);
  const auto gs = random_floats(size_t(2 * out_features * n), 14);
  LinearSource lin{"proj", out_features, n, std::nullopt, ls.data(), DType::F32};
  auto linear = b->load_linear(std::span<const LinearSource>(&lin, 1));
  LinearSource gate{"gate", out_features, n, std::nullopt, gs.data(), DType::F32};
  LinearSource up{"up", out_features, n, std::nullopt, gs.data() + out_features * n, DType::F32};
  auto gate_up = b->load_gate_up_linear(gate, up);

  auto res = upload_f32(*b, rs, rows, n);
  auto w = upload_f32(*b, ws, 1, n);
  auto plain = b->alloc(rows, n, DType::F32);
  b->rms_norm(res->view(), w->view(), 1e-6f, NormKind::llama, plain->view());
  // The second form: values = residual ⊙ w, and each row's sum of squares in three uneven partials.
  std::vector<float> values(rs.size()), partials(size_t(rows * 3), 0.0f);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < n; ++c) {
      const float v = rs[size_t(r * n + c)];
      values[size_t(r * n + c)] = v * ws[size_t(c)];
      partials[size_t(r * 3 + (c < 10 ? 0 : c < 40 ? 1 : 2))] += v * v;
    }
  }
  auto v = upload_f32(*b, values, rows, n);
  auto p = upload_f32(*b, partials, rows, 3);
  const NormedRows split{v->view(), p->view(), 1e-6f};
  EXPECT_EQ(b->norm_partials(n), 0);

  auto want = b->alloc(rows, out_features, DType::F32);
  auto got = b->alloc(rows, out_features, DType::F32);
  b->linear(*linear, plain->view(), want->view());
  b->normed_linear(*linear, split, got->view());
  const std::vector<float> want_linear = read(*b, want->view());
  expect_near_all(read(*b, got->view()), std::vector<double>(want_linear.begin(), want_linear.end()), 1e-5, 1e-6,
                  "normed_linear");
  b->normed_linear(*linear, NormedRows::plain(plain->view()), got->view());
  EXPECT_EQ(read(*b, got->view()), want_linear);

  b->gated_linear(*gate_up, plain->view(), Activation::silu, want->view());
  b->normed_gated_linear(*gate_up, split, Activation::silu, got->view());
  const std::vector<float> want_gated = read(*b, want->view());
  expect_near_all(read(*b, got->view()), std::vector<double>(want_gated.begin(), want_gated.end()), 1e-5, 1e-6,
                  "normed_gated_linear");

  // linear_residual_norm: residual += x Wᵀ, then the rows normalized, exactly as linear + add_rms_norm.
  const auto xs = random_floats(size_t(rows * n), 15);
  LinearSource square{"o_proj", n, n, std::nullopt, gs.data(), DType::F32};
  auto o = b->load_linear(std::span<const LinearSource>(&square, 1));
  auto x = upload_f32(*b, xs, rows, n);
  auto res2 = upload_f32(*b, rs, rows, n);
  auto scratch = b->alloc(rows, n, DType::F32);
  auto out_values = b->alloc(rows, n, DType::F32);
  const NormedRows normed = b->linear_residual_norm(*o, x->view(), res->view(), w->view(), 1e-6f, NormKind::gemma,
                                                    scratch->view(), out_values->view(), Tensor{});
  EXPECT_EQ(normed.partials.cols, 0);
  EXPECT_EQ(normed.values.data, out_values->view().data);
  auto delta = b->alloc(rows, n, DType::F32);
  auto expected = b->alloc(rows, n, DType::F32);
  b->linear(*o, x->view(), delta->view());
  b->add_rms_norm(delta->view(), res2->view(), w->view(), 1e-6f, NormKind::gemma, expected->view());
  EXPECT_EQ(read(*b, res->view()), read(*b, res2->view()));
  EXPECT_EQ(read(*b, out_values->view()), read(*b, expected->view()));
}

}  // namespace
}  // namespace adallm::backend::test
