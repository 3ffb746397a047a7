// Decode steps replayed as CUDA graphs (label `gpu`): every fixture architecture's logits through its
// step graphs against the same steps run eagerly on a twin cache — batches padded to the recorded sizes
// (1, 2, 4, 8), contexts short and past Model::kShortGraphKeys (the long-context graphs plan attention
// for 4,608 keys: more splits than the eager step, merged by the combine kernel instead of the last
// block), sequences joining between steps (an eager prefill between replays). Then the engine: greedy
// output with graphs equals the output with --enforce-eager for concurrent requests of varied lengths.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backend/cuda/cuda_backend.h"
#include "engine/engine_core.h"
#include "logits_compare.h"
#include "model/model.h"
#include "test_util.h"

namespace adallm::model {
namespace {

constexpr int64_t kPageSize = 16;
constexpr int64_t kPagesPerSeq = 288;  // 4,608 keys
constexpr int64_t kSeqs = 9;

int32_t token_at(int64_t seq, int64_t position) { return static_cast<int32_t>((7 * seq + 3 * position + 1) % 200); }

// Sequence s's tokens [begin, end) in one batch (pages s · kPagesPerSeq onwards), its last token's logits wanted.
void add_run(backend::ForwardBatch& b, int64_t s, int64_t begin, int64_t end) {
  const auto index = static_cast<int32_t>(b.context_lens.size());
  for (int64_t p = begin; p < end; ++p) {
    b.token_ids.push_back(token_at(s, p));
    b.positions.push_back(static_cast<int32_t>(p));
    b.seq_index.push_back(index);
    b.slot_mapping.push_back((s * kPagesPerSeq + p / kPageSize) * kPageSize + p % kPageSize);
  }
  b.context_lens.push_back(static_cast<int32_t>(end));
  for (int64_t p = 0; p < kPagesPerSeq; ++p) b.page_tables.push_back(static_cast<int32_t>(s * kPagesPerSeq + p));
  b.max_pages_per_seq = static_cast<int32_t>(kPagesPerSeq);
  b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size() - 1));
}

class CudaGraphs : public ::testing::TestWithParam<std::string> {};

TEST_P(CudaGraphs, DecodeStepsEqualEagerSteps) {
  auto cuda = backend::make_cuda_backend();
  auto model = Model::load(test::fixtures_dir() / GetParam() / "nvfp4-modelopt", *cuda);
  const int64_t pages = kSeqs * kPagesPerSeq;
  const backend::KvCacheSpec spec = model->kv_cache_spec(pages + 1, kPageSize, backend::KvCacheDType::fp8_e4m3);
  auto eager_cache = cuda->alloc_kv_cache(spec);
  auto graph_cache = cuda->alloc_kv_cache(spec);
  const int64_t vocab = model->config().vocab_size;
  std::vector<float> want, got;

  // Prompts: two past kShortGraphKeys, the rest short; sequences 6.. join later.
  std::vector<int64_t> length = {3, 20, 2100, 64, 9, 2500, 1, 40, 5};
  const auto prefill = [&](int64_t s) {
    for (backend::KvCache* cache : {eager_cache.get(), graph_cache.get()}) {
      for (int64_t begin = 0; begin < length[static_cast<size_t>(s)]; begin += 512) {
        backend::ForwardBatch b;
        add_run(b, s, begin, std::min(begin + 512, length[static_cast<size_t>(s)]));
        model->forward(b, *cache, want);
      }
    }
  };
  for (int64_t s = 0; s < 6; ++s) prefill(s);

  GraphPlan plan;
  plan.batch_sizes = {1, 2, 4, 8};
  plan.max_pages_per_seq = static_cast<int32_t>(kPagesPerSeq);
  plan.pad_page = static_cast<int32_t>(pages);
  plan.max_keys = static_cast<int32_t>(kPagesPerSeq * kPageSize);
  ASSERT_EQ(model->enable_graphs(plan, *graph_cache), plan.batch_sizes);

  // Each step: the listed sequences decode one token each.
  const std::vector<std::vector<int64_t>> steps = {
      {0}, {0, 1}, {2}, {0, 1, 3}, {0, 1, 2, 3, 4}, {5, 4, 3, 2, 1, 0}, {1}, {2, 5}, {6, 7, 8, 0}, {0, 1, 2, 3, 4, 5, 6, 7},
  };
  for (size_t k = 0; k < steps.size(); ++k) {
    if (k == 8) {
      for (int64_t s = 6; s < kSeqs; ++s) prefill(s);  // eager steps between replays
    }
    backend::ForwardBatch b;
    for (const int64_t s : steps[k]) {
      int64_t& len = length[static_cast<size_t>(s)];
      add_run(b, s, len, len + 1);
      ++len;
    }
    model->forward(b, *eager_cache, want);
    model->forward(b, *graph_cache, got);
    ASSERT_EQ(got.size(), want.size());
    const test::LogitsAgreement a = test::compare_logits(got, want, vocab);
    // The same kernels on the same rows; only the attention splits of the long-context graphs differ from
    // the eager step's (fp32 partial softmaxes merged in another order).
    EXPECT_LE(a.nmse, 1e-6) << "step " << k;
    EXPECT_EQ(a.top1, 1.0) << "step " << k;
  }
  // Every decode step went through a graph — and so did sequence 6's one-token prompt, a step of decode
  // shape: replayed, or recorded again after the prefills between them moved a workspace.
  EXPECT_EQ(model->graph_replays() + model->graph_rerecordings(), static_cast<int64_t>(steps.size()) + 1);
  EXPECT_GE(model->graph_replays(), static_cast<int64_t>(steps.size()) / 2);
  model->disable_graphs();
}

