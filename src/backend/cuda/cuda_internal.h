// What the CUDA backend's files share: device memory, its Linear, Experts and KV cache types, and the
// backend class (its ops are defined across cuda_*.cpp by concern).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/op_checks.h"
#include "backend/cuda/cuda_backend.h"
#include "backend/cuda/device.h"
#include "kernels/attention/paged_attention.h"
#include "kernels/linear/nvfp4_linear.h"
#include "kernels/sampling/sample.h"

namespace adallm::backend::cuda_backend {

// One cudaMalloc'd allocation, freed on destruction (after the device is idle: a kernel may still read it).
class DeviceMemory {
 public:
  DeviceMemory() = default;
  explicit DeviceMemory(size_t bytes);
  ~DeviceMemory();
  DeviceMemory(DeviceMemory&& other) noexcept : ptr_(other.ptr_), bytes_(other.bytes_) {
    other.ptr_ = nullptr;
    other.bytes_ = 0;
  }
  DeviceMemory& operator=(DeviceMemory&& other) noexcept;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;

  void* get() const { return ptr_; }
  size_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  size_t bytes_ = 0;
};

class CudaBuffer final : public Buffer {
 public:
  CudaBuffer(int64_t rows, int64_t cols, DType dtype);  // zero-initialised, contiguous

 private:
  DeviceMemory memory_;
};

class CudaLinear final : public Linear {
 public:
  enum class Kind { nvfp4, bf16 };
  // gate_up: two parts (gate, up) repacked so that the NVFP4 kernels can apply the activation themselves
  // (experts only; a model's dense MLP keeps the plain layout and calls gated_activation).
  CudaLinear(std::span<const LinearSource> parts, const kernels::Nvfp4LinearPlan& plan, bool gate_up, cudaStream_t stream);
  // A BF16 table read in place (tied lm_head); the table must outlive this Linear.
  explicit CudaLinear(const Tensor& table);

  Kind kind() const { return kind_; }
  const kernels::Nvfp4TiledShape& shape() const { return shape_; }
  const uint8_t* tiles() const { return tiles_.as<uint8_t>(); }
  const float* row_scale() const { return row_scale_.as<float>(); }
  const void* dense() const { return dense_ptr_; }
  const std::string& name() const { return name_; }

 private:
  Kind kind_ = Kind::bf16;
  std::string name_;
  kernels::Nvfp4TiledShape shape_;
  DeviceMemory tiles_, row_scale_, dense_;
  const void* dense_ptr_ = nullptr;  // dense_ or a borrowed table, [out_features, in_features] bf16
};

class CudaExperts final : public Experts {
 public:
  CudaExperts(std::span<const ExpertSource> experts, const kernels::Nvfp4LinearPlan& plan, cudaStream_t stream);
  int64_t hidden_size() const { return hidden_size_; }
  const CudaLinear& gate_up(int64_t e) const { return *gate_up_[static_cast<size_t>(e)]; }
  const CudaLinear& down(int64_t e) const { return *down_[static_cast<size_t>(e)]; }
  // NVFP4 experts only: device tables of every expert's tiles and row scales, gate_up's then down's, for
  // the grouped GEMV ([4][num_experts] pointers); null for BF16 experts.
  const void* const* device_tables() const { return tables_.as<const void*>(); }

 private:
  int64_t hidden_size_ = 0;
  std::vector<std::unique_ptr<CudaLinear>> gate_up_, down_;
  DeviceMemory tables_;
};

class CudaKvCache final : public KvCache {
 public:
  explicit CudaKvCache(const KvCacheSpec& spec);  // zero-initialised
  // Layer `layer`'s K or V: [num_pages * page_size, num_key_value_heads, head_dim] bf16 or e4m3 bytes.
  void* k(int64_t layer) const;
  void* v(int64_t layer) const;

 private:
  DeviceMemory memory_;
  int64_t layer_bytes_ = 0;  // K (or V) of one layer
};

// Device scratch that grows on demand (rarely: the first steps of each new size) and is reused.
static_assert(sizeof(TokenRun) == sizeof(kernels::AttentionQueryBlock) &&
              offsetof(TokenRun, first) == offsetof(kernels::AttentionQueryBlock, first) &&
              offsetof(TokenRun, count) == offsetof(kernels::AttentionQueryBlock, count));

// `epoch` (null for scratch no step graph reads) counts the reallocations: a graph recorded before one
// holds the old address.
class Scratch {
 public:
  explicit Scratch(int64_t* epoch) : epoch_(epoch) {}
  void* get(size_t bytes, cudaStream_t stream);
  // The same, zero-filled when (re)allocated: for state the kernels leave zero after use.
  void* get_zeroed(size_t bytes, cudaStream_t stream);

