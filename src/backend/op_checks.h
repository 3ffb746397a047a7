// The argument checks every backend's ops start with, shared so that the CPU reference and the CUDA
// backend refuse the same calls with the same messages. `op` names the Backend op, `what` the argument;
// `dtype` is the backend's activation dtype where an op reads or writes activations. Each throws
// adallm::Error.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "backend/backend.h"

namespace adallm::backend {

// "F32 [7, *]": a shape with -1 for "any".
std::string shape_text(DType dtype, int64_t rows, int64_t cols);
// Unless t is dtype [rows, cols] (rows or cols -1: any), stride >= cols, with data when non-empty.
void expect_tensor(const Tensor& t, DType dtype, int64_t rows, int64_t cols, const char* op, const char* what);
// Unless src is a BF16, F16 or F32 array with a valid shape and data, and dtype is F32 or BF16.
void check_upload(const HostArray& src, DType dtype);

// Unless `layer` is one of the cache's layers and the batch fits the cache's pages.
void check_cache_layer(const KvCache& cache, int64_t layer, const ForwardBatch& batch, const char* op);
// table [vocab_size, hidden_size] F32 or BF16, out [num_tokens, hidden_size] F32, every id in the vocabulary.
void check_embed(const Tensor& table, int64_t first_id, int64_t vocab_size, const ForwardBatch& batch, const Tensor& out);
void check_qk_norm_rope_kv_write(const Tensor& qkv, int64_t num_attention_heads, const Tensor* q_norm,
                                 const Tensor* k_norm, const RopeTable& rope, const KvCacheSpec& spec,
                                 const ForwardBatch& batch, DType dtype);
// Returns num_attention_heads.
int64_t check_attention(const Tensor& q, const KvCacheSpec& spec, std::optional<int64_t> sliding_window,
                        const Tensor& out, const ForwardBatch& batch, DType dtype);
// linear_residual_norm's tensors (see backend.h) for a weight [out_features, in_features]; partials are
// checked to hold `partials_needed` columns.
void check_linear_residual_norm(const Linear& weight, const Tensor& x, const Tensor& residual,
                                const Tensor& norm_weight, const Tensor& scratch, const Tensor& values,
                                const Tensor& partials, int64_t partials_needed, DType dtype);
// x.values [rows, cols] in dtype; x.partials F32 [rows, *] (no columns: normalized rows); with partials,
// eps finite and >= 0.
void check_normed_rows(const NormedRows& x, int64_t cols, DType dtype, const char* op);
void check_argmax_rows(const Tensor& logits, const Tensor& ids);
void check_copy(const Tensor& src, const Tensor& dst);
// logits F32 [rows, vocab_size] with vocab_size >= 1; bitmask rows * ((vocab_size + 31) / 32) words.
void check_mask_logits(const Tensor& logits, std::span<const uint32_t> bitmask);
void check_logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, const Tensor& chosen,
                         const Tensor& top_ids, const Tensor& top_logprobs);
// logits F32 [rows.size(), vocab_size] with vocab_size in [1, 2^31), ids I32 [rows.size(), 1], every token
// id in the rows' lists in [0, vocab_size), and each sampled (non-greedy) row's uniform in [0, 1).
void check_sample_rows(const Tensor& logits, std::span<const SamplingRow> rows, const Tensor& ids);
// Every expert's gate_proj and up_proj [moe_intermediate_size, hidden_size] and down_proj [hidden_size,
// moe_intermediate_size], as the first expert's gate_proj says. Sets the two sizes.
void check_experts(std::span<const ExpertSource> experts, int64_t& hidden_size, int64_t& moe_intermediate_size);
// x, out [num_tokens, hidden] in dtype; topk_ids [num_tokens, top_k] I32; topk_weights same shape F32.
// Returns top_k.
int64_t check_moe_experts(const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights, const Tensor& out,
                          int64_t hidden, DType dtype);
void check_moe_route(const Tensor& router_logits, int64_t top_k, const Tensor& topk_ids, const Tensor& topk_weights);

}  // namespace adallm::backend
