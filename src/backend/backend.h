// The Backend interface: the ops a model's forward pass is written in (model/arch/*.cpp calls nothing
// else), at the granularity the GPU needs — fusions such as norm + residual add, q/k-norm + RoPE + KV
// write, and gate/up + activation are single ops here with a plain CPU version. Backends own all memory
// they compute on; weights come in as host views of the checkpoint and are copied or uploaded at load.
// Scheduling, page allocation and sampling live above this line (engine/, kv/).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/batch.h"
#include "backend/sampling.h"
#include "backend/tensor.h"
#include "quant/nvfp4.h"

namespace adallm::backend {

enum class Activation { silu, gelu_tanh };  // gelu_tanh: PyTorch's gelu(approximate="tanh")

// RMSNorm forms. llama: (x * rsqrt(mean(x²) + eps)) * w. gemma: (x * rsqrt(mean(x²) + eps)) * (1 + w),
// the weight stored zero-centred. Both compute in fp32.
enum class NormKind { llama, gemma };

// One stored Linear, y = x W^T with W [out_features, in_features]. Exactly one of `nvfp4` and `dense` is
// set. Host pointers into the checkpoint mapping; they may be unaligned for their dtype.
struct LinearSource {
  std::string name;  // the module, for errors ("model.layers.0.self_attn.q_proj")
  int64_t out_features = 0;
  int64_t in_features = 0;
  std::optional<quant::Nvfp4View> nvfp4;
  const void* dense = nullptr;  // [out_features, in_features] BF16, F16 or F32
  DType dense_dtype = DType::BF16;
};

// A host array to upload (norm weights, embedding tables, RoPE frequencies); may be unaligned.
struct HostArray {
  std::string name;
  const void* data = nullptr;
  DType dtype = DType::F32;  // BF16, F16 or F32
  int64_t rows = 1;
  int64_t cols = 0;
};

// A loaded Linear: one or more stored Linears with the same in_features stacked along the output
// (q/k/v, gate/up), each keeping its own scales, so one op computes the fused projection.
class Linear {
 public:
  virtual ~Linear() = default;
  int64_t out_features() const { return out_features_; }
  int64_t in_features() const { return in_features_; }
  bool nvfp4() const { return nvfp4_; }

 protected:
  int64_t out_features_ = 0;
  int64_t in_features_ = 0;
  bool nvfp4_ = false;
};

// The experts of one MoE layer: per expert a fused gate/up Linear [2 * moe_intermediate, hidden] and a
// down Linear [hidden, moe_intermediate].
struct ExpertSource {
  LinearSource gate_proj, up_proj, down_proj;
};
class Experts {
 public:
  virtual ~Experts() = default;
  int64_t num_experts() const { return num_experts_; }
  int64_t moe_intermediate_size() const { return moe_intermediate_size_; }

 protected:
  int64_t num_experts_ = 0;
  int64_t moe_intermediate_size_ = 0;
};

// The paged KV cache: per layer, K and V as [num_pages, page_size, num_key_value_heads, head_dim].
// FP8 e4m3 stores x / scale saturated to ±448 and reads fp8 · scale; BF16 stores x rounded to bf16
// (the scales are then unused).
enum class KvCacheDType { bf16, fp8_e4m3 };
const char* kv_cache_dtype_name(KvCacheDType dtype);  // "bf16", "fp8"
KvCacheDType parse_kv_cache_dtype(const std::string& name);  // "bf16" | "fp8" | "fp8_e4m3"; throws

struct KvCacheSpec {
  int64_t num_layers = 0;
  int64_t num_pages = 0;
  int64_t page_size = 16;  // tokens per page
  int64_t num_key_value_heads = 0;
  int64_t head_dim = 0;
  KvCacheDType dtype = KvCacheDType::bf16;
  std::vector<float> k_scales;  // [num_layers]; 1.0 when the checkpoint has none
  std::vector<float> v_scales;  // [num_layers]

  int64_t bytes_per_token_per_layer() const;  // K and V
  int64_t bytes() const;
  float k_scale(int64_t layer) const { return k_scales.empty() ? 1.0f : k_scales[static_cast<size_t>(layer)]; }
  float v_scale(int64_t layer) const { return v_scales.empty() ? 1.0f : v_scales[static_cast<size_t>(layer)]; }
  // Throws adallm::Error for a non-positive size, a head_dim that is not a multiple of head_dim_multiple
  // (what the backend's kernels need), or scales that are missing (FP8), miscounted, non-finite or ≤ 0.
  void validate(int64_t head_dim_multiple) const;
};
class KvCache {
 public:
  virtual ~KvCache() = default;
  const KvCacheSpec& spec() const { return spec_; }

