// Qwen3-MoE on the GPU: routing in one kernel, then the experts. Decode-sized steps (up to
// kGroupedMoePairs (token, k) pairs) with NVFP4 experts sort the pairs by expert on the device and run two
// grouped GEMV launches, each block taking one active expert's rows (an expert is read once for all of its
// tokens), then a weighted combine: nothing comes back to the host. Larger steps (prefill) and BF16 experts read the routing back (one small copy and a stream
// synchronization per MoE layer), sort the pairs by expert there, and run each used expert's linears over
// its rows (GEMM-sized) with the activation fused into gate/up.
#include <cuda_bf16.h>

#include <algorithm>
#include <string>
#include <vector>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "kernels/activation/gated_activation.h"
#include "kernels/cuda_check.h"
#include "kernels/embedding/embedding.h"
#include "kernels/linear/nvfp4_gemv.h"
#include "kernels/moe/moe.h"

namespace adallm::backend::cuda_backend {

CudaExperts::CudaExperts(std::span<const ExpertSource> experts, const kernels::Nvfp4LinearPlan& plan,
                         cudaStream_t stream) {
  check_experts(experts, hidden_size_, moe_intermediate_size_);
  for (const ExpertSource& e : experts) {
    const LinearSource fused[] = {e.gate_proj, e.up_proj};
    // NVFP4 gate/up in the gate_up layout: the kernels apply the activation and write [rows, inter].
    gate_up_.push_back(std::make_unique<CudaLinear>(fused, plan, e.gate_proj.nvfp4.has_value(), stream));
    down_.push_back(std::make_unique<CudaLinear>(std::span<const LinearSource>(&e.down_proj, 1), plan, false, stream));
  }
  num_experts_ = static_cast<int64_t>(experts.size());
  const bool nvfp4 = std::all_of(gate_up_.begin(), gate_up_.end(), [](const auto& l) { return l->kind() == CudaLinear::Kind::nvfp4; }) &&
                     std::all_of(down_.begin(), down_.end(), [](const auto& l) { return l->kind() == CudaLinear::Kind::nvfp4; });
  if (nvfp4) {
    std::vector<const void*> tables;
    for (const auto& l : gate_up_) tables.push_back(l->tiles());
    for (const auto& l : gate_up_) tables.push_back(l->row_scale());
    for (const auto& l : down_) tables.push_back(l->tiles());
    for (const auto& l : down_) tables.push_back(l->row_scale());
    tables_ = DeviceMemory(tables.size() * sizeof(const void*));
    ADALLM_CUDA_CHECK(cudaMemcpy(tables_.get(), tables.data(), tables_.bytes(), cudaMemcpyHostToDevice));
  }
}

std::unique_ptr<Experts> CudaBackend::load_experts(std::span<const ExpertSource> experts) {
  return std::make_unique<CudaExperts>(experts, plan_, stream_);
}

void CudaBackend::moe_route(const Tensor& router_logits, int64_t top_k, bool renormalize, Tensor topk_ids,
                            Tensor topk_weights) {
  check_moe_route(router_logits, top_k, topk_ids, topk_weights);
  const int64_t num_experts = router_logits.cols;
  if (!topk_ids.contiguous() || !topk_weights.contiguous()) throw Error("moe_route: topk_ids and topk_weights must be contiguous");
  const OpScope scope(*this, "moe_route");
  kernels::moe_route(router_logits.ptr<float>(), router_logits.stride, router_logits.rows, static_cast<int>(num_experts),
                     static_cast<int>(top_k), renormalize, topk_ids.ptr<int32_t>(), topk_weights.ptr<float>(), stream_);
}

void CudaBackend::grouped_moe_experts(const CudaExperts& ex, const Tensor& x, const Tensor& topk_ids,
                                      const Tensor& topk_weights, Activation act, int64_t top_k, Tensor out) {
  const int64_t hidden = ex.hidden_size(), inter = ex.moe_intermediate_size(), pairs = x.rows * top_k;
  const int64_t n = ex.num_experts();
  const int slots = static_cast<int>(std::min(pairs, n));
  // Workspace: the sorted routing (offsets [n + 1], active [slots], row_token and pair_row [pairs], int32),
  // h [pairs, inter] bf16 and y [pairs, hidden] f32, both in sorted-row order.
  const auto align = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };
  const int64_t index_bytes = align((n + 1 + slots + 2 * pairs) * 4), h_bytes = align(pairs * inter * 2);
  auto* base = static_cast<std::byte*>(moe_workspace_.get(static_cast<size_t>(index_bytes + h_bytes + pairs * hidden * 4), stream_));
  auto* index = reinterpret_cast<int32_t*>(base);
  kernels::MoeSortedPairs sorted;
  sorted.offsets = index;
  sorted.active = index + n + 1;
  sorted.row_token = sorted.active + slots;
  sorted.pair_row = sorted.row_token + pairs;
  sorted.slots = slots;
  auto* h = reinterpret_cast<__nv_bfloat16*>(base + index_bytes);
  auto* y = reinterpret_cast<float*>(base + index_bytes + h_bytes);
  kernels::moe_sort_pairs(topk_ids.ptr<int32_t>(), pairs, static_cast<int>(top_k), static_cast<int>(n), sorted, stream_);