 private:
  DeviceMemory memory_;
  int64_t* epoch_ = nullptr;
};

// A recorded step (CUDA graph), with the backend's memory epoch it was recorded in.
class CudaGraph final : public Graph {
 public:
  CudaGraph(cudaGraphExec_t exec, int64_t epoch) : exec_(exec), epoch_(epoch) {}
  ~CudaGraph() override;
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;
  cudaGraphExec_t exec() const { return exec_; }
  int64_t epoch() const { return epoch_; }

 private:
  cudaGraphExec_t exec_ = nullptr;
  int64_t epoch_ = 0;
};

class CudaBackend final : public Backend {
 public:
  explicit CudaBackend(const CudaOptions& options);
  ~CudaBackend() override;
  std::string name() const override { return name_; }
  DType activation_dtype() const override { return DType::BF16; }
  std::optional<DeviceMemoryInfo> device_memory() const override;

  std::unique_ptr<Buffer> alloc(int64_t rows, int64_t cols, DType dtype) override;
  std::unique_ptr<Buffer> upload(const HostArray& src, DType dtype) override;
  std::unique_ptr<Linear> load_linear(std::span<const LinearSource> parts) override;
  std::unique_ptr<Linear> load_gate_up_linear(const LinearSource& gate, const LinearSource& up) override;
  std::unique_ptr<Experts> load_experts(std::span<const ExpertSource> experts) override;
  std::unique_ptr<Linear> linear_from_table(const Tensor& table) override;
  std::unique_ptr<KvCache> alloc_kv_cache(const KvCacheSpec& spec) override;
  void to_host(const Tensor& src, std::span<float> dst) override;

  void set_batch(const ForwardBatch& batch) override;
  bool supports_graphs() const override { return true; }
  void begin_graph() override;
  std::unique_ptr<Graph> end_graph() override;
  void abort_graph() override;
  void replay_graph(const Graph& graph) override;
  int64_t memory_epoch() const override { return memory_epoch_; }
  void embed(const Tensor& table, int64_t first_id, int64_t vocab_size, float scale, Tensor out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, NormKind kind, Tensor out) override;
  void add_rms_norm(const Tensor& x, Tensor residual, const Tensor& weight, float eps, NormKind kind,
                    Tensor out) override;
  void linear(const Linear& weight, const Tensor& x, Tensor out) override;
  NormedRows linear_residual_norm(const Linear& weight, const Tensor& x, Tensor residual, const Tensor& norm_weight,
                                  float eps, NormKind kind, Tensor scratch, Tensor values, Tensor partials) override;
  int64_t norm_partials(int64_t features) const override;
  void normed_linear(const Linear& weight, const NormedRows& x, Tensor out) override;
  void normed_gated_linear(const Linear& gate_up, const NormedRows& x, Activation act, Tensor out) override;
  void qk_norm_rope_kv_write(Tensor qkv, int64_t num_attention_heads, const Tensor* q_norm, const Tensor* k_norm,
                             float eps, NormKind kind, const RopeTable& rope, KvCache& cache,
                             int64_t layer) override;
  void attention(const Tensor& q, const KvCache& cache, int64_t layer, float scale,
                 std::optional<int64_t> sliding_window, Tensor out) override;
  void gated_linear(const Linear& gate_up, const Tensor& x, Activation act, Tensor out) override;
  void gated_activation(const Tensor& gate_up, Activation act, Tensor out) override;
  void moe_route(const Tensor& router_logits, int64_t top_k, bool renormalize, Tensor topk_ids,
                 Tensor topk_weights) override;
  void moe_experts(const Experts& experts, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                   Activation act, Tensor out) override;
  void gather_logit_rows(const Tensor& x, Tensor out) override;
  void argmax_rows(const Tensor& logits, Tensor ids) override;
  void sample_rows(Tensor logits, std::span<const SamplingRow> rows, Tensor ids) override;
  void mask_logits(Tensor logits, std::span<const uint32_t> bitmask) override;
  void copy(const Tensor& src, Tensor dst) override;
  void logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, Tensor chosen, Tensor top_ids,
                     Tensor top_logprobs) override;

  // Waits for the stream: the tests' and benchmarks' timing points.
  void synchronize();
  void set_profiling(bool on);
  std::vector<OpTime> take_profile();

 private:
  // The device copies of the current batch's arrays.
  struct DeviceBatch {
    int32_t* token_ids = nullptr;
    int32_t* positions = nullptr;
    int32_t* seq_index = nullptr;
    int64_t* slot_mapping = nullptr;
    int32_t* page_tables = nullptr;
    int32_t* logit_rows = nullptr;
    // Attention's blocks, when some sequence brings several tokens (else decode_blocks is null and
    // every token decodes): the tokens alone of their sequence (one each), and the other sequences'
    // tokens in runs of up to 4, 8, 16, 32, 64 and 128 (prefill flash attention).
    static constexpr int kPrefillBlockSizes = 6;
    const kernels::AttentionQueryBlock* decode_blocks = nullptr;
    int64_t num_decode_blocks = 0;
    const kernels::AttentionQueryBlock* prefill_blocks[kPrefillBlockSizes] = {};
    int64_t num_prefill_blocks[kPrefillBlockSizes] = {};
  };
  // Brackets one op with CUDA events while profiling is on.
  class OpScope {
   public:
    OpScope(CudaBackend& backend, std::string op);
    ~OpScope();
    OpScope(const OpScope&) = delete;
    OpScope& operator=(const OpScope&) = delete;

