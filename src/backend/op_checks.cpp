// Argument checks shared by the backends (see op_checks.h).
#include "backend/op_checks.h"

#include <limits>
#include <string>

#include "core/error.h"

namespace adallm::backend {

std::string shape_text(DType dtype, int64_t rows, int64_t cols) {
  const auto dim = [](int64_t d) { return d < 0 ? std::string("*") : std::to_string(d); };
  return std::string(dtype_name(dtype)) + " [" + dim(rows) + ", " + dim(cols) + "]";
}

void expect_tensor(const Tensor& t, DType dtype, int64_t rows, int64_t cols, const char* op, const char* what) {
  const bool shape_ok = t.dtype == dtype && (rows < 0 || t.rows == rows) && (cols < 0 || t.cols == cols) &&
                        t.rows >= 0 && t.cols >= 0 && t.stride >= t.cols;
  if (!shape_ok) {
    throw Error(std::string(op) + ": " + what + " expected " + shape_text(dtype, rows, cols) + " with stride >= cols, got " +
                t.describe());
  }
  if (t.numel() > 0 && t.data == nullptr) throw Error(std::string(op) + ": " + what + " has no data: " + t.describe());
}

void check_upload(const HostArray& src, DType dtype) {
  const std::string where = "upload of " + src.name + ": ";
  if (src.dtype != DType::F32 && src.dtype != DType::BF16 && src.dtype != DType::F16) {
    throw Error(where + "source dtype must be BF16, F16 or F32, got " + std::string(dtype_name(src.dtype)));
  }
  if (dtype != DType::F32 && dtype != DType::BF16) {
    throw Error(where + "weights are stored as F32 or BF16, not " + std::string(dtype_name(dtype)));
  }
  if (src.rows < 0 || src.cols < 0) throw Error(where + "negative shape " + shape_text(src.dtype, src.rows, src.cols));
  if (src.rows * src.cols > 0 && src.data == nullptr) {
    throw Error(where + "no data for " + shape_text(src.dtype, src.rows, src.cols));
  }
}

void check_cache_layer(const KvCache& cache, int64_t layer, const ForwardBatch& batch, const char* op) {
  if (layer < 0 || layer >= cache.spec().num_layers) {
    throw Error(std::string(op) + ": layer " + std::to_string(layer) + " outside the cache's " +
                std::to_string(cache.spec().num_layers) + " layers");
  }
  batch.validate(cache.spec().num_pages, cache.spec().page_size);
}

void check_embed(const Tensor& table, int64_t first_id, int64_t vocab_size, const ForwardBatch& batch, const Tensor& out) {
  if (table.dtype != DType::F32 && table.dtype != DType::BF16) {
    throw Error("embed: table expected F32 or BF16 [vocab_size, hidden_size], got " + table.describe());
  }
  expect_tensor(table, table.dtype, -1, -1, "embed", "table");
  expect_tensor(out, DType::F32, batch.num_tokens(), table.cols, "embed", "out");
  if (first_id < 0 || first_id + table.rows > vocab_size) {
    throw Error("embed: table rows " + std::to_string(first_id) + " .. " + std::to_string(first_id + table.rows - 1) +
                " outside vocab_size " + std::to_string(vocab_size));
  }
  for (int64_t t = 0; t < batch.num_tokens(); ++t) {
    const int32_t id = batch.token_ids[static_cast<size_t>(t)];
    if (id < 0 || id >= vocab_size) {
      throw Error("embed: token " + std::to_string(t) + " has id " + std::to_string(id) + ", outside vocab_size " +
                  std::to_string(vocab_size));
    }
  }
}

void check_qk_norm_rope_kv_write(const Tensor& qkv, int64_t num_attention_heads, const Tensor* q_norm,
                                 const Tensor* k_norm, const RopeTable& rope, const KvCacheSpec& spec,
                                 const ForwardBatch& batch, DType dtype) {
  const char* op = "qk_norm_rope_kv_write";
  const int64_t kv_heads = spec.num_key_value_heads, d = spec.head_dim, heads = num_attention_heads;
  if (heads <= 0 || heads % kv_heads != 0) {
    throw Error(std::string(op) + ": num_attention_heads " + std::to_string(heads) +
                " must be a positive multiple of num_key_value_heads " + std::to_string(kv_heads));
  }
  expect_tensor(qkv, dtype, batch.num_tokens(), (heads + 2 * kv_heads) * d, op, "qkv");
  if (q_norm != nullptr) expect_tensor(*q_norm, DType::F32, 1, d, op, "q_norm");
  if (k_norm != nullptr) expect_tensor(*k_norm, DType::F32, 1, d, op, "k_norm");
  if (static_cast<int64_t>(rope.inv_freq.size()) != d / 2) {
    throw Error(std::string(op) + ": rope inv_freq has " + std::to_string(rope.inv_freq.size()) +
                " entries, expected head_dim / 2 = " + std::to_string(d / 2));
  }
}

int64_t check_attention(const Tensor& q, const KvCacheSpec& spec, std::optional<int64_t> sliding_window,
                        const Tensor& out, const ForwardBatch& batch, DType dtype) {
  const char* op = "attention";
  const int64_t kv_heads = spec.num_key_value_heads, d = spec.head_dim;
  if (q.cols % d != 0 || (q.cols / d) % kv_heads != 0 || q.cols == 0) {
    throw Error(std::string(op) + ": q " + q.describe() + " is not [num_tokens, num_attention_heads * head_dim] with head_dim " +
                std::to_string(d) + " and a multiple of " + std::to_string(kv_heads) + " heads");
  }
  expect_tensor(q, dtype, batch.num_tokens(), q.cols, op, "q");
  expect_tensor(out, dtype, q.rows, q.cols, op, "out");
  if (sliding_window && *sliding_window <= 0) {
    throw Error(std::string(op) + ": sliding_window must be > 0, got " + std::to_string(*sliding_window));
  }
  return q.cols / d;
}

void check_copy(const Tensor& src, const Tensor& dst) {
  expect_tensor(src, src.dtype, -1, -1, "copy", "src");
  expect_tensor(dst, src.dtype, src.rows, src.cols, "copy", "dst");
}

void check_logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, const Tensor& chosen,
                         const Tensor& top_ids, const Tensor& top_logprobs) {
  constexpr const char* op = "logprobs_rows";
  expect_tensor(logits, DType::F32, -1, -1, op, "logits");
  if (logits.cols <= 0 || logits.cols > std::numeric_limits<int32_t>::max()) {
    throw Error(std::string(op) + ": logits " + logits.describe() + " must have between 1 and 2^31 - 1 columns");
  }
  if (top_n < 0 || top_n > kMaxTopLogprobs) {
    throw Error(std::string(op) + ": top_n is " + std::to_string(top_n) + "; expected 0 to " +
                std::to_string(kMaxTopLogprobs));
  }
  expect_tensor(ids, DType::I32, logits.rows, 1, op, "ids");
  expect_tensor(chosen, DType::F32, logits.rows, 1, op, "chosen");
  expect_tensor(top_ids, DType::I32, logits.rows, top_n, op, "top_ids");
  expect_tensor(top_logprobs, DType::F32, logits.rows, top_n, op, "top_logprobs");
}

