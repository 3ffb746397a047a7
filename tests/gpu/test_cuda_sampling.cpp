// Sampling on the GPU (label `gpu`): Backend::argmax_rows and Backend::sample_rows of the CUDA backend
// against the CPU backend's (the reference chain of backend/sampling.h), token for token.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/sampling.h"

namespace adallm::backend {
namespace {

// Backend::argmax_rows on the GPU against the CPU's, over vocabulary-sized rows with planted ties (the
// lowest index must win across threads and warps), NaN, +inf and all -inf rows.
TEST(CudaArgmax, MatchesTheCpuBackend) {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  const int64_t rows = 9, vocab = 151936;
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  for (float& v : logits) v = normal(rng);
  const auto at = [&](int64_t r, int64_t i) -> float& { return logits[static_cast<size_t>(r * vocab + i)]; };
  at(1, 5000) = 100.0f, at(1, 150000) = 100.0f, at(1, 77) = 100.0f;  // tie across threads: 77
  at(2, 1023) = 50.0f, at(2, 1024) = 50.0f;                         // tie across warps / threads: 1023
  at(3, 12345) = std::numeric_limits<float>::quiet_NaN();
  at(4, 99) = std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) at(5, i) = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < vocab; ++i) at(6, i) = -std::numeric_limits<float>::infinity();
  at(6, vocab - 1) = -1e30f;  // the only finite value, at the end
  std::vector<std::vector<float>> got;
  for (auto* make : {+[] { return make_cpu_backend(2); }, +[] { return make_cuda_backend(); }}) {
    auto b = make();
    auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, rows, vocab}, DType::F32);
    auto ids = b->alloc(rows, 1, DType::I32);
    b->argmax_rows(x->view(), ids->view());
    got.emplace_back(static_cast<size_t>(rows));
    b->to_host(ids->view(), got.back());
  }
  EXPECT_EQ(got[1], got[0]);
  EXPECT_EQ(got[0][1], 77.0f);
  EXPECT_EQ(got[0][2], 1023.0f);
  EXPECT_EQ(got[0][3], static_cast<float>(Backend::kArgmaxNonFinite));
  EXPECT_EQ(got[0][4], static_cast<float>(Backend::kArgmaxNonFinite));
  EXPECT_EQ(got[0][5], static_cast<float>(Backend::kArgmaxNoFinite));
  EXPECT_EQ(got[0][6], static_cast<float>(vocab - 1));
}


// Backend::logprobs_rows (and copy) on the GPU against the CPU's: vocabulary-sized rows with planted ties
// across threads, a -inf token, a NaN row, an all -inf row, and ids drawn by sample_rows (the same on both
// backends) so that the chosen token is not always the most likely; top_n 0, 1, 7 and 20. Tolerance: the
// GPU sums exp in fp32 (relative error ~1e-6 over 151,936 terms), the CPU in double: 1e-4 absolute.
TEST(CudaLogprobs, MatchesTheCpuBackend) {
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  const int64_t rows = 6, vocab = 151936;
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  for (float& v : logits) v = normal(rng);
  const auto at = [&](int64_t r, int64_t i) -> float& { return logits[static_cast<size_t>(r * vocab + i)]; };
  at(0, 150000) = 30.0f, at(0, 9) = 30.0f, at(0, 70000) = 30.0f;  // ties: 9, 70000, 150000 in that order
  at(1, 3) = -std::numeric_limits<float>::infinity();
  at(2, 500) = std::numeric_limits<float>::quiet_NaN();
  for (int64_t i = 0; i < vocab; ++i) at(3, i) = -std::numeric_limits<float>::infinity();
  for (const int64_t top_n : {0, 1, 7, 20}) {
    std::vector<std::vector<float>> got[4];
    for (auto* make : {+[] { return make_cpu_backend(2); }, +[] { return make_cuda_backend(); }}) {
      auto b = make();
      auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, rows, vocab}, DType::F32);
      auto scratch = b->alloc(rows, vocab, DType::F32);
      b->copy(x->view(), scratch->view());
      std::vector<SamplingRow> draw(static_cast<size_t>(rows));
      for (int64_t r = 0; r < rows; ++r) draw[size_t(r)].uniform = (double(r) + 0.5) / double(rows);
      auto ids = b->alloc(rows, 1, DType::I32);
      b->sample_rows(scratch->view(), draw, ids->view());
      auto chosen = b->alloc(rows, 1, DType::F32);
      auto top_ids = b->alloc(rows, kMaxTopLogprobs, DType::I32);
      auto top_lp = b->alloc(rows, kMaxTopLogprobs, DType::F32);
      b->logprobs_rows(x->view(), ids->view(), top_n, chosen->view(), top_ids->view().col_slice(0, top_n),
                       top_lp->view().col_slice(0, top_n));
      const Tensor views[4] = {ids->view(), chosen->view(), top_ids->view().col_slice(0, top_n),
                               top_lp->view().col_slice(0, top_n)};
      for (int k = 0; k < 4; ++k) {
        got[k].emplace_back(static_cast<size_t>(views[k].numel()));
        b->to_host(views[k], got[k].back());
      }
    }
    EXPECT_EQ(got[0][1], got[0][0]) << "sampled ids";
    EXPECT_EQ(got[2][1], got[2][0]) << "top ids, top_n " << top_n;
    const auto close = [](const std::vector<float>& a, const std::vector<float>& b, const std::string& what) {
      ASSERT_EQ(a.size(), b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        if (std::isnan(b[i]) || std::isinf(b[i])) {
          EXPECT_TRUE(std::isnan(b[i]) ? std::isnan(a[i]) : a[i] == b[i]) << what << " " << i;
        } else {
          EXPECT_NEAR(a[i], b[i], 1e-4) << what << " " << i;
        }
      }
    };
    close(got[1][1], got[1][0], "chosen");
    close(got[3][1], got[3][0], "top logprobs");
    if (top_n >= 7) {
      EXPECT_EQ(got[2][0][0], 9.0f);
      EXPECT_EQ(got[2][0][1], 70000.0f);
      EXPECT_EQ(got[2][0][2], 150000.0f);
    }
    EXPECT_TRUE(std::isnan(got[1][0][2]) && std::isnan(got[1][0][3])) << "refused rows";
  }
}