 protected:
  KvCacheSpec spec_;
};

// RoPE (NeoX rotate_half form) for one layer type: inv_freq [head_dim / 2] from the model config
// (default, linear, llama3 or yarn, already folded in) and yarn's attention factor (1 otherwise).
struct RopeTable {
  std::vector<float> inv_freq;
  float attention_factor = 1.0f;
};

// A block's normalized input as normed_linear and normed_gated_linear read it. Row t stands for
// values[t] · s(t): s(t) = 1 when `partials` has no columns (values are rmsnorm(residual) · weight already),
// else s(t) = 1 / sqrt(Σ_j partials[t, j] / values.cols + eps), values being residual ⊙ weight (⊙ (1 + weight)
// for NormKind::gemma) and the partials sums of residual² over slices of the row. The second form lets a
// backend fold the norm into the epilogues of the linear that updates the residual (values, partials) and
// of the linear that reads it (the row's scale applied to its dot products), with no norm kernel between.
struct NormedRows {
  Tensor values;    // [rows, n] of activation_dtype()
  Tensor partials;  // [rows, p] F32; p = 0: values are normalized
  float eps = 0.0f;
  // Rows already normalized (the first form).
  static NormedRows plain(const Tensor& values) { return {values, Tensor{nullptr, DType::F32, values.rows, 0, 0}, 0.0f}; }
};

// Device memory as the backend's GPU reports it, bytes.
struct DeviceMemoryInfo {
  int64_t free = 0;
  int64_t total = 0;
};

// A recorded forward pass (Backend::begin_graph / end_graph), replayed by Backend::replay_graph.
class Graph {
 public:
  virtual ~Graph() = default;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;  // "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)"
  // What the model's activations between ops are held in: F32 on the CPU, BF16 on the GPU. The residual
  // stream, router logits and logits are F32 on every backend.
  virtual DType activation_dtype() const = 0;
  // The device's memory now (the engine sizes its KV pool from it); nullopt on the CPU.
  virtual std::optional<DeviceMemoryInfo> device_memory() const { return std::nullopt; }

  // ---- memory and weights -------------------------------------------------------------------------
  // Activations: [rows, cols] of F32, of activation_dtype(), or I32 (routing ids).
  virtual std::unique_ptr<Buffer> alloc(int64_t rows, int64_t cols, DType dtype) = 0;
  // Copies host data in, converted to `dtype` (F32 for norm weights, the table's own dtype for embeddings).
  virtual std::unique_ptr<Buffer> upload(const HostArray& src, DType dtype) = 0;
  // Throws adallm::Error naming the part when shapes disagree or a dtype is unsupported.
  virtual std::unique_ptr<Linear> load_linear(std::span<const LinearSource> parts) = 0;
  // A gate/up pair for gated_linear (gate first, equal shapes): the GPU keeps NVFP4 pairs in a layout
  // whose kernels apply the activation themselves, so such a Linear serves gated_linear only.
  virtual std::unique_ptr<Linear> load_gate_up_linear(const LinearSource& gate, const LinearSource& up) = 0;
  virtual std::unique_ptr<Experts> load_experts(std::span<const ExpertSource> experts) = 0;
  // A Linear reading its weight from an uploaded [out_features, in_features] table, without a copy: a tied
  // lm_head over the embedding table. The table's buffer must outlive the Linear.
  virtual std::unique_ptr<Linear> linear_from_table(const Tensor& table) = 0;
  virtual std::unique_ptr<KvCache> alloc_kv_cache(const KvCacheSpec& spec) = 0;
  // Reads a tensor back as fp32, row-major contiguous (dst has rows * cols elements).
  virtual void to_host(const Tensor& src, std::span<float> dst) = 0;

  // ---- the forward pass ---------------------------------------------------------------------------
  // Makes `batch` the one the following ops work on (the CUDA backend uploads it once here). The batch
  // must stay alive and unchanged until the next set_batch.
  virtual void set_batch(const ForwardBatch& batch) = 0;