   private:
    CudaBackend* backend_ = nullptr;
    size_t index_ = 0;
    std::chrono::steady_clock::time_point start_;
  };
  cudaEvent_t profile_event();

  const ForwardBatch& batch(const char* op) const;
  const CudaKvCache& checked_cache(const KvCache& cache, int64_t layer, const char* op) const;
  // NVFP4 experts at decode sizes: the (token, k) pairs sorted by expert on the device, two grouped GEMV
  // launches over the active experts, then the combine; no routing comes back to the host.
  static constexpr int64_t kGroupedMoePairs = 1024;
  void grouped_moe_experts(const CudaExperts& ex, const Tensor& x, const Tensor& topk_ids, const Tensor& topk_weights,
                           Activation act, int64_t top_k, Tensor out);
  // out = x Wᵀ for one loaded Linear over `x` (bf16), into `out` (bf16 or f32), with the fused activation
  // for a gate_up NVFP4 Linear; with `norm` (x being its values), the NVFP4 GEMV applies its row scales.
  void run_linear(const CudaLinear& w, const Tensor& x, Tensor out, kernels::Nvfp4Activation act,
                  const NormedRows* norm = nullptr);
  kernels::Nvfp4LinearParams nvfp4_params(const CudaLinear& w, const Tensor& x, Tensor out,
                                          kernels::Nvfp4Activation act) const;
  // linear_residual_norm folds the norm into the GEMV up to this many tokens. Above, the consumer GEMV's
  // scales cost each block a round trip per 8 tokens at its start, waves of blocks over: measured on the
  // H100 at batch 32, the folded step was ~15 % slower than separate norm kernels (docs/performance.md).
  static constexpr int64_t kFoldNormTokens = 8;
  // Whether w's kernel for x's rows applies a NormedRows' row scales itself (the NVFP4 GEMV), and the rows
  // made plain in a workspace for one that does not.
  bool applies_norm(const CudaLinear& w, const NormedRows& x) const;
  Tensor normalized(const NormedRows& x);
  // inv_freq on the device for a RoPE table (cached by content: a model has at most two).
  const float* device_inv_freq(const RopeTable& rope);

  cuda::DeviceInfo info_;
  std::string name_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  kernels::Nvfp4LinearPlan plan_;
  bool fold_norms_ = true;
  int decode_attention_warps_ = 0;  // CudaOptions::decode_attention_warps
  const ForwardBatch* batch_ = nullptr;
  bool recording_ = false;  // between begin_graph and end_graph
  // Bumped whenever device memory a step graph may have recorded moves (batch arrays, workspaces).
  int64_t memory_epoch_ = 0;
  DeviceBatch device_batch_;
  DeviceMemory batch_memory_, cublas_workspace_;
  std::vector<std::byte> batch_staging_;
  // Uploaded as the kernels' AttentionQueryBlock lists (the same layout).
  std::vector<TokenRun> decode_blocks_, prefill_blocks_[DeviceBatch::kPrefillBlockSizes];
  Scratch linear_workspace_{&memory_epoch_}, attention_workspace_{&memory_epoch_}, attention_counters_{&memory_epoch_},
      moe_workspace_{&memory_epoch_}, gate_up_workspace_{&memory_epoch_}, normalize_workspace_{&memory_epoch_};
  // sample_rows: the rows' parameters and penalty tokens (uploaded each call), and the penalty counts
  // ([rows, vocab_size] int32, zero between calls). Sampling runs after a step's graph, never in one.
  Scratch sampling_upload_{nullptr}, sampling_counts_{nullptr};
  Scratch mask_upload_{nullptr};  // mask_logits's bitmask, uploaded each call (after the step's graph)
  std::vector<kernels::SampleRowParams> sampling_params_;
  std::vector<std::byte> sampling_staging_;
  std::vector<std::pair<std::vector<float>, DeviceMemory>> inv_freq_;
  // Profiling: events in use this round, (op, start event index, end event index) per op, and the pool.
  bool profiling_ = false;
  std::vector<cudaEvent_t> events_;
  size_t events_used_ = 0;
  struct Span {
    std::string op;
    size_t start = 0, end = 0;
    double host_ms = 0.0;
  };
  std::vector<Span> spans_;
};

}  // namespace adallm::backend::cuda_backend