INSTANTIATE_TEST_SUITE_P(Fixtures, CudaGraphs, ::testing::Values("qwen3", "qwen3_moe", "gemma3_text", "llama"));

std::vector<std::vector<int32_t>> generate_all(engine::EngineCore& core, const std::vector<std::vector<int32_t>>& prompts,
                                               int64_t max_tokens) {
  std::vector<int64_t> ids;
  for (const auto& prompt : prompts) {
    GenerateRequest r;
    r.prompt = prompt;
    r.sampling.temperature = 0.0f;
    r.max_tokens = max_tokens;
    ids.push_back(core.add(r));
  }
  std::vector<std::vector<int32_t>> out(prompts.size());
  while (!core.idle()) {
    for (const RequestOutput& e : core.step()) {
      const auto i = static_cast<size_t>(std::find(ids.begin(), ids.end(), e.request_id) - ids.begin());
      out[i].insert(out[i].end(), e.tokens.begin(), e.tokens.end());
    }
  }
  return out;
}

TEST(CudaGraphsEngine, GreedyOutputEqualsEagerEngines) {
  auto cuda = backend::make_cuda_backend();
  auto model = Model::load(test::fixtures_dir() / "qwen3" / "nvfp4-modelopt", *cuda);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 11; ++i) {
    std::vector<int32_t> p;
    for (int j = 0; j < 3 + 17 * i; ++j) p.push_back(static_cast<int32_t>((5 * i + 11 * j + 2) % 250));
    prompts.push_back(p);
  }
  engine::EngineOptions o;
  o.max_model_len = 512;
  o.max_num_seqs = 12;
  o.max_num_batched_tokens = 64;  // prefills in chunks while others decode
  o.num_pages = 200;
  o.enforce_eager = true;
  std::vector<std::vector<int32_t>> eager;
  {
    engine::EngineCore core(*model, *cuda, o);
    eager = generate_all(core, prompts, 24);
  }
  o.enforce_eager = false;
  engine::EngineCore core(*model, *cuda, o);
  EXPECT_EQ(generate_all(core, prompts, 24), eager);
  EXPECT_GT(model->graph_replays(), 20);  // 24 tokens each: most steps only decode
}

}  // namespace
}  // namespace adallm::model
