// A model split over 2 and 4 tensor-parallel ranks (CPU backends on threads, in-process collectives)
// against the same model whole, on the fixtures whose head counts allow it: the logits of a mixed prefill
// step and two decode steps agree (NMSE ≤ 1e-6, the same greedy tokens), and every rank returns the same
// logits bit for bit. The split changes only the order of o_proj's and down_proj's sums (fp32): NMSE
// ~1e-13 on Llama and Qwen3; Gemma3's norms on the block outputs amplify it to 1.1e-7 on its BF16 fixture
// (the whole model with 1e-7 relative noise on those outputs: 3e-11 there, 1e-13 on Llama). A wrong head,
// row or block scale gives NMSE of order 1. NVFP4 forms cut codes and block scales at
// o_proj's and down_proj's columns; Qwen3-MoE splits every expert's rows. Also: the refusals.
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cpu/cpu_communicator.h"
#include "core/error.h"
#include "logits_compare.h"
#include "model/model.h"
#include "model/tensor_parallel.h"
#include "test_util.h"

namespace adallm::model {
namespace {

constexpr int64_t kPageSize = 16;

// Step 0: sequence 0 prefills 20 tokens and sequence 1 five, every token a logit row; steps 1 and 2: each
// sequence decodes one token.
std::vector<backend::ForwardBatch> steps() {
  std::vector<backend::ForwardBatch> out;
  const int32_t prompt[] = {20, 5};
  for (int step = 0; step < 3; ++step) {
    backend::ForwardBatch b;
    b.max_pages_per_seq = 4;
    b.page_tables = {0, 1, 2, 3, 4, 5, 6, 7};
    for (int32_t s = 0; s < 2; ++s) {
      const int32_t first = step == 0 ? 0 : prompt[s] + step - 1;
      const int32_t last = step == 0 ? prompt[s] : first + 1;
      b.context_lens.push_back(last);
      for (int32_t t = first; t < last; ++t) {
        b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size()));
        b.token_ids.push_back((7 + 13 * t + 101 * s) % 256);
        b.positions.push_back(t);
        b.seq_index.push_back(s);
        b.slot_mapping.push_back((4 * s + t / kPageSize) * kPageSize + t % kPageSize);
      }
    }
    out.push_back(std::move(b));
  }
  return out;
}

// Every step's logits, one vector per step, from a model of `size` ranks (1: the model whole); with
// several ranks, `ranks_agree` says whether every rank returned rank 0's logits bit for bit.
std::vector<std::vector<float>> run(const std::filesystem::path& dir, int size, bool* ranks_agree = nullptr) {
  const io::ModelConfig config = io::load_model_config(dir / "config.json");
  const std::vector<backend::ForwardBatch> batches = steps();
  std::vector<std::vector<std::vector<float>>> logits(static_cast<size_t>(size));
  std::vector<std::string> errors(static_cast<size_t>(size));
  std::vector<std::unique_ptr<backend::Communicator>> comms = backend::make_cpu_communicators(size);
  // Made here, before the rank threads: making a CPU backend sets the shared thread pool's size.
  std::vector<std::unique_ptr<backend::Backend>> backends;
  for (int r = 0; r < size; ++r) backends.push_back(backend::make_cpu_backend(1));
  std::vector<int64_t> kv_heads(static_cast<size_t>(size)), embedding_rows(static_cast<size_t>(size));
  const auto rank_main = [&](int rank) {
    try {
      backend::Backend& b = *backends[static_cast<size_t>(rank)];
      TensorParallelRank tp{shard_model(config, size, rank), comms[static_cast<size_t>(rank)].get()};
      auto model = Model::load(dir, b, size > 1 ? &tp : nullptr);
      const backend::KvCacheSpec spec = model->kv_cache_spec(8, kPageSize, backend::KvCacheDType::bf16);
      kv_heads[static_cast<size_t>(rank)] = spec.num_key_value_heads;
      embedding_rows[static_cast<size_t>(rank)] = model->embedding_rows();
      auto cache = b.alloc_kv_cache(spec);
      for (const backend::ForwardBatch& batch : batches) {
        logits[static_cast<size_t>(rank)].emplace_back();
        model->forward(batch, *cache, logits[static_cast<size_t>(rank)].back());
      }
    } catch (const std::exception& e) {
      errors[static_cast<size_t>(rank)] = e.what();
    }
  };
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) threads.emplace_back(rank_main, r);
  for (std::thread& t : threads) t.join();
  for (const std::string& e : errors) EXPECT_EQ(e, "");
  // The ranks hold their own KV heads and vocabulary rows only (a model that ignored its shard would match
  // the whole one too).
  for (int r = 0; r < size; ++r) {
    const TensorParallelShard shard = shard_model(config, size, r);
    EXPECT_EQ(kv_heads[static_cast<size_t>(r)], shard.kv_heads.size()) << "rank " << r;
    EXPECT_EQ(embedding_rows[static_cast<size_t>(r)], shard.vocab.size()) << "rank " << r;
    if (size > 1) {
      EXPECT_LT(kv_heads[static_cast<size_t>(r)], config.num_key_value_heads) << "rank " << r;
      EXPECT_LT(embedding_rows[static_cast<size_t>(r)], config.vocab_size) << "rank " << r;
    }
  }
  if (ranks_agree) {
    *ranks_agree = true;
    for (int r = 1; r < size; ++r) *ranks_agree = *ranks_agree && logits[static_cast<size_t>(r)] == logits[0];
  }
  return logits[0];
}

