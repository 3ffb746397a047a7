// Model::load beyond the golden fixtures: an FP16 checkpoint (embedding kept exact in F32, tied lm_head
// reading that table) gives the logits of its BF16 twin; a `varied` synthetic NVFP4 checkpoint (what the
// benchmarks time) loads and runs with its random linear layers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/float_codecs.h"
#include "io/safetensors.h"
#include "logits_compare.h"
#include "model/model.h"
#include "model/synthetic.h"
#include "test_util.h"

namespace adallm::model {
namespace {

namespace fs = std::filesystem;

// forward over `tokens` as one sequence, all rows.
std::vector<float> logits_of(Model& model, backend::Backend& b, const std::vector<int32_t>& tokens) {
  auto cache = b.alloc_kv_cache(model.kv_cache_spec(4, 16, backend::KvCacheDType::bf16));
  backend::ForwardBatch batch;
  batch.max_pages_per_seq = 4;
  batch.page_tables = {0, 1, 2, 3};
  batch.context_lens = {static_cast<int32_t>(tokens.size())};
  for (size_t t = 0; t < tokens.size(); ++t) {
    batch.token_ids.push_back(tokens[t]);
    batch.positions.push_back(static_cast<int32_t>(t));
    batch.seq_index.push_back(0);
    batch.slot_mapping.push_back(static_cast<int64_t>(t));
    batch.logit_rows.push_back(static_cast<int32_t>(t));
  }
  std::vector<float> logits;
  model.forward(batch, *cache, logits);
  return logits;
}

TEST(ModelLoad, Fp16CheckpointMatchesItsBf16Twin) {
  test::TempDir tmp;
  const fs::path src = test::fixtures_dir() / "qwen3" / "bf16";  // tied embeddings
  const fs::path f16_dir = tmp.path() / "f16";
  fs::create_directories(f16_dir);
  fs::copy_file(src / "config.json", f16_dir / "config.json");
  {
    const io::Checkpoint original = io::Checkpoint::open(src);
    io::SafetensorsWriter writer;
    for (const io::TensorInfo* t : original.tensors()) {
      ASSERT_EQ(t->dtype, DType::BF16) << t->name;
      std::vector<uint8_t> bytes(t->nbytes);
      for (int64_t i = 0; i < t->numel(); ++i) {
        uint16_t h;
        std::memcpy(&h, t->data + 2 * i, 2);
        const uint16_t f = f32_to_f16(bf16_to_f32(h));  // exact for these small weights, or nearest
        std::memcpy(bytes.data() + 2 * i, &f, 2);
      }
      writer.add(t->name, DType::F16, t->shape, std::move(bytes));
    }
    writer.write(f16_dir / "model.safetensors");
  }
  auto b = backend::make_cpu_backend(2);
  auto bf16 = Model::load(src, *b);
  auto f16 = Model::load(f16_dir, *b);
  const std::vector<int32_t> tokens = {1, 17, 42, 99, 3, 200, 7, 64, 128, 5, 11, 250};
  const auto want = logits_of(*bf16, *b, tokens);
  const auto got = logits_of(*f16, *b, tokens);
  const test::LogitsAgreement a = test::compare_logits(got, want, bf16->config().vocab_size);
  EXPECT_LE(a.nmse, 1e-5);
  EXPECT_EQ(a.top1, 1.0);
}

// The codes and scales themselves are checked in test_ledger.cpp (Synthetic.*); here they run.
TEST(ModelLoad, VariedSyntheticCheckpointRunsWithRandomLinearLayers) {
  test::TempDir tmp;
  nlohmann::json config = preset_config("qwen3-8b");
  config["hidden_size"] = 64;
  config["intermediate_size"] = 128;
  config["num_hidden_layers"] = 2;
  config["num_attention_heads"] = 4;
  config["num_key_value_heads"] = 2;
  config["head_dim"] = 16;
  config["vocab_size"] = 256;
  write_synthetic_checkpoint(tmp.path(), config, SyntheticLayout::nvfp4_modelopt, /*varied=*/true);
  auto b = backend::make_cpu_backend(2);
  auto model = Model::load(tmp.path(), *b);
  const std::vector<float> logits = logits_of(*model, *b, {1, 2, 3, 4, 5});
  ASSERT_EQ(logits.size(), size_t{5 * 256});
  for (float v : logits) ASSERT_TRUE(std::isfinite(v));
  // The loader took the random block scales, and the forward stays finite and varies by token.
  EXPECT_NE(std::vector<float>(logits.begin(), logits.begin() + 256), std::vector<float>(logits.begin() + 256, logits.begin() + 512));
}

}  // namespace
}  // namespace adallm::model
