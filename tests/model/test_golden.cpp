// Golden tests of the reference engine: for every fixture architecture, checkpoint form (BF16, ModelOpt
// NVFP4, compressed-tensors NVFP4) and KV cache dtype, the CPU backend's logits against transformers'
// fp32 logits (tests/fixtures/<arch>/logits.safetensors). Thresholds are the issue's: NMSE <= 2e-3 and
// top-1 agreement >= 0.95 with a BF16 cache, NMSE <= 1e-2 and top-1 >= 0.9 with FP8.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "model/model.h"
#include "golden_util.h"
#include "logits_compare.h"
#include "test_util.h"

namespace adallm::model {
namespace {

using test::Case;
using test::kNumSequences;
using test::load_reference;
using test::Reference;
using test::run_sequence;


class Golden : public ::testing::TestWithParam<Case> {};

TEST_P(Golden, MatchesTransformers) {
  const Case& c = GetParam();
  auto backend = backend::make_cpu_backend(2);
  auto model = Model::load(test::fixtures_dir() / c.arch / c.form, *backend);
  const Reference ref = load_reference(c.arch, c.form == "bf16" ? "bf16" : c.form);
  const auto kv = backend::parse_kv_cache_dtype(c.kv);
  auto cache = backend->alloc_kv_cache(model->kv_cache_spec(16, 16, kv));
  const int64_t vocab = model->config().vocab_size;
  std::vector<float> got, want;
  for (int i = 0; i < kNumSequences; ++i) {
    // Chunk sizes that split pages unevenly: the later chunks read K/V the earlier ones wrote.
    const std::vector<float> logits = run_sequence(*model, *cache, ref.tokens[static_cast<size_t>(i)], i == 2 ? 37 : 5);
    got.insert(got.end(), logits.begin(), logits.end());
    want.insert(want.end(), ref.logits[static_cast<size_t>(i)].begin(), ref.logits[static_cast<size_t>(i)].end());
  }
  ASSERT_EQ(got.size(), want.size());
  const test::LogitsAgreement a = test::compare_logits(got, want, vocab);
  std::printf("[golden] %-12s %-15s kv=%-4s NMSE %.3e top-1 %.4f\n", c.arch.c_str(), c.form.c_str(), c.kv.c_str(),
              a.nmse, a.top1);
  const bool bf16_kv = c.kv == "bf16";
  EXPECT_LE(a.nmse, bf16_kv ? 2e-3 : 1e-2);
  EXPECT_GE(a.top1, bf16_kv ? 0.95 : 0.9);
}


INSTANTIATE_TEST_SUITE_P(Fixtures, Golden, ::testing::ValuesIn(test::golden_cases()), test::golden_case_name);

// Two sequences in one forward step (interleaved pages, one prefilling while the other decodes) give the
// same logits as each alone: attention never crosses sequences.
TEST(GoldenBatch, SequencesInOneStepMatchTransformers) {
  auto backend = backend::make_cpu_backend(2);
  auto model = Model::load(test::fixtures_dir() / "qwen3" / "bf16", *backend);
  const Reference ref = load_reference("qwen3", "bf16");
  auto cache = backend->alloc_kv_cache(model->kv_cache_spec(8, 4, backend::KvCacheDType::bf16));
  const std::vector<int32_t>& a = ref.tokens[0];  // 16 tokens: pages 0, 2, 4, 6
  const std::vector<int32_t>& b = ref.tokens[1];  // 8 tokens: pages 1, 3
  backend::ForwardBatch batch;
  batch.max_pages_per_seq = 4;
  batch.page_tables = {0, 2, 4, 6, 1, 3, -1, -1};
  // Step 1: sequence a's first 15 tokens and all of b; step 2: a's last token alone (a decode step).
  batch.context_lens = {15, 8};
  for (int t = 0; t < 15; ++t) {
    batch.token_ids.push_back(a[static_cast<size_t>(t)]);
    batch.positions.push_back(t);
    batch.seq_index.push_back(0);
    batch.slot_mapping.push_back(batch.page_tables[static_cast<size_t>(t / 4)] * 4 + t % 4);
  }
  for (int t = 0; t < 8; ++t) {
    batch.token_ids.push_back(b[static_cast<size_t>(t)]);
    batch.positions.push_back(t);
    batch.seq_index.push_back(1);
    batch.slot_mapping.push_back(batch.page_tables[static_cast<size_t>(4 + t / 4)] * 4 + t % 4);
  }
  batch.logit_rows = {14, 22};
  std::vector<float> logits;
  model->forward(batch, *cache, logits);
  const int64_t vocab = model->config().vocab_size;
  const auto row = [&](const std::vector<float>& v, int64_t r) {
    return std::vector<float>(v.begin() + r * vocab, v.begin() + (r + 1) * vocab);
  };
  EXPECT_LE(test::compare_logits(row(logits, 0), row(ref.logits[0], 14), vocab).nmse, 2e-3);
  EXPECT_LE(test::compare_logits(row(logits, 1), row(ref.logits[1], 7), vocab).nmse, 2e-3);

  backend::ForwardBatch decode;
  decode.max_pages_per_seq = 4;
  decode.page_tables = {0, 2, 4, 6};
  decode.context_lens = {16};
  decode.token_ids = {a[15]};
  decode.positions = {15};
  decode.seq_index = {0};
  decode.slot_mapping = {6 * 4 + 3};
  decode.logit_rows = {0};
  model->forward(decode, *cache, logits);
  EXPECT_LE(test::compare_logits(logits, row(ref.logits[0], 15), vocab).nmse, 2e-3);
}

}  // namespace
}  // namespace adallm::model