TEST(TensorParallelModel, RanksTogetherMatchTheWholeModel) {
  // llama: 8 query / 2 KV heads (4 ranks replicate each KV head on 2); qwen3: 4 / 4; gemma3: 4 / 2, tied
  // embeddings, sliding windows, norms on the block outputs. All: intermediate 128, vocabulary 256.
  for (const std::string arch : {"llama", "qwen3", "gemma3"}) {
    for (const std::string form : {"bf16", "nvfp4-modelopt", "nvfp4-ct"}) {
      const std::filesystem::path dir = test::fixtures_dir() / arch / form;
      const int64_t vocab = io::load_model_config(dir / "config.json").vocab_size;
      const std::vector<std::vector<float>> whole = run(dir, 1);
      ASSERT_EQ(whole.size(), 3u);
      for (const int size : {2, 4}) {
        bool agree = false;
        const std::vector<std::vector<float>> split = run(dir, size, &agree);
        ASSERT_EQ(split.size(), whole.size()) << arch << " " << form << " over " << size;
        EXPECT_TRUE(agree) << arch << " " << form << " over " << size << ": ranks returned different logits";
        for (size_t step = 0; step < whole.size(); ++step) {
          ASSERT_EQ(split[step].size(), whole[step].size());
          const test::LogitsAgreement a = test::compare_logits(split[step], whole[step], vocab);
          std::printf("[tensor parallel] %s %s over %d ranks, step %zu: NMSE %.2e\n", arch.c_str(), form.c_str(), size,
                      step, a.nmse);
          EXPECT_LE(a.nmse, 1e-6) << arch << " " << form << " over " << size << " step " << step;
          EXPECT_EQ(a.top1, 1.0) << arch << " " << form << " over " << size << " step " << step;
        }
      }
    }
  }
}

TEST(TensorParallelModel, MoeRanksTogetherMatchTheWholeModel) {
  // 4 query / 2 KV heads, a dense first layer (intermediate 128), then 4 experts of 32 rows, 2 per token:
  // over 2 ranks each holds 16 rows of every expert (4 ranks would cut NVFP4 blocks: refused).
  for (const std::string form : {"bf16", "nvfp4-modelopt", "nvfp4-ct"}) {
    const std::filesystem::path dir = test::fixtures_dir() / "qwen3_moe" / form;
    const int64_t vocab = io::load_model_config(dir / "config.json").vocab_size;
    const std::vector<std::vector<float>> whole = run(dir, 1);
    bool agree = false;
    const std::vector<std::vector<float>> split = run(dir, 2, &agree);
    ASSERT_EQ(split.size(), whole.size());
    EXPECT_TRUE(agree) << form;
    for (size_t step = 0; step < whole.size(); ++step) {
      const test::LogitsAgreement a = test::compare_logits(split[step], whole[step], vocab);
      std::printf("[tensor parallel] qwen3_moe %s over 2 ranks, step %zu: NMSE %.2e\n", form.c_str(), step, a.nmse);
      EXPECT_LE(a.nmse, 1e-6) << form << " step " << step;
      EXPECT_EQ(a.top1, 1.0) << form << " step " << step;
    }
  }
}

TEST(TensorParallelModel, RefusesWhatItCannotSplit) {
  auto b = backend::make_cpu_backend(1);
  const io::ModelConfig moe = io::load_model_config(test::fixtures_dir() / "qwen3_moe" / "bf16" / "config.json");
  EXPECT_THROW(shard_model(moe, 4, 0), Error);  // 32 expert rows over 4 ranks: 8-column NVFP4 slices
  // A rank whose communicator is of another size.
  const std::filesystem::path llama = test::fixtures_dir() / "llama" / "bf16";
  auto four = backend::make_cpu_communicators(4);
  TensorParallelRank wrong{shard_model(io::load_model_config(llama / "config.json"), 2, 0), four[0].get()};
  EXPECT_THROW(Model::load(llama, *b, &wrong), Error);
  // A shard made for another model (Qwen3's heads) on the Llama fixture.
  auto two = backend::make_cpu_communicators(2);
  TensorParallelRank other{shard_model(io::load_model_config(test::fixtures_dir() / "qwen3" / "bf16" / "config.json"), 2, 0),
                           two[0].get()};
  try {
    Model::load(llama, *b, &other);
    ADD_FAILURE() << "a shard of another model loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("another model"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace adallm::model
