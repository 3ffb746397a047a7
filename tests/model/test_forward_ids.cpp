// Model::forward_greedy and Model::forward_sample (the backend picks the tokens, only ids come back)
// against Model::forward's host logits put through the host reference, backend::RowSampler, on the CPU
// backend over the qwen3 fixture; and forward_sample's refusal of a row count that is not one per logit row.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <span>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/sampling.h"
#include "core/error.h"
#include "model/model.h"
#include "test_util.h"

namespace adallm::model {
namespace {

// One sequence of `len` tokens, every position a logit row.
backend::ForwardBatch sequence_batch(int32_t len) {
  backend::ForwardBatch batch;
  batch.max_pages_per_seq = 4;
  batch.page_tables = {0, 1, 2, 3};
  batch.context_lens = {len};
  for (int32_t t = 0; t < len; ++t) {
    batch.token_ids.push_back((5 + 11 * t) % 256);
    batch.positions.push_back(t);
    batch.seq_index.push_back(0);
    batch.slot_mapping.push_back(t);
    batch.logit_rows.push_back(t);
  }
  return batch;
}

TEST(ForwardIds, GreedyAndSampledIdsMatchTheHostReference) {
  auto backend = backend::make_cpu_backend(2);
  auto model = Model::load(test::fixtures_dir() / "qwen3" / "bf16", *backend);
  auto cache = backend->alloc_kv_cache(model->kv_cache_spec(4, 16, backend::KvCacheDType::bf16));
  const backend::ForwardBatch batch = sequence_batch(12);
  const auto vocab = static_cast<size_t>(model->config().vocab_size);
  std::vector<float> logits;
  model->forward(batch, *cache, logits);  // the same K/V rewritten each call: every call sees the same logits

  std::vector<backend::SamplingRow> rows(batch.logit_rows.size());
  const std::span<const int32_t> prompt(batch.token_ids);
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].temperature = r % 3 == 0 ? 0.0f : 0.5f + 0.1f * static_cast<float>(r);
    rows[r].top_k = r % 2 == 0 ? 0 : 30;
    rows[r].top_p = r % 4 == 1 ? 0.8f : 1.0f;
    rows[r].repetition_penalty = r % 5 == 2 ? 1.4f : 1.0f;
    rows[r].prompt_tokens = prompt.first(r + 1);
    rows[r].uniform = (static_cast<double>(r) + 0.5) / static_cast<double>(rows.size());
  }
  std::vector<int32_t> sampled, greedy;
  model->forward_sample(batch, *cache, rows, sampled);
  model->forward_greedy(batch, *cache, greedy);
  ASSERT_EQ(sampled.size(), rows.size());
  ASSERT_EQ(greedy.size(), rows.size());
  backend::RowSampler reference;
  for (size_t r = 0; r < rows.size(); ++r) {
    const std::span<const float> row(logits.data() + r * vocab, vocab);
    EXPECT_EQ(sampled[r], reference.sample(row, rows[r])) << "row " << r;
    EXPECT_EQ(greedy[r], backend::RowSampler::greedy(row)) << "row " << r;
  }
}

// With StepLogprobs, the ids' log-probabilities come back from the raw logits even where the sampler's
// penalties overwrote them: against log_softmax of Model::forward's logits.
TEST(ForwardIds, LogprobsComeFromTheRawLogits) {
  auto backend = backend::make_cpu_backend(2);
  auto model = Model::load(test::fixtures_dir() / "qwen3" / "bf16", *backend);
  auto cache = backend->alloc_kv_cache(model->kv_cache_spec(4, 16, backend::KvCacheDType::bf16));
  const backend::ForwardBatch batch = sequence_batch(6);
  const auto vocab = static_cast<size_t>(model->config().vocab_size);
  std::vector<float> logits;
  model->forward(batch, *cache, logits);
  std::vector<backend::SamplingRow> rows(batch.logit_rows.size());
  const std::span<const int32_t> prompt(batch.token_ids);
  for (size_t r = 0; r < rows.size(); ++r) {
    rows[r].temperature = 0.8f;
    rows[r].repetition_penalty = 2.0f;  // the prompt's tokens lose most of their logit
    rows[r].prompt_tokens = prompt;
    rows[r].uniform = 0.25;
  }
  for (const bool greedy : {false, true}) {
    StepLogprobs lp;
    lp.top_n = 4;
    std::vector<int32_t> ids;
    if (greedy) {
      model->forward_greedy(batch, *cache, ids, &lp);
    } else {
      model->forward_sample(batch, *cache, rows, ids, &lp);
    }
    ASSERT_EQ(lp.chosen.size(), rows.size());
    ASSERT_EQ(lp.top_ids.size(), rows.size() * 4);
    for (size_t r = 0; r < rows.size(); ++r) {
      const float* row = logits.data() + r * vocab;
      double max = row[0], sum = 0.0;
      for (size_t v = 0; v < vocab; ++v) max = std::max(max, double(row[v]));
      for (size_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - max);
      const double lse = max + std::log(sum);
      EXPECT_NEAR(lp.chosen[r], double(row[size_t(ids[r])]) - lse, 1e-5) << (greedy ? "greedy" : "sampled") << " row " << r;
      EXPECT_NEAR(lp.top_logprobs[r * 4], max - lse, 1e-5);
      EXPECT_EQ(row[size_t(lp.top_ids[r * 4])], float(max));
      for (size_t j = 1; j < 4; ++j) EXPECT_LE(lp.top_logprobs[r * 4 + j], lp.top_logprobs[r * 4 + j - 1]);
      if (greedy) {
        EXPECT_EQ(ids[r], lp.top_ids[r * 4]);
      }
    }
  }
}

TEST(ForwardIds, SampleNeedsOneRowPerLogitRow) {
  auto backend = backend::make_cpu_backend(2);
  auto model = Model::load(test::fixtures_dir() / "qwen3" / "bf16", *backend);
  auto cache = backend->alloc_kv_cache(model->kv_cache_spec(4, 16, backend::KvCacheDType::bf16));
  const std::vector<backend::SamplingRow> rows(2);
  std::vector<int32_t> ids;
  test::expect_error([&] { model->forward_sample(sequence_batch(3), *cache, rows, ids); },
                     "forward_sample: 2 sampling rows for 3 logit rows");
}

}  // namespace
}  // namespace adallm::model

namespace adallm::model {
namespace {

// Step graphs need a backend that records them: the CPU backend refuses with its name, and a batch whose
// plan_keys is negative is malformed. (Graph replay itself is tested on the GPU: tests/gpu/test_cuda_graphs.cpp.)
TEST(StepGraphs, TheCpuBackendRecordsNoneAndSaysSo) {
  auto backend = backend::make_cpu_backend(2);
  auto model = Model::load(test::fixtures_dir() / "qwen3" / "bf16", *backend);
  auto cache = backend->alloc_kv_cache(model->kv_cache_spec(4, 16, backend::KvCacheDType::bf16));
  EXPECT_FALSE(backend->supports_graphs());
  GraphPlan plan;
  plan.batch_sizes = {1, 2};
  plan.max_pages_per_seq = 3;
  plan.pad_page = 3;
  plan.max_keys = 48;
  try {
    model->enable_graphs(plan, *cache);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cpu backend does not record"), std::string::npos) << e.what();
  }
  backend::ForwardBatch batch = sequence_batch(3);
  batch.plan_keys = -1;
  EXPECT_THROW(batch.validate(4, 16), Error);
}

}  // namespace
}  // namespace adallm::model
