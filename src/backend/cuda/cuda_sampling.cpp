// Backend::sample_rows on the GPU: the rows' knobs and penalty token lists go up in one copy, then the
// penalty kernel (only when a row has penalties) and the sampling kernel run on the logits in place.
// The chain and its reference are in backend/sampling.h; the kernels in kernels/sampling/sample.h.
#include <cstring>
#include <vector>

#include "backend/cuda/cuda_internal.h"
#include "backend/op_checks.h"
#include "kernels/cuda_check.h"
#include "kernels/sampling/logprobs.h"
#include "kernels/sampling/mask.h"
#include "kernels/sampling/sample.h"

namespace adallm::backend::cuda_backend {

void CudaBackend::sample_rows(Tensor logits, std::span<const SamplingRow> rows, Tensor ids) {
  check_sample_rows(logits, rows, ids);
  const OpScope scope(*this, "sample_rows");
  if (rows.empty()) return;
  std::vector<kernels::SampleRowParams>& params = sampling_params_;  // reused: a step allocates nothing once warm
  params.assign(rows.size(), kernels::SampleRowParams{});
  int64_t token_count = 0;
  bool penalties = false;
  for (size_t r = 0; r < rows.size(); ++r) {
    const SamplingRow& row = rows[r];
    kernels::SampleRowParams& p = params[r];
    p.uniform = row.uniform;
    p.temperature = row.temperature;
    p.top_k = row.top_k;
    p.top_p = row.top_p;
    p.min_p = row.min_p;
    p.repetition_penalty = row.repetition_penalty;
    p.presence_penalty = row.presence_penalty;
    p.frequency_penalty = row.frequency_penalty;
    if (!row.penalized()) continue;
    penalties = true;
    // Prompt tokens only matter to the repetition penalty.
    p.prompt_count = row.repetition_penalty != 1.0f ? static_cast<int32_t>(row.prompt_tokens.size()) : 0;
    p.output_count = static_cast<int32_t>(row.output_tokens.size());
    p.tokens_begin = token_count;
    token_count += p.prompt_count + p.output_count;
  }
  // One upload: the parameters, then the token lists.
  const size_t params_bytes = params.size() * sizeof(kernels::SampleRowParams);
  const size_t bytes = params_bytes + static_cast<size_t>(token_count) * sizeof(int32_t);
  sampling_staging_.resize(bytes);
  std::memcpy(sampling_staging_.data(), params.data(), params_bytes);
  auto* tokens = reinterpret_cast<int32_t*>(sampling_staging_.data() + params_bytes);
  for (size_t r = 0; r < rows.size(); ++r) {
    const kernels::SampleRowParams& p = params[r];
    std::memcpy(tokens + p.tokens_begin, rows[r].prompt_tokens.data(), static_cast<size_t>(p.prompt_count) * sizeof(int32_t));
    std::memcpy(tokens + p.tokens_begin + p.prompt_count, rows[r].output_tokens.data(),
                static_cast<size_t>(p.output_count) * sizeof(int32_t));
  }
  auto* device = static_cast<std::byte*>(sampling_upload_.get(bytes, stream_));
  ADALLM_CUDA_CHECK(cudaMemcpyAsync(device, sampling_staging_.data(), bytes, cudaMemcpyHostToDevice, stream_));
  const auto* d_params = reinterpret_cast<const kernels::SampleRowParams*>(device);
  const int64_t vocab = logits.cols;
  if (penalties) {
    auto* counts = static_cast<int32_t*>(
        sampling_counts_.get_zeroed(static_cast<size_t>(logits.rows * vocab) * sizeof(int32_t), stream_));
    kernels::apply_penalties(logits.ptr<float>(), logits.stride, logits.rows, vocab, d_params,
                             reinterpret_cast<const int32_t*>(device + params_bytes), counts, stream_);
  }
  kernels::sample_rows(logits.ptr<float>(), logits.stride, logits.rows, vocab, d_params, kGreedyTemperature,
                       ids.ptr<int32_t>(), kArgmaxNonFinite, kArgmaxNoFinite, stream_);
}

void CudaBackend::copy(const Tensor& src, Tensor dst) {
  check_copy(src, dst);
  const OpScope scope(*this, "copy");
  if (src.numel() == 0) return;
  const auto elem = static_cast<size_t>(dtype_size(src.dtype));
  ADALLM_CUDA_CHECK(cudaMemcpy2DAsync(dst.data, static_cast<size_t>(dst.stride) * elem, src.data,
                                      static_cast<size_t>(src.stride) * elem, static_cast<size_t>(src.cols) * elem,
                                      static_cast<size_t>(src.rows), cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::mask_logits(Tensor logits, std::span<const uint32_t> bitmask) {
  check_mask_logits(logits, bitmask);
  const OpScope scope(*this, "mask_logits");
  if (logits.rows == 0) return;
  // From pageable memory the copy is staged before cudaMemcpyAsync returns: the caller may reuse bitmask.
  const size_t bytes = bitmask.size() * sizeof(uint32_t);
  auto* device = static_cast<uint32_t*>(mask_upload_.get(bytes, stream_));
  ADALLM_CUDA_CHECK(cudaMemcpyAsync(device, bitmask.data(), bytes, cudaMemcpyHostToDevice, stream_));
  kernels::mask_logits(logits.ptr<float>(), logits.stride, logits.rows, logits.cols, device, stream_);
}

void CudaBackend::logprobs_rows(const Tensor& logits, const Tensor& ids, int64_t top_n, Tensor chosen, Tensor top_ids,
                                Tensor top_logprobs) {
  check_logprobs_rows(logits, ids, top_n, chosen, top_ids, top_logprobs);
  static_assert(kMaxTopLogprobs == kernels::kMaxLogprobsTopN);
  const OpScope scope(*this, "logprobs_rows");
  if ((ids.rows > 1 && ids.stride != 1) || (chosen.rows > 1 && chosen.stride != 1)) {
    throw Error("logprobs_rows: ids " + ids.describe() + " and chosen " + chosen.describe() + " must be contiguous");
  }
  if (top_ids.stride != top_logprobs.stride) {
    throw Error("logprobs_rows: top_ids " + top_ids.describe() + " and top_logprobs " + top_logprobs.describe() +
                " need one row stride");
  }
  kernels::logprobs_rows(logits.ptr<float>(), logits.stride, logits.rows, logits.cols, ids.ptr<int32_t>(),
                         static_cast<int>(top_n), chosen.ptr<float>(), top_ids.ptr<int32_t>(), top_logprobs.ptr<float>(),
                         std::max<int64_t>(top_ids.stride, top_n), stream_);
}

}  // namespace adallm::backend::cuda_backend
