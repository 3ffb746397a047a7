// Tensor-parallel shards of a model's heads, rows and experts, and of its stored Linears; see
// tensor_parallel.h.
#include "model/tensor_parallel.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "quant/nvfp4.h"

namespace adallm::model {
namespace {

// Rank `rank`'s part of `count` items split evenly over `size` ranks (size divides count).
IndexRange even_part(int64_t count, int size, int rank) {
  const int64_t per = count / size;
  return {per * rank, per * (rank + 1)};
}

[[noreturn]] void refuse(const std::string& field, int64_t value, int size, const std::string& why) {
  throw Error("tensor parallelism: " + field + " " + std::to_string(value) + " does not split over " +
              std::to_string(size) + " ranks (--tensor-parallel-size): " + why);
}

}  // namespace

TensorParallelShard shard_model(const io::ModelConfig& config, int size, int rank) {
  if (size < 1) throw Error("tensor parallelism: --tensor-parallel-size must be at least 1, got " + std::to_string(size));
  if (rank < 0 || rank >= size) {
    throw Error("tensor parallelism: rank " + std::to_string(rank) + " is outside 0.." + std::to_string(size - 1));
  }
  TensorParallelShard s;
  s.size = size;
  s.rank = rank;
  const int64_t heads = config.num_attention_heads, kv_heads = config.num_key_value_heads;
  if (heads % size != 0) refuse("num_attention_heads", heads, size, "each rank takes whole query heads");
  s.q_heads = even_part(heads, size, rank);
  if (kv_heads % size == 0) {
    s.kv_heads = even_part(kv_heads, size, rank);
  } else if (size % kv_heads == 0) {
    // size / kv_heads ranks share each KV head; their query heads are that head's group.
    const int64_t kv = rank / (size / kv_heads);
    s.kv_heads = {kv, kv + 1};
    s.kv_replicated = true;
  } else {
    refuse("num_key_value_heads", kv_heads, size,
           "the ranks must split the KV heads evenly, or each KV head be replicated on the same number of ranks");
  }

  bool dense_layers = false, moe_layers = false;
  for (int64_t layer = 0; layer < config.num_hidden_layers; ++layer) {
    (config.is_moe_layer(layer) ? moe_layers : dense_layers) = true;
  }
  if (dense_layers) {
    // down_proj is row parallel over the intermediate features: each rank's columns must be whole NVFP4
    // blocks of 16 (and the kernels' K a multiple of 16 for BF16 weights too).
    if (config.intermediate_size % (int64_t{16} * size) != 0) {
      refuse("intermediate_size", config.intermediate_size, size,
             "each rank's share of down_proj's input must be a multiple of 16 columns (whole NVFP4 blocks)");
    }
    s.intermediate = even_part(config.intermediate_size, size, rank);
  }
  if (moe_layers) {
    if (config.moe_intermediate_size % (int64_t{16} * size) != 0) {
      refuse("moe_intermediate_size", config.moe_intermediate_size, size,
             "each rank's share of an expert's down_proj input must be a multiple of 16 columns (whole NVFP4 blocks)");
    }
    s.moe_intermediate = even_part(config.moe_intermediate_size, size, rank);
  }
  // Vocabulary rows: ceil(vocab / size) per rank, the last rank fewer (its all-gather slot padded).
  s.vocab_shard = (config.vocab_size + size - 1) / size;
  s.vocab = {std::min(config.vocab_size, s.vocab_shard * rank), std::min(config.vocab_size, s.vocab_shard * (rank + 1))};
  return s;
}

backend::LinearSource slice_rows(const backend::LinearSource& source, IndexRange rows) {
  if (rows.begin < 0 || rows.end > source.out_features || rows.begin > rows.end) {
    throw Error("tensor parallelism: rows " + std::to_string(rows.begin) + ".." + std::to_string(rows.end) + " of " +
                source.name + " (" + std::to_string(source.out_features) + " output features)");
  }
  backend::LinearSource s = source;
  s.out_features = rows.size();
  if (source.nvfp4) {
    const quant::Nvfp4View& w = *source.nvfp4;
    s.nvfp4->packed = w.packed + rows.begin * (w.cols / 2);
    s.nvfp4->scales = w.scales + rows.begin * (w.cols / quant::kNvfp4GroupSize);
    s.nvfp4->rows = rows.size();
  } else {
    s.dense = static_cast<const uint8_t*>(source.dense) +
              rows.begin * source.in_features * static_cast<int64_t>(dtype_size(source.dense_dtype));
  }
  return s;
}

backend::LinearSource slice_columns(const backend::LinearSource& source, IndexRange cols, SliceStorage& storage) {
  if (cols.begin < 0 || cols.end > source.in_features || cols.begin > cols.end) {
    throw Error("tensor parallelism: columns " + std::to_string(cols.begin) + ".." + std::to_string(cols.end) + " of " +
                source.name + " (" + std::to_string(source.in_features) + " input features)");
  }
  backend::LinearSource s = source;
  s.in_features = cols.size();
  const int64_t rows = source.out_features;
  if (source.nvfp4) {
    constexpr int64_t g = quant::kNvfp4GroupSize;
    if (cols.begin % g != 0 || cols.end % g != 0) {
      throw Error("tensor parallelism: columns " + std::to_string(cols.begin) + ".." + std::to_string(cols.end) + " of " +
                  source.name + " cut NVFP4 blocks of 16 columns");
    }
    const quant::Nvfp4View& w = *source.nvfp4;
    const int64_t row_bytes = cols.size() / 2, row_scales = cols.size() / g;
    storage.packed.resize(static_cast<size_t>(rows * row_bytes));
    storage.scales.resize(static_cast<size_t>(rows * row_scales));
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(storage.packed.data() + r * row_bytes, w.packed + r * (w.cols / 2) + cols.begin / 2,
                  static_cast<size_t>(row_bytes));
      std::memcpy(storage.scales.data() + r * row_scales, w.scales + r * (w.cols / g) + cols.begin / g,
                  static_cast<size_t>(row_scales));
    }
    s.nvfp4->packed = storage.packed.data();
    s.nvfp4->scales = storage.scales.data();
    s.nvfp4->cols = cols.size();
  } else {
    const auto elem = static_cast<int64_t>(dtype_size(source.dense_dtype));
    const auto* dense = static_cast<const uint8_t*>(source.dense);
    storage.packed.resize(static_cast<size_t>(rows * cols.size() * elem));
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(storage.packed.data() + r * cols.size() * elem, dense + (r * source.in_features + cols.begin) * elem,
                  static_cast<size_t>(cols.size() * elem));
    }
    storage.scales.clear();
    s.dense = storage.packed.data();
  }
  return s;
}

}  // namespace adallm::model
