// Tensor-parallel shards (model/tensor_parallel.h): the published shapes split over 1–16 ranks cover every
// head, row, expert and vocabulary row exactly once (KV heads once per replica), each rank's query heads
// find their KV head on the rank, hand-checked values for a few ranks, clear errors for shapes that do
// not split; and sliced Linears decode to the same values as the matching slice of the whole weight
// (NVFP4 codes with their block scales, dense rows and columns).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/float_codecs.h"
#include "model/synthetic.h"
#include "model/tensor_parallel.h"
#include "quant/nvfp4.h"

namespace adallm::model {
namespace {

io::ModelConfig preset(const std::string& name) { return io::parse_model_config(preset_config(name), name); }

// Each range list, in rank order, must tile [0, total) with no gap or overlap.
void expect_tiles(const std::vector<IndexRange>& parts, int64_t total, const std::string& what) {
  int64_t next = 0;
  for (const IndexRange& r : parts) {
    EXPECT_EQ(r.begin, next) << what;
    EXPECT_GE(r.end, r.begin) << what;
    next = r.end;
  }
  EXPECT_EQ(next, total) << what;
}

TEST(TensorParallel, PublishedShapesSplitIntoWholeDisjointShards) {
  for (const std::string name : {"qwen3-8b", "llama-3.1-8b", "gemma3-27b", "qwen3-30b-a3b"}) {
    const io::ModelConfig c = preset(name);
    const int64_t group = c.num_attention_heads / c.num_key_value_heads;
    for (const int size : {1, 2, 4, 8, 16}) {
      const std::string what = name + " over " + std::to_string(size);
      std::vector<IndexRange> q, kv, inter, moe_inter, vocab;
      for (int rank = 0; rank < size; ++rank) {
        const TensorParallelShard s = shard_model(c, size, rank);
        EXPECT_EQ(s.size, size);
        EXPECT_EQ(s.rank, rank);
        q.push_back(s.q_heads);
        if (!s.kv_replicated || rank % (size / c.num_key_value_heads) == 0) kv.push_back(s.kv_heads);
        inter.push_back(s.intermediate);
        moe_inter.push_back(s.moe_intermediate);
        vocab.push_back(s.vocab);
        EXPECT_EQ(s.kv_replicated, size > c.num_key_value_heads) << what;
        // Every query head of the rank reads a KV head the rank keeps.
        for (int64_t h = s.q_heads.begin; h < s.q_heads.end; ++h) {
          EXPECT_GE(h / group, s.kv_heads.begin) << what << " head " << h;
          EXPECT_LT(h / group, s.kv_heads.end) << what << " head " << h;
        }
        EXPECT_EQ(s.q_heads.size(), c.num_attention_heads / size) << what;
        EXPECT_EQ(s.intermediate.size() % 16, 0) << what;
        EXPECT_EQ(s.vocab_shard, (c.vocab_size + size - 1) / size) << what;
        EXPECT_LE(s.vocab.size(), s.vocab_shard) << what;
        EXPECT_EQ(s.q_rows(c.head_dim), (IndexRange{s.q_heads.begin * c.head_dim, s.q_heads.end * c.head_dim}));
      }
      expect_tiles(q, c.num_attention_heads, what + ": query heads");
      expect_tiles(kv, c.num_key_value_heads, what + ": KV heads");
      expect_tiles(vocab, c.vocab_size, what + ": vocabulary");
      if (c.num_experts > 0) {
        expect_tiles(moe_inter, c.moe_intermediate_size, what + ": expert intermediate");
      } else {
        expect_tiles(inter, c.intermediate_size, what + ": intermediate");
      }
    }
  }
}

TEST(TensorParallel, HandCheckedShards) {
  // Qwen3-30B-A3B: 32 query heads over 4 KV heads (groups of 8), experts of 768 intermediate rows,
  // vocabulary 151,936.
  const TensorParallelShard moe = shard_model(preset("qwen3-30b-a3b"), 8, 5);
  EXPECT_EQ(moe.q_heads, (IndexRange{20, 24}));
  EXPECT_EQ(moe.kv_heads, (IndexRange{2, 3}));  // ranks 4 and 5 share KV head 2 (heads 16..23)
  EXPECT_TRUE(moe.kv_replicated);
  EXPECT_EQ(moe.moe_intermediate, (IndexRange{480, 576}));
  EXPECT_EQ(moe.intermediate.size(), 0);  // no dense layer
  EXPECT_EQ(moe.vocab_shard, 18992);
  EXPECT_EQ(moe.vocab, (IndexRange{94960, 113952}));
  // Qwen3-8B over 2: heads 16..31 and KV heads 4..7; gate/up rows 6,144..12,287 of 12,288.
  const TensorParallelShard dense = shard_model(preset("qwen3-8b"), 2, 1);
  EXPECT_EQ(dense.q_heads, (IndexRange{16, 32}));
  EXPECT_EQ(dense.kv_heads, (IndexRange{4, 8}));
  EXPECT_FALSE(dense.kv_replicated);
  EXPECT_EQ(dense.q_rows(128), (IndexRange{2048, 4096}));
  EXPECT_EQ(dense.kv_rows(128), (IndexRange{512, 1024}));
  EXPECT_EQ(dense.intermediate, (IndexRange{6144, 12288}));
  EXPECT_EQ(dense.moe_intermediate.size(), 0);
  // A vocabulary that does not divide: 151,937 rows over 4 ranks take 37,985 each, the last 37,982.
  io::ModelConfig odd = preset("qwen3-8b");
  odd.vocab_size = 151'937;
  const TensorParallelShard last = shard_model(odd, 4, 3);
  EXPECT_EQ(last.vocab_shard, 37'985);
  EXPECT_EQ(last.vocab, (IndexRange{113'955, 151'937}));
}

// The message names the field, its value and the rank count.
void expect_refused(const io::ModelConfig& c, int size, const std::string& words) {
  try {
    shard_model(c, size, 0);
    ADD_FAILURE() << "split over " << size << " ranks was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
  }
}

TEST(TensorParallel, ShapesThatDoNotSplitAreRefusedByName) {
  expect_refused(preset("qwen3-8b"), 3, "num_attention_heads 32 does not split over 3 ranks");
  io::ModelConfig kv = preset("qwen3-8b");
  kv.num_attention_heads = 24;
  kv.num_key_value_heads = 8;
  expect_refused(kv, 6, "num_key_value_heads 8 does not split over 6 ranks");
  io::ModelConfig inter = preset("llama-3.1-8b");
  inter.intermediate_size = 14336 + 16;
  expect_refused(inter, 2, "intermediate_size 14352 does not split over 2 ranks");
  io::ModelConfig experts = preset("qwen3-30b-a3b");
  expect_refused(experts, 32, "moe_intermediate_size 768 does not split over 32 ranks");
  expect_refused(preset("qwen3-8b"), 0, "at least 1");
  EXPECT_THROW(shard_model(preset("qwen3-8b"), 2, 2), Error);
}

// A random NVFP4 weight [rows, cols] as a LinearSource over `w`.
backend::LinearSource nvfp4_source(const quant::Nvfp4Tensor& w) {
  backend::LinearSource s;
  s.name = "test.proj";
  s.out_features = w.rows;
  s.in_features = w.cols;
  s.nvfp4 = w.view();
  return s;
}

std::vector<float> decode(const backend::LinearSource& s) {
  std::vector<float> out(static_cast<size_t>(s.out_features * s.in_features));
  if (s.nvfp4) {
    quant::nvfp4_dequantize(*s.nvfp4, out);
  } else {
    const auto* bf16 = static_cast<const uint16_t*>(s.dense);
    for (size_t i = 0; i < out.size(); ++i) out[i] = bf16_to_f32(bf16[i]);
  }
  return out;
}

// Rows [r0, r1) × columns [c0, c1) of a row-major [rows, cols] matrix.
std::vector<float> block(const std::vector<float>& m, int64_t cols, IndexRange r, IndexRange c) {
  std::vector<float> out;
  for (int64_t i = r.begin; i < r.end; ++i) {
    for (int64_t j = c.begin; j < c.end; ++j) out.push_back(m[static_cast<size_t>(i * cols + j)]);
  }
  return out;
}

TEST(TensorParallel, SlicedNvfp4LinearsDecodeToTheSliceOfTheWeight) {
  const int64_t rows = 48, cols = 160;  // 10 blocks of 16 per row
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> dense(static_cast<size_t>(rows * cols));
  // Magnitudes that vary by block, so that the block scales differ.
  for (size_t i = 0; i < dense.size(); ++i) dense[i] = normal(rng) * static_cast<float>(1 + (i / 16) % 7);
  const quant::Nvfp4Tensor w = quant::nvfp4_quantize_modelopt(dense, rows, cols, quant::modelopt_weight_scale_2(quant::abs_max(dense)));
  const backend::LinearSource whole = nvfp4_source(w);
  const std::vector<float> all = decode(whole);

  const backend::LinearSource top = slice_rows(whole, {16, 40});
  EXPECT_EQ(top.out_features, 24);
  EXPECT_EQ(top.in_features, cols);
  EXPECT_EQ(decode(top), block(all, cols, {16, 40}, {0, cols}));

  SliceStorage storage;
  const backend::LinearSource mid = slice_columns(whole, {48, 112}, storage);
  EXPECT_EQ(mid.out_features, rows);
  EXPECT_EQ(mid.in_features, 64);
  EXPECT_EQ(mid.nvfp4->weight_scale_2, w.weight_scale_2);
  EXPECT_EQ(decode(mid), block(all, cols, {0, rows}, {48, 112}));

  // Both cuts in turn (a row-parallel shard of a column-parallel slice).
  SliceStorage storage2;
  const backend::LinearSource corner = slice_columns(slice_rows(whole, {8, 16}), {144, 160}, storage2);
  EXPECT_EQ(decode(corner), block(all, cols, {8, 16}, {144, 160}));

  EXPECT_THROW(slice_columns(whole, {8, 64}, storage), Error);   // cuts a block of 16
  EXPECT_THROW(slice_columns(whole, {0, 176}, storage), Error);  // past the columns
  EXPECT_THROW(slice_rows(whole, {40, 49}), Error);
}

TEST(TensorParallel, SlicedDenseLinearsHoldTheSliceOfTheWeight) {
  const int64_t rows = 6, cols = 20;
  std::vector<uint16_t> bf16(static_cast<size_t>(rows * cols));
  for (size_t i = 0; i < bf16.size(); ++i) bf16[i] = f32_to_bf16(static_cast<float>(i) * 0.5f - 7.0f);
  backend::LinearSource whole;
  whole.name = "test.dense";
  whole.out_features = rows;
  whole.in_features = cols;
  whole.dense = bf16.data();
  whole.dense_dtype = DType::BF16;
  const std::vector<float> all = decode(whole);
  EXPECT_EQ(decode(slice_rows(whole, {2, 5})), block(all, cols, {2, 5}, {0, cols}));
  SliceStorage storage;
  const backend::LinearSource cut = slice_columns(whole, {3, 11}, storage);  // dense: any column
  EXPECT_EQ(cut.in_features, 8);
  EXPECT_EQ(decode(cut), block(all, cols, {0, rows}, {3, 11}));
}

}  // namespace
}  // namespace adallm::model