  const auto* const* tables = ex.device_tables();
  kernels::Nvfp4ExpertGemv g;
  g.active = sorted.active;
  g.offsets = sorted.offsets;
  g.slots = slots;
  g.num_experts = static_cast<int>(n);

  // Every expert has expert 0's shapes; its weights stand in for the launch checks.
  kernels::Nvfp4LinearParams p;  // gate_up: each sorted row's token row of x -> act(gate) · up into h
  p.shape = ex.gate_up(0).shape();
  p.tiles = ex.gate_up(0).tiles();
  p.row_scale = ex.gate_up(0).row_scale();
  p.x = x.ptr<__nv_bfloat16>();
  p.x_stride = x.stride;
  p.out_bf16 = h;
  p.out_stride = inter;
  p.activation = act == Activation::silu ? kernels::Nvfp4Activation::silu : kernels::Nvfp4Activation::gelu_tanh;
  g.tiles = reinterpret_cast<const uint8_t* const*>(tables);
  g.row_scale = reinterpret_cast<const float* const*>(tables + n);
  g.x_rows = sorted.row_token;
  kernels::nvfp4_gemv_experts(p, g, stream_);

  p = kernels::Nvfp4LinearParams{};  // down: sorted row r of h -> row r of y
  p.shape = ex.down(0).shape();
  p.tiles = ex.down(0).tiles();
  p.row_scale = ex.down(0).row_scale();
  p.x = h;
  p.x_stride = inter;
  p.out = y;
  p.out_stride = hidden;
  g.tiles = reinterpret_cast<const uint8_t* const*>(tables + 2 * n);
  g.row_scale = reinterpret_cast<const float* const*>(tables + 3 * n);
  g.x_rows = nullptr;
  kernels::nvfp4_gemv_experts(p, g, stream_);
  kernels::moe_combine(y, sorted.pair_row, topk_weights.ptr<float>(), x.rows, static_cast<int>(top_k), hidden,
                       out.ptr<__nv_bfloat16>(), out.stride, stream_);
}