  // ---- step graphs ----------------------------------------------------------------------------------
  // A backend that supports them records the ops issued between begin_graph() and end_graph() instead of
  // running them (CUDA graphs), and replay_graph() runs them again with one launch. A replay reads what
  // its recording read, at the same addresses: the caller keeps every tensor of the recording alive and
  // unmoved, and sets batches of the recording's shape (arrays of the same sizes, the same
  // max_pages_per_seq and plan_keys), whose contents set_batch uploads to the same device arrays. An op
  // that cannot be recorded (one that waits for the device or reads results back) throws; abort_graph()
  // then ends the recording. A graph goes stale when the backend moves its own device memory (a workspace
  // growing, a larger batch): memory_epoch() changes, and replay_graph throws for a graph recorded in an
  // earlier epoch. Backends without graphs throw from all but supports_graphs() and memory_epoch().
  virtual bool supports_graphs() const { return false; }
  virtual void begin_graph();
  virtual std::unique_ptr<Graph> end_graph();
  virtual void abort_graph() {}
  virtual void replay_graph(const Graph& graph);
  virtual int64_t memory_epoch() const { return 0; }

  // out[t] = table[token_ids[t] - first_id] * scale for the ids first_id .. first_id + table.rows - 1, zeros
  // for the others: table holds vocabulary rows first_id onwards of a vocabulary of vocab_size (the whole
  // table: first_id 0, vocab_size table.rows; a tensor-parallel rank's rows: the ranks' outputs sum to the
  // whole lookup). Every id must be below vocab_size. table [rows, hidden_size]; out [num_tokens,
  // hidden_size] F32.
  virtual void embed(const Tensor& table, int64_t first_id, int64_t vocab_size, float scale, Tensor out) = 0;

  // out = rmsnorm(x) · weight. x, out [rows, n]; weight [1, n] F32. out may alias x.
  virtual void rms_norm(const Tensor& x, const Tensor& weight, float eps, NormKind kind, Tensor out) = 0;
  // residual += x; out = rmsnorm(residual) · weight (residual and x [rows, n]; out may alias x).
  virtual void add_rms_norm(const Tensor& x, Tensor residual, const Tensor& weight, float eps, NormKind kind,
                            Tensor out) = 0;

  // out = x W^T. x [rows, in_features]; out [rows, out_features].
  virtual void linear(const Linear& weight, const Tensor& x, Tensor out) = 0;

  // A block's output joining the residual stream, and the next block's input norm (decoder layers whose
  // blocks add straight into the residual: Llama, Qwen3): residual += x Wᵀ (fp32), then the rows of
  // rmsnorm(residual) · norm_weight, in the NormedRows form this backend wrote (see NormedRows). x [rows,
  // in_features]; residual [rows, out_features] F32; norm_weight [1, out_features] F32; values [rows,
  // out_features] of activation_dtype(); partials [rows, >= norm_partials(out_features)] F32 (may be empty
  // when that is 0); scratch [rows, out_features] of activation_dtype(), overwritten.
  virtual NormedRows linear_residual_norm(const Linear& weight, const Tensor& x, Tensor residual,
                                          const Tensor& norm_weight, float eps, NormKind kind, Tensor scratch,
                                          Tensor values, Tensor partials) = 0;
  // How many partial sums per row linear_residual_norm may write for a residual `features` wide; 0 when it
  // always writes normalized rows.
  virtual int64_t norm_partials(int64_t features) const = 0;
  // linear and gated_linear of a NormedRows input (either form).
  virtual void normed_linear(const Linear& weight, const NormedRows& x, Tensor out) = 0;
  virtual void normed_gated_linear(const Linear& gate_up, const NormedRows& x, Activation act, Tensor out) = 0;

  // On qkv [num_tokens, (num_attention_heads + 2 * num_key_value_heads) * head_dim] (q heads, then k, then v),
  // in place: per-head RMSNorm of q and k over head_dim when q_norm/k_norm are given ([1, head_dim] F32),
  // then RoPE at each token's position; then writes k and v of every token into `layer` of the cache at
  // its slot_mapping entry.
  virtual void qk_norm_rope_kv_write(Tensor qkv, int64_t num_attention_heads, const Tensor* q_norm,
                                     const Tensor* k_norm, float eps, NormKind kind, const RopeTable& rope,
                                     KvCache& cache, int64_t layer) = 0;