void check_linear_residual_norm(const Linear& weight, const Tensor& x, const Tensor& residual,
                                const Tensor& norm_weight, const Tensor& scratch, const Tensor& values,
                                const Tensor& partials, int64_t partials_needed, DType dtype) {
  constexpr const char* op = "linear_residual_norm";
  const int64_t n = weight.out_features();
  expect_tensor(x, dtype, -1, weight.in_features(), op, "x");
  expect_tensor(residual, DType::F32, x.rows, n, op, "residual");
  expect_tensor(norm_weight, DType::F32, 1, n, op, "norm_weight");
  expect_tensor(scratch, dtype, x.rows, n, op, "scratch");
  expect_tensor(values, dtype, x.rows, n, op, "values");
  if (partials_needed > 0) {
    expect_tensor(partials, DType::F32, x.rows, -1, op, "partials");
    if (partials.cols < partials_needed) {
      throw Error(std::string(op) + ": partials " + partials.describe() + " has fewer than the " +
                  std::to_string(partials_needed) + " columns a " + std::to_string(n) + "-wide row needs");
    }
  }
}

void check_normed_rows(const NormedRows& x, int64_t cols, DType dtype, const char* op) {
  expect_tensor(x.values, dtype, -1, cols, op, "x.values");
  if (x.partials.cols == 0) return;
  expect_tensor(x.partials, DType::F32, x.values.rows, -1, op, "x.partials");
  if (!(x.eps >= 0.0f) || x.eps == std::numeric_limits<float>::infinity()) {
    throw Error(std::string(op) + ": x.eps is " + std::to_string(x.eps) + "; a norm's eps is finite and >= 0");
  }
}

void check_mask_logits(const Tensor& logits, std::span<const uint32_t> bitmask) {
  expect_tensor(logits, DType::F32, -1, -1, "mask_logits", "logits");
  if (logits.cols <= 0) throw Error("mask_logits: logits have no columns: " + logits.describe());
  const int64_t words = (logits.cols + 31) / 32;
  if (static_cast<int64_t>(bitmask.size()) != logits.rows * words) {
    throw Error("mask_logits: bitmask of " + std::to_string(bitmask.size()) + " words for logits " + logits.describe() +
                "; expected rows * " + std::to_string(words) + " = " + std::to_string(logits.rows * words));
  }
}