// One logits row and the knobs it is sampled with.
struct Case {
  std::string name;
  std::vector<float> logits;
  SamplingRow row;  // uniform set per draw
  std::vector<int32_t> prompt, output;
};

std::vector<float> normal_row(int64_t vocab, float sigma, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, sigma);
  std::vector<float> v(static_cast<size_t>(vocab));
  for (float& x : v) x = normal(rng);
  return v;
}

std::vector<Case> sampling_cases() {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  const int64_t vocab = 151936;
  std::vector<Case> cases;
  const auto add = [&](std::string name, std::vector<float> logits, auto knobs) {
    Case c{std::move(name), std::move(logits), SamplingRow{}, {}, {}};
    knobs(c);
    cases.push_back(std::move(c));
  };
  // Qwen3's recommended knobs on a peaked vocabulary-sized row (a few hundred tokens matter).
  add("qwen3 defaults", normal_row(vocab, 3.0f, 1), [](Case& c) {
    c.row.temperature = 0.6f, c.row.top_k = 20, c.row.top_p = 0.95f;
  });
  add("temperature only", normal_row(vocab, 2.0f, 2), [](Case& c) { c.row.temperature = 1.0f; });
  add("hot, min_p", normal_row(vocab, 2.5f, 3), [](Case& c) { c.row.temperature = 1.3f, c.row.min_p = 0.05f; });
  add("top_p alone, wide", normal_row(vocab, 1.0f, 4), [](Case& c) { c.row.temperature = 0.8f, c.row.top_p = 0.5f; });
  add("top_p tiny", normal_row(vocab, 3.0f, 5), [](Case& c) { c.row.temperature = 1.0f, c.row.top_p = 0.01f; });
  add("top_k 1", normal_row(vocab, 1.0f, 6), [](Case& c) { c.row.temperature = 1.0f, c.row.top_k = 1; });
  add("top_k large", normal_row(vocab, 1.0f, 7), [](Case& c) { c.row.temperature = 0.9f, c.row.top_k = 5000; });
  {
    // Ties at the k-th logit (all of them stay) and at top_p's cut (kept in token order): 40 tokens of
    // logit 5 after 3 larger ones; top_k 10 keeps all 43, top_p 0.5 cuts among the tied ones.
    std::vector<float> v = normal_row(vocab, 1.0f, 8);
    for (int i = 0; i < 40; ++i) v[static_cast<size_t>(1000 + 3000 * i)] = 5.0f;
    v[7] = 6.0f, v[77] = 6.5f, v[777] = 7.0f;
    add("ties at top_k and top_p", v, [](Case& c) { c.row.temperature = 1.0f, c.row.top_k = 10, c.row.top_p = 0.5f; });
  }
  {
    std::vector<float> v = normal_row(vocab, 2.0f, 9);
    for (size_t i = 0; i < v.size(); i += 3) v[i] = kNegInf;  // masked tokens
    add("masked tokens", v, [](Case& c) { c.row.temperature = 0.7f, c.row.top_p = 0.9f; });
  }
  add("penalties", normal_row(vocab, 2.0f, 10), [](Case& c) {
    c.row.temperature = 0.8f, c.row.top_k = 50, c.row.repetition_penalty = 1.3f;
    c.row.frequency_penalty = 0.7f, c.row.presence_penalty = 0.4f;
    c.prompt = {5, 17, 17, 900, 151935, 42};
    c.output = {17, 42, 42, 42, 3000, 77, 77};
  });
  add("greedy with penalties", normal_row(vocab, 1.0f, 11), [](Case& c) {
    c.row.temperature = 0.0f, c.row.repetition_penalty = 2.0f, c.row.presence_penalty = 1.5f;
    c.prompt = {1, 2, 3};
    c.output = {4, 5, 5};
  });
  add("greedy", normal_row(vocab, 1.0f, 12), [](Case& c) { c.row.temperature = 0.0f; });
  {
    std::vector<float> v = normal_row(vocab, 1.0f, 13);
    v[4242] = std::numeric_limits<float>::quiet_NaN();
    add("NaN", v, [](Case& c) { c.row.temperature = 1.0f; });
  }
  add("all -inf", std::vector<float>(static_cast<size_t>(vocab), kNegInf), [](Case& c) { c.row.temperature = 1.0f; });
  return cases;
}