  // Causal attention of each token over its sequence's keys in the cache (GQA: query head h reads KV head
  // h / (num_attention_heads / num_key_value_heads)), softmax(scale · q·k) in fp32. With a sliding window
  // W, a token at position p sees keys at positions > p - W (W keys, itself included).
  // q [num_tokens, num_attention_heads * head_dim] (a view into qkv is fine); out same shape.
  virtual void attention(const Tensor& q, const KvCache& cache, int64_t layer, float scale,
                         std::optional<int64_t> sliding_window, Tensor out) = 0;

  // out = act(x Gᵀ) · (x Uᵀ) for a Linear from load_gate_up_linear; x [rows, in_features]; out [rows, n]
  // with n the gate's out_features.
  virtual void gated_linear(const Linear& gate_up, const Tensor& x, Activation act, Tensor out) = 0;

  // out = act(gate) · up with gate_up [rows, 2 * n] (gate in the first n columns); out [rows, n].
  virtual void gated_activation(const Tensor& gate_up, Activation act, Tensor out) = 0;

  // Qwen3-MoE routing: softmax over all experts in fp32, top-k, then (if renormalize) divide by the
  // top-k sum. router_logits [num_tokens, num_experts]; topk_ids [num_tokens, top_k] I32 (descending
  // weight); topk_weights [num_tokens, top_k] F32.
  virtual void moe_route(const Tensor& router_logits, int64_t top_k, bool renormalize, Tensor topk_ids,
                         Tensor topk_weights) = 0;
  // out[t] = Σ_k topk_weights[t, k] · down(act(gate) · up)(x[t]) with the expert topk_ids[t, k].
  // x, out [num_tokens, hidden_size].
  virtual void moe_experts(const Experts& experts, const Tensor& x, const Tensor& topk_ids,
                           const Tensor& topk_weights, Activation act, Tensor out) = 0;

  // out[i] = x[batch.logit_rows[i]]. x [num_tokens, n]; out [num_logits, n].
  virtual void gather_logit_rows(const Tensor& x, Tensor out) = 0;

  // Greedy sampling without reading logits back: ids[r] = the lowest index of row r's largest logit, or
  // kArgmaxNonFinite when the row holds NaN or +inf, kArgmaxNoFinite when every logit is -inf.
  // logits [rows, vocab_size] F32; ids [rows, 1] I32.
  static constexpr int32_t kArgmaxNonFinite = -1;
  static constexpr int32_t kArgmaxNoFinite = -2;
  virtual void argmax_rows(const Tensor& logits, Tensor ids) = 0;

  // Sampling without reading logits back: ids[r] = the token row r samples under rows[r] (vLLM v1's
  // chain: penalties, then greedy below kGreedyTemperature, else temperature -> min_p -> top_k -> top_p ->
  // the draw at rows[r].uniform over the kept tokens in token-id order), or kArgmaxNonFinite /
  // kArgmaxNoFinite as argmax_rows. logits [rows, vocab_size] F32, overwritten (the penalties are applied
  // in place); ids [rows, 1] I32. Token ids in the rows' token lists lie in [0, vocab_size).
  virtual void sample_rows(Tensor logits, std::span<const SamplingRow> rows, Tensor ids) = 0;

  // Structured output: logits[r][t] = -inf where bit t of row r's mask is clear (bit t % 32 of word
  // t / 32 of the row's (vocab_size + 31) / 32 words). Runs after the head and before argmax_rows /
  // sample_rows. logits [rows, vocab_size] F32, in place; bitmask [rows * words] host words, uploaded by
  // the backend.
  virtual void mask_logits(Tensor logits, std::span<const uint32_t> bitmask) = 0;

  // dst = src, element for element (same dtype and shape; strides may differ).
  virtual void copy(const Tensor& src, Tensor dst) = 0;

  // Log-probabilities of the raw logits (log_softmax, what vLLM reports by default): chosen[r] =
  // log p(ids[r]), and the top_n most likely tokens of each row, most likely first, ties to the lower id,
  // with theirs (-inf logits give -inf). A row the samplers refuse (NaN or +inf anywhere, or every logit
  // -inf; see RowFault) and a row whose id is outside [0, vocab_size) get NaN for chosen, and such a row
  // NaN and id -1 in its top entries (as do the entries past vocab_size when top_n exceeds it). logits [rows, vocab_size] F32; ids [rows, 1] I32; top_n in
  // [0, kMaxTopLogprobs]; chosen [rows, 1] F32; top_ids [rows, top_n] I32; top_logprobs [rows, top_n] F32.
  virtual void logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, Tensor chosen, Tensor top_ids,
                             Tensor top_logprobs) = 0;
};

}  // namespace adallm::backend