void check_argmax_rows(const Tensor& logits, const Tensor& ids) {
  expect_tensor(logits, DType::F32, -1, -1, "argmax_rows", "logits");
  if (logits.cols <= 0) throw Error("argmax_rows: logits have no columns: " + logits.describe());
  expect_tensor(ids, DType::I32, logits.rows, 1, "argmax_rows", "ids");
}

namespace {

void check_row_tokens(std::span<const int32_t> tokens, int64_t vocab_size, size_t row, const char* list) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab_size) {
      throw Error("sample_rows: rows[" + std::to_string(row) + "]." + list + "[" + std::to_string(i) + "] = " +
                  std::to_string(tokens[i]) + " is outside [0, vocab_size=" + std::to_string(vocab_size) + ")");
    }
  }
}

}  // namespace

void check_sample_rows(const Tensor& logits, std::span<const SamplingRow> rows, const Tensor& ids) {
  expect_tensor(logits, DType::F32, -1, -1, "sample_rows", "logits");
  if (logits.rows != static_cast<int64_t>(rows.size())) {
    throw Error("sample_rows: " + std::to_string(rows.size()) + " sampling rows for logits " + logits.describe() +
                "; expected one per logit row");
  }
  if (logits.cols <= 0 || logits.cols > std::numeric_limits<int32_t>::max()) {
    throw Error("sample_rows: logits " + logits.describe() +
                " must have between 1 and 2^31 - 1 columns (token ids are int32)");
  }
  expect_tensor(ids, DType::I32, logits.rows, 1, "sample_rows", "ids");
  for (size_t r = 0; r < rows.size(); ++r) {
    check_row_tokens(rows[r].prompt_tokens, logits.cols, r, "prompt_tokens");
    check_row_tokens(rows[r].output_tokens, logits.cols, r, "output_tokens");
    if (!rows[r].greedy() && !(rows[r].uniform >= 0.0 && rows[r].uniform < 1.0)) {
      throw Error("sample_rows: rows[" + std::to_string(r) + "].uniform is " + std::to_string(rows[r].uniform) +
                  "; expected a value in [0, 1)");
    }
  }
}

void check_experts(std::span<const ExpertSource> experts, int64_t& hidden_size, int64_t& moe_intermediate_size) {
  if (experts.empty()) throw Error("load_experts: no experts given");
  const int64_t inter = experts.front().gate_proj.out_features, hidden = experts.front().gate_proj.in_features;
  const auto shape = [](const LinearSource& s) {
    return s.name + " [" + std::to_string(s.out_features) + ", " + std::to_string(s.in_features) + "]";
  };
  for (const ExpertSource& e : experts) {
    if (e.gate_proj.out_features != inter || e.gate_proj.in_features != hidden) {
      throw Error("load_experts: " + shape(e.gate_proj) + ", expected [" + std::to_string(inter) + ", " +
                  std::to_string(hidden) + "] as the first expert's gate_proj");
    }
    if (e.up_proj.out_features != inter || e.up_proj.in_features != hidden) {
      throw Error("load_experts: " + shape(e.up_proj) + ", expected [" + std::to_string(inter) + ", " +
                  std::to_string(hidden) + "]");
    }
    if (e.down_proj.out_features != hidden || e.down_proj.in_features != inter) {
      throw Error("load_experts: " + shape(e.down_proj) + ", expected [" + std::to_string(hidden) + ", " +
                  std::to_string(inter) + "]");
    }
  }
  hidden_size = hidden;
  moe_intermediate_size = inter;
}

int64_t check_moe_experts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights, const Tensor& out,
                          int64_t hidden, DType dtype) {
  const char* op = "moe_experts";
  expect_tensor(x, dtype, -1, hidden, op, "x");
  expect_tensor(topk_ids, DType::I32, x.rows, -1, op, "topk_ids");
  expect_tensor(topk_weights, DType::F32, x.rows, topk_ids.cols, op, "topk_weights");
  expect_tensor(out, dtype, x.rows, hidden, op, "out");
  return topk_ids.cols;
}

void check_moe_route(const Tensor& router_logits, int64_t top_k, const Tensor& topk_ids, const Tensor& topk_weights) {
  expect_tensor(router_logits, DType::F32, -1, -1, "moe_route", "router_logits");
  const int64_t num_experts = router_logits.cols;
  if (top_k <= 0 || top_k > num_experts) {
    throw Error("moe_route: top_k " + std::to_string(top_k) + " must be in [1, " + std::to_string(num_experts) +
                "] for router_logits " + router_logits.describe());
  }
  expect_tensor(topk_ids, DType::I32, router_logits.rows, top_k, "moe_route", "topk_ids");
  expect_tensor(topk_weights, DType::F32, router_logits.rows, top_k, "moe_route", "topk_weights");
}

}  // namespace adallm::backend