// Backend::sample_rows on the GPU against the CPU backend's, 24 draws per case at spread uniforms (the
// same logits row repeated with a different uniform each). The GPU works in fp32 with fixed-point masses
// where the reference uses doubles, so a uniform within 1e-6 of a boundary between two tokens' shares may
// fall on either side: a differing token is accepted only if the reference draws it at u ± 1e-6, and such
// cases must stay rare.
TEST(CudaSampleRows, MatchesTheCpuBackendTokenForToken) {
  const std::vector<Case> cases = sampling_cases();
  const int draws = 24;
  const int64_t vocab = static_cast<int64_t>(cases[0].logits.size());
  const int64_t rows = static_cast<int64_t>(cases.size()) * draws;
  std::vector<float> logits;
  std::vector<SamplingRow> sampling;
  for (const Case& c : cases) {
    for (int d = 0; d < draws; ++d) {
      logits.insert(logits.end(), c.logits.begin(), c.logits.end());
      SamplingRow row = c.row;
      row.uniform = (d + 0.37) / draws;
      row.prompt_tokens = c.prompt;
      row.output_tokens = c.output;
      sampling.push_back(row);
    }
  }
  std::vector<std::vector<float>> got;
  for (auto* make : {+[] { return make_cpu_backend(2); }, +[] { return make_cuda_backend(); }}) {
    auto b = make();
    auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, rows, vocab}, DType::F32);
    auto ids = b->alloc(rows, 1, DType::I32);
    b->sample_rows(x->view(), sampling, ids->view());
    got.emplace_back(static_cast<size_t>(rows));
    b->to_host(ids->view(), got.back());
  }
  RowSampler reference;
  int near_boundary = 0;
  for (size_t c = 0; c < cases.size(); ++c) {
    for (int d = 0; d < draws; ++d) {
      const size_t r = c * draws + static_cast<size_t>(d);
      const auto cpu = static_cast<int32_t>(got[0][r]), gpu = static_cast<int32_t>(got[1][r]);
      if (cpu == gpu) continue;
      bool explained = false;
      if (cpu >= 0 && gpu >= 0) {
        for (const double delta : {-1e-6, 1e-6}) {
          SamplingRow row = sampling[r];
          row.uniform = std::clamp(row.uniform + delta, 0.0, std::nextafter(1.0, 0.0));
          explained |= reference.sample(cases[c].logits, row) == gpu;
        }
      }
      near_boundary += explained ? 1 : 0;
      EXPECT_TRUE(explained) << cases[c].name << ", uniform " << sampling[r].uniform << ": CPU " << cpu << ", GPU " << gpu;
    }
  }
  EXPECT_LE(near_boundary, 2);
  // The fault codes, and the greedy tokens, exactly.
  const auto row_of = [&](const std::string& name) {
    for (size_t c = 0; c < cases.size(); ++c) {
      if (cases[c].name == name) return c * draws;
    }
    ADD_FAILURE() << "no case " << name;
    return size_t{0};
  };
  EXPECT_EQ(got[1][row_of("NaN")], static_cast<float>(Backend::kArgmaxNonFinite));
  EXPECT_EQ(got[1][row_of("all -inf")], static_cast<float>(Backend::kArgmaxNoFinite));
  EXPECT_EQ(got[1][row_of("top_k 1")], got[1][row_of("top_k 1") + draws - 1]);  // one token left
}

// Rows that draw differ across uniforms: the draws spread over several tokens (a GPU sampler that always
// returned the argmax would pass a token-for-token check only where the reference does too).
TEST(CudaSampleRows, DrawsSpreadWithTheUniform) {
  const int64_t vocab = 4096;
  const std::vector<float> row = normal_row(vocab, 0.5f, 21);
  const int draws = 256;
  std::vector<float> logits;
  std::vector<SamplingRow> sampling(draws);
  for (int d = 0; d < draws; ++d) {
    logits.insert(logits.end(), row.begin(), row.end());
    sampling[static_cast<size_t>(d)].temperature = 1.0f;
    sampling[static_cast<size_t>(d)].uniform = (d + 0.5) / draws;
  }
  auto b = make_cuda_backend();
  auto x = b->upload(HostArray{"logits", logits.data(), DType::F32, draws, vocab}, DType::F32);
  auto ids = b->alloc(draws, 1, DType::I32);
  b->sample_rows(x->view(), sampling, ids->view());
  std::vector<float> got(draws);
  b->to_host(ids->view(), got);
  // Uniforms in increasing order walk the vocabulary in token order.
  for (int d = 1; d < draws; ++d) EXPECT_LE(got[static_cast<size_t>(d - 1)], got[static_cast<size_t>(d)]);
  EXPECT_LT(got.front(), 200.0f);
  EXPECT_GT(got.back(), vocab - 200.0f);
}

}  // namespace
}  // namespace adallm::backend