void CudaBackend::moe_experts(const Experts& experts, const Tensor& x, const Tensor& topk_ids,
                              const Tensor& topk_weights, Activation act, Tensor out) {
  const auto* ex = dynamic_cast<const CudaExperts*>(&experts);
  if (ex == nullptr) throw Error("moe_experts: the experts were not loaded by the CUDA backend");
  const int64_t hidden = ex->hidden_size();
  const int64_t inter = ex->moe_intermediate_size();
  const int64_t top_k = check_moe_experts(x, topk_ids, topk_weights, out, hidden, DType::BF16);
  if (!topk_ids.contiguous() || !topk_weights.contiguous()) throw Error("moe_experts: topk_ids and topk_weights must be contiguous");
  const int64_t num_tokens = x.rows;
  if (num_tokens == 0) return;
  const int64_t pairs = num_tokens * top_k;
  const OpScope scope(*this, "moe_experts");
  if (ex->device_tables() != nullptr && pairs <= kGroupedMoePairs) {
    grouped_moe_experts(*ex, x, topk_ids, topk_weights, act, top_k, out);
    return;
  }

  std::vector<int32_t> ids(static_cast<size_t>(pairs));
  ADALLM_CUDA_CHECK(cudaMemcpyAsync(ids.data(), topk_ids.data, ids.size() * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
  ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  // Pairs sorted by expert, in token order within an expert: sorted_tokens[i] is the token of sorted pair
  // i, position[t * top_k + k] where pair (t, k) landed.
  std::vector<int64_t> offsets(static_cast<size_t>(ex->num_experts() + 1), 0);
  for (int64_t i = 0; i < pairs; ++i) {
    const int32_t e = ids[static_cast<size_t>(i)];
    if (e < 0 || e >= ex->num_experts()) {
      throw Error("moe_experts: token " + std::to_string(i / top_k) + " is routed to expert " + std::to_string(e) +
                  ", outside the layer's " + std::to_string(ex->num_experts()) + " experts");
    }
    ++offsets[static_cast<size_t>(e) + 1];
  }
  for (size_t e = 1; e < offsets.size(); ++e) offsets[e] += offsets[e - 1];
  std::vector<int32_t> index(static_cast<size_t>(2 * pairs));  // sorted_tokens, then position
  std::vector<int64_t> fill(offsets.begin(), offsets.end() - 1);
  for (int64_t i = 0; i < pairs; ++i) {
    const int64_t slot = fill[static_cast<size_t>(ids[static_cast<size_t>(i)])]++;
    index[static_cast<size_t>(slot)] = static_cast<int32_t>(i / top_k);
    index[static_cast<size_t>(pairs + i)] = static_cast<int32_t>(slot);
  }

  // Workspace: index arrays, xs [pairs, hidden] bf16, h [pairs, inter] bf16, y [pairs, hidden] f32, and for
  // BF16 experts gate_up [pairs, 2 * inter] bf16.
  const auto align = [](int64_t bytes) { return (bytes + 255) / 256 * 256; };
  const int64_t index_bytes = align(2 * pairs * 4), xs_bytes = align(pairs * hidden * 2), h_bytes = align(pairs * inter * 2);
  const int64_t y_bytes = align(pairs * hidden * 4), gu_bytes = align(pairs * 2 * inter * 2);
  auto* base = static_cast<std::byte*>(
      moe_workspace_.get(static_cast<size_t>(index_bytes + xs_bytes + h_bytes + y_bytes + gu_bytes), stream_));
  auto* d_index = reinterpret_cast<int32_t*>(base);
  auto* xs = reinterpret_cast<__nv_bfloat16*>(base + index_bytes);
  auto* h = reinterpret_cast<__nv_bfloat16*>(base + index_bytes + xs_bytes);
  auto* y = reinterpret_cast<float*>(base + index_bytes + xs_bytes + h_bytes);
  auto* gu = reinterpret_cast<__nv_bfloat16*>(base + index_bytes + xs_bytes + h_bytes + y_bytes);
  // The host vector is read by the copy before this function returns (pageable memory is staged at once).
  ADALLM_CUDA_CHECK(cudaMemcpyAsync(d_index, index.data(), index.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream_));
  kernels::gather_rows(x.data, x.stride, d_index, pairs, hidden, 2, xs, hidden, stream_);

  const Tensor xs_all{xs, DType::BF16, pairs, hidden, hidden};
  const Tensor h_all{h, DType::BF16, pairs, inter, inter};
  const Tensor y_all{y, DType::F32, pairs, hidden, hidden};
  const Tensor gu_all{gu, DType::BF16, pairs, 2 * inter, 2 * inter};
  const auto nvfp4_act = act == Activation::silu ? kernels::Nvfp4Activation::silu : kernels::Nvfp4Activation::gelu_tanh;
  for (int64_t e = 0; e < ex->num_experts(); ++e) {
    const int64_t first = offsets[static_cast<size_t>(e)], n = offsets[static_cast<size_t>(e) + 1] - first;
    if (n == 0) continue;
    const CudaLinear& gate_up = ex->gate_up(e);
    const Tensor h_rows = h_all.row_slice(first, n);
    if (gate_up.kind() == CudaLinear::Kind::nvfp4) {
      run_linear(gate_up, xs_all.row_slice(first, n), h_rows, nvfp4_act);
    } else {
      const Tensor gu_rows = gu_all.row_slice(first, n);
      run_linear(gate_up, xs_all.row_slice(first, n), gu_rows, kernels::Nvfp4Activation::none);
      gated_activation(gu_rows, act, h_rows);
    }
    run_linear(ex->down(e), h_rows, y_all.row_slice(first, n), kernels::Nvfp4Activation::none);
  }
  kernels::moe_combine(y, d_index + pairs, topk_weights.ptr<float>(), num_tokens, static_cast<int>(top_k), hidden,
                       out.ptr<__nv_bfloat16>(), out.stride, stream_);
}

}  // namespace adallm::backend::cuda_backend
