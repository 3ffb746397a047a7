// Tensor parallelism's arithmetic (Megatron-style): which query and KV heads, MLP rows, experts and
// vocabulary rows each of `size` ranks owns, and the shards of stored Linears — NVFP4 codes cut together
// with their per-16 block scales, the per-tensor scale shared. Pure host code, so that the CPU tests check
// it without a GPU; communicators and the per-rank forward pass are left to the backends and the model.
//
// Column parallel (each rank computes some output features, no communication): q/k/v, gate/up, lm_head
// (vocabulary rows; the logits meet in an all-gather). The embedding is split by vocabulary rows too: each
// rank looks up its own rows (zeros for the others') and an all-reduce sums the lookups. Row parallel (each rank holds some input features, the outputs are
// partial sums, all-reduced): o_proj over the rank's query heads, down_proj over its intermediate rows.
// MoE layers split every expert the same way (its gate/up rows, its down columns: vLLM's default), so
// that routing, replicated, needs no exchange. With fewer KV heads than ranks
// each KV head is replicated on size / num_key_value_heads ranks, so that every rank's query heads find
// their KV head locally.
#pragma once

#include <cstdint>
#include <vector>

#include "backend/backend.h"
#include "io/model_config.h"

namespace adallm::model {

// [begin, end) over some axis, in global indices.
struct IndexRange {
  int64_t begin = 0;
  int64_t end = 0;
  int64_t size() const { return end - begin; }
  bool operator==(const IndexRange&) const = default;
};

struct TensorParallelShard {
  int size = 1;
  int rank = 0;
  IndexRange q_heads;   // query heads of this rank
  IndexRange kv_heads;  // KV heads it keeps: those of its query heads (one, replicated, when fewer than ranks)
  bool kv_replicated = false;
  IndexRange intermediate;      // dense MLP: rows of gate_proj and up_proj, columns of down_proj
  IndexRange moe_intermediate;  // MoE layers: the same of every expert (empty for a dense model)
  IndexRange vocab;         // rows of the embedding and of lm_head; every rank but the last holds vocab_shard
  int64_t vocab_shard = 0;  // rows per rank (the all-gather's stride: the last rank's rows are padded to it)

  // Rows of q_proj (and columns of o_proj), and of k_proj / v_proj.
  IndexRange q_rows(int64_t head_dim) const { return {q_heads.begin * head_dim, q_heads.end * head_dim}; }
  IndexRange kv_rows(int64_t head_dim) const { return {kv_heads.begin * head_dim, kv_heads.end * head_dim}; }
  bool operator==(const TensorParallelShard&) const = default;
};

// The shard of rank `rank` of `size`. Throws adallm::Error naming the config field when the model does not
// split over `size` ranks: num_attention_heads must divide; num_key_value_heads must divide or be divided by
// `size`; intermediate_size (dense layers) and moe_intermediate_size (MoE layers) must split into whole
// 16-column NVFP4 blocks per rank.
TensorParallelShard shard_model(const io::ModelConfig& config, int size, int rank);

// Rows `rows` of a stored Linear (column parallel): a view into the same memory, no copy.
backend::LinearSource slice_rows(const backend::LinearSource& source, IndexRange rows);

// Columns `cols` of a stored Linear (row parallel), copied into `storage` (which the returned view reads:
// keep it alive while the view is used). NVFP4 weights are cut at block boundaries, so cols.begin and
// cols.end must be multiples of 16; the block scales go with their columns, weight_scale_2 is shared.
struct SliceStorage {
  std::vector<uint8_t> packed;  // NVFP4 codes [rows, cols/2], or the dense rows
  std::vector<uint8_t> scales;  // NVFP4 block scales [rows, cols/16]
};
backend::LinearSource slice_columns(const backend::LinearSource& source, IndexRange cols, SliceStorage& storage);

}  // namespace adallm::model
