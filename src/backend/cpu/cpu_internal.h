// What the CPU backend's files share: its buffer, Linear, Experts and KV cache types, the backend class
// (its ops are defined across cpu_*.cpp by concern) and the tensor checks every op starts with.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/op_checks.h"
#include "backend/cpu/cpu_backend.h"

namespace adallm::backend::cpu {

class CpuBuffer final : public Buffer {
 public:
  CpuBuffer(int64_t rows, int64_t cols, DType dtype);  // zero-initialised, contiguous

 private:
  std::unique_ptr<std::byte[]> storage_;
};

// One stored Linear inside a fused one: rows [first_row, first_row + rows) of the output.
struct LinearPart {
  enum class Kind { nvfp4, bf16, f32 };
  std::string name;
  Kind kind = Kind::f32;
  int64_t first_row = 0;
  int64_t rows = 0;
  std::vector<uint8_t> packed;  // nvfp4: [rows, in_features / 2]
  std::vector<uint8_t> scales;  // nvfp4: [rows, in_features / 16] e4m3
  float weight_scale_2 = 1.0f;
  std::vector<uint16_t> bf16;   // [rows, in_features] raw bf16
  std::vector<float> f32;       // [rows, in_features] (F16 and F32 sources)
  // Where the dense rows are read from: the vectors above, or a table the part does not own.
  const uint16_t* bf16_data = nullptr;
  const float* f32_data = nullptr;
};

class CpuLinear final : public Linear {
 public:
  explicit CpuLinear(std::span<const LinearSource> parts);
  // Reads a contiguous BF16 or F32 table in place (the table must outlive this Linear).
  explicit CpuLinear(const Tensor& table);
  // Output row `row` of W to fp32 (in_features values), bit-identical to quant::nvfp4_dequantize_row
  // for NVFP4 parts and to the exact upcast for dense ones.
  void decode_row(int64_t row, float* out) const;
  const std::vector<LinearPart>& parts() const { return parts_; }
  // W4A8 emulation (CpuOptions::fp8_activations): set on NVFP4 Linears only.
  void quantize_activations(bool on) { fp8_activations_ = on && nvfp4(); }
  bool fp8_activations() const { return fp8_activations_; }

 private:
  std::vector<LinearPart> parts_;
  bool fp8_activations_ = false;
};

// out[r, :] = x[r, :] W^T for r < rows; x and out are fp32 with row strides in elements; no aliasing.
void linear_rows(const CpuLinear& w, const float* x, int64_t x_stride, int64_t rows, float* out,
                 int64_t out_stride);
// act(gate) * up for one row of n values.
void gated_activation_row(const float* gate, const float* up, int64_t n, Activation act, float* out);

class CpuExperts final : public Experts {
 public:
  CpuExperts(std::span<const ExpertSource> experts, bool fp8_activations);
  int64_t hidden_size() const { return hidden_size_; }
  const CpuLinear& gate_up(int64_t e) const { return *gate_up_[static_cast<size_t>(e)]; }
  const CpuLinear& down(int64_t e) const { return *down_[static_cast<size_t>(e)]; }

 private:
  int64_t hidden_size_ = 0;
  std::vector<std::unique_ptr<CpuLinear>> gate_up_, down_;
};

class CpuKvCache final : public KvCache {
 public:
  explicit CpuKvCache(const KvCacheSpec& spec);
  // Layer `layer`'s K or V: [num_pages, page_size, num_key_value_heads, head_dim] of uint16 bf16 or
  // uint8 e4m3, as raw bytes.
  std::byte* k(int64_t layer) { return k_[static_cast<size_t>(layer)].get(); }
  std::byte* v(int64_t layer) { return v_[static_cast<size_t>(layer)].get(); }
  const std::byte* k(int64_t layer) const { return k_[static_cast<size_t>(layer)].get(); }
  const std::byte* v(int64_t layer) const { return v_[static_cast<size_t>(layer)].get(); }

 private:
  std::vector<std::unique_ptr<std::byte[]>> k_, v_;
};


class CpuBackend final : public Backend {
 public:
  explicit CpuBackend(CpuOptions options) : options_(options) {}
  std::string name() const override { return "cpu"; }
  DType activation_dtype() const override { return DType::F32; }

  std::unique_ptr<Buffer> alloc(int64_t rows, int64_t cols, DType dtype) override;
  std::unique_ptr<Buffer> upload(const HostArray& src, DType dtype) override;
  std::unique_ptr<Linear> load_linear(std::span<const LinearSource> parts) override;
  std::unique_ptr<Linear> load_gate_up_linear(const LinearSource& gate, const LinearSource& up) override;
  std::unique_ptr<Experts> load_experts(std::span<const ExpertSource> experts) override;
  std::unique_ptr<Linear> linear_from_table(const Tensor& table) override;
  std::unique_ptr<KvCache> alloc_kv_cache(const KvCacheSpec& spec) override;
  void to_host(const Tensor& src, std::span<float> dst) override;

  void set_batch(const ForwardBatch& batch) override { batch_ = &batch; }
  void embed(const Tensor& table, int64_t first_id, int64_t vocab_size, float scale, Tensor out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, NormKind kind, Tensor out) override;
  void add_rms_norm(const Tensor& x, Tensor residual, const Tensor& weight, float eps, NormKind kind,
                    Tensor out) override;
  void linear(const Linear& weight, const Tensor& x, Tensor out) override;
  NormedRows linear_residual_norm(const Linear& weight, const Tensor& x, Tensor residual, const Tensor& norm_weight,
                                  float eps, NormKind kind, Tensor scratch, Tensor values, Tensor partials) override;
  int64_t norm_partials(int64_t) const override { return 0; }
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
  void mask_logits(Tensor logits, std::span<const uint32_t> bitmask) override;
  void copy(const Tensor& src, Tensor dst) override;
  void logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, Tensor chosen, Tensor top_ids,
                     Tensor top_logprobs) override;
  void sample_rows(Tensor logits, std::span<const SamplingRow> rows, Tensor ids) override;

 private:
  const ForwardBatch& batch(const char* op) const;
  // The batch, validated against the cache, and the cache as ours; checks the layer index.
  const CpuKvCache& checked_cache(const KvCache& cache, int64_t layer, const char* op) const;

  const ForwardBatch* batch_ = nullptr;
  CpuOptions options_;
  RowSampler sampler_;  // sample_rows's scratch, kept warm across steps
  std::vector<int32_t> logprob_order_;  // logprobs_rows's scratch
};

}  // namespace adallm::backend::cpu
