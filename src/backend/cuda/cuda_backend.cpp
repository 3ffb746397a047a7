// The CUDA backend's memory (buffers, uploads, read-back, scratch), the batch it works on, and its row
// ops: embedding lookup, the RMSNorms, the gated activation and logit-row gathering. Linear layers, the
// attention path and MoE live in cuda_linear.cpp, cuda_attention.cpp and cuda_moe.cpp.
#include <cuda_bf16.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "backend/cuda/cuda_internal.h"
#include "core/error.h"
#include "core/float_codecs.h"
#include "core/log.h"
#include "kernels/activation/gated_activation.h"
#include "kernels/cuda_check.h"
#include "kernels/embedding/embedding.h"
#include "kernels/norm/rms_norm.h"
#include "kernels/sampling/argmax.h"

namespace adallm::backend {

std::unique_ptr<Backend> make_cuda_backend(const CudaOptions& options) {
  return std::make_unique<cuda_backend::CudaBackend>(options);
}

namespace cuda_backend {

DeviceMemory::DeviceMemory(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) return;
  const cudaError_t status = cudaMalloc(&ptr_, bytes);
  if (status != cudaSuccess) {
    cudaGetLastError();  // an allocation failure is not sticky: clear it so that later checks do not see it
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    throw Error("CUDA backend: cannot allocate " + std::to_string(bytes >> 20) + " MiB of device memory (" +
                std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total >> 20) +
                "): " + cudaGetErrorString(status))
        .hint("use a smaller --max-model-len, --max-num-seqs or KV cache");
  }
}

DeviceMemory::~DeviceMemory() {
  if (ptr_ != nullptr) cudaFree(ptr_);  // cudaFree waits for work using it to finish
}

DeviceMemory& DeviceMemory::operator=(DeviceMemory&& other) noexcept {
  if (this != &other) {
    if (ptr_ != nullptr) cudaFree(ptr_);
    ptr_ = other.ptr_;
    bytes_ = other.bytes_;
    other.ptr_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void* Scratch::get(size_t bytes, cudaStream_t stream) {
  if (bytes > memory_.bytes()) {
    ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream));  // the old scratch may still be in use
    memory_ = DeviceMemory();
    memory_ = DeviceMemory(bytes + bytes / 4);  // some headroom so that slowly growing sizes settle
    if (epoch_ != nullptr) ++*epoch_;
  }
  return memory_.get();
}

void* Scratch::get_zeroed(size_t bytes, cudaStream_t stream) {
  if (bytes > memory_.bytes()) {
    get(bytes, stream);
    ADALLM_CUDA_CHECK(cudaMemsetAsync(memory_.get(), 0, memory_.bytes(), stream));
  }
  return memory_.get();
}

CudaBuffer::CudaBuffer(int64_t rows, int64_t cols, DType dtype)
    : memory_(static_cast<size_t>(rows * cols) * dtype_size(dtype)) {
  if (memory_.bytes() > 0) ADALLM_CUDA_CHECK(cudaMemset(memory_.get(), 0, memory_.bytes()));
  view_ = Tensor{memory_.get(), dtype, rows, cols, cols};
}

CudaBackend::CudaBackend(const CudaOptions& options) {
  info_ = cuda::check_device(options.device);
  ADALLM_CUDA_CHECK(cudaSetDevice(options.device));
  // A blocking stream: it orders itself after the legacy default stream's work, where the load path's
  // cudaMemcpy and cudaMemset run. A pageable host-to-device cudaMemcpy may return before its DMA lands, so
  // a non-blocking stream could read uploaded weights before they arrive (seen on the H100: an argmax over
  // just-uploaded logits read zeros).
  ADALLM_CUDA_CHECK(cudaStreamCreate(&stream_));
  if (cublasCreate(&cublas_) != CUBLAS_STATUS_SUCCESS) throw Error("CUDA backend: cublasCreate failed");
  cublasSetStream(cublas_, stream_);
  // A workspace of our own, so that cuBLAS allocates nothing while a step graph is recorded (32 MiB: what
  // NVIDIA recommends for Hopper).
  cublas_workspace_ = DeviceMemory(size_t{32} << 20);
  if (cublasSetWorkspace(cublas_, cublas_workspace_.get(), cublas_workspace_.bytes()) != CUBLAS_STATUS_SUCCESS) {
    throw Error("CUDA backend: cublasSetWorkspace failed");
  }
  plan_ = kernels::plan_nvfp4_linear(kernels::current_nvfp4_device(), options.linear_path);
  fold_norms_ = options.fold_norms;
  decode_attention_warps_ = options.decode_attention_warps;
  name_ = "cuda:" + std::to_string(options.device) + " (" + info_.name + ")";
  log::info(plan_.describe());
}

CudaBackend::~CudaBackend() {
  abort_graph();
  if (stream_ != nullptr) cudaStreamSynchronize(stream_);
  for (cudaEvent_t e : events_) cudaEventDestroy(e);
  if (cublas_ != nullptr) cublasDestroy(cublas_);
  if (stream_ != nullptr) cudaStreamDestroy(stream_);
}

void CudaBackend::synchronize() { ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

std::optional<DeviceMemoryInfo> CudaBackend::device_memory() const {
  size_t free_bytes = 0, total = 0;
  ADALLM_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total));
  return DeviceMemoryInfo{static_cast<int64_t>(free_bytes), static_cast<int64_t>(total)};
}

cudaEvent_t CudaBackend::profile_event() {
  if (events_used_ == events_.size()) {
    cudaEvent_t e = nullptr;
    ADALLM_CUDA_CHECK(cudaEventCreate(&e));
    events_.push_back(e);
  }
  return events_[events_used_++];
}

CudaBackend::OpScope::OpScope(CudaBackend& backend, std::string op) {
  if (!backend.profiling_) return;
  backend_ = &backend;
  index_ = backend.spans_.size();
  backend.spans_.push_back({std::move(op), backend.events_used_, 0, 0.0});
  ADALLM_CUDA_CHECK(cudaEventRecord(backend.profile_event(), backend.stream_));
  start_ = std::chrono::steady_clock::now();
}

CudaBackend::OpScope::~OpScope() {
  if (backend_ == nullptr) return;
  backend_->spans_[index_].host_ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start_).count();
  backend_->spans_[index_].end = backend_->events_used_;
  cudaEventRecord(backend_->profile_event(), backend_->stream_);
}

void CudaBackend::set_profiling(bool on) {
  synchronize();
  profiling_ = on;
  spans_.clear();
  events_used_ = 0;
}

std::vector<OpTime> CudaBackend::take_profile() {
  synchronize();
  std::vector<OpTime> times;
  for (const Span& span : spans_) {
    float ms = 0.0f;
    ADALLM_CUDA_CHECK(cudaEventElapsedTime(&ms, events_[span.start], events_[span.end]));
    auto it = std::find_if(times.begin(), times.end(), [&](const OpTime& t) { return t.op == span.op; });
    if (it == times.end()) it = times.insert(times.end(), OpTime{span.op, 0, 0.0, 0.0});
    ++it->calls;
    it->gpu_ms += ms;
    it->host_ms += span.host_ms;
  }
  std::sort(times.begin(), times.end(), [](const OpTime& a, const OpTime& b) { return a.gpu_ms > b.gpu_ms; });
  spans_.clear();
  events_used_ = 0;
  return times;
}

std::unique_ptr<Buffer> CudaBackend::alloc(int64_t rows, int64_t cols, DType dtype) {
  if (dtype != DType::F32 && dtype != DType::BF16 && dtype != DType::I32) {
    throw Error("CUDA backend alloc: activations are BF16 or F32 (I32 for routing ids), got " +
                std::string(dtype_name(dtype)));
  }
  if (rows < 0 || cols < 0) throw Error("CUDA backend alloc: negative shape " + shape_text(dtype, rows, cols));
  return std::make_unique<CudaBuffer>(rows, cols, dtype);
}

std::unique_ptr<Buffer> CudaBackend::upload(const HostArray& src, DType dtype) {
  check_upload(src, dtype);
  const int64_t n = src.rows * src.cols;
  // Converted on the host exactly as the CPU backend converts (F16 → F32 exact, to BF16 round to nearest even).
  std::vector<std::byte> host(static_cast<size_t>(n) * dtype_size(dtype));
  const auto* bytes = static_cast<const unsigned char*>(src.data);
  for (int64_t i = 0; i < n && dtype != src.dtype; ++i) {
    float v;
    if (src.dtype == DType::F32) {
      std::memcpy(&v, bytes + i * 4, 4);
    } else {
      uint16_t h;
      std::memcpy(&h, bytes + i * 2, 2);
      v = src.dtype == DType::BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
    if (dtype == DType::F32) {
      std::memcpy(host.data() + i * 4, &v, 4);
    } else {
      const uint16_t b = f32_to_bf16(v);
      std::memcpy(host.data() + i * 2, &b, 2);
    }
  }
  const void* from = dtype == src.dtype ? src.data : static_cast<const void*>(host.data());
  auto buffer = std::make_unique<CudaBuffer>(src.rows, src.cols, dtype);
  if (n > 0) {
    ADALLM_CUDA_CHECK(cudaMemcpy(buffer->view().data, from, static_cast<size_t>(n) * dtype_size(dtype),
                                 cudaMemcpyHostToDevice));
  }
  return buffer;
}

void CudaBackend::to_host(const Tensor& src, std::span<float> dst) {
  if (src.dtype != DType::F32 && src.dtype != DType::I32 && src.dtype != DType::BF16) {
    throw Error("to_host: expected an F32, I32 or BF16 tensor, got " + src.describe());
  }
  expect_tensor(src, src.dtype, -1, -1, "to_host", "src");
  if (static_cast<int64_t>(dst.size()) != src.numel()) {
    throw Error("to_host: dst holds " + std::to_string(dst.size()) + " floats, src is " + src.describe());
  }
  if (src.numel() == 0) return;
  if (src.dtype == DType::F32) {  // straight into dst
    ADALLM_CUDA_CHECK(cudaMemcpy2DAsync(dst.data(), static_cast<size_t>(src.cols) * 4, src.data,
                                        static_cast<size_t>(src.stride) * 4, static_cast<size_t>(src.cols) * 4,
                                        static_cast<size_t>(src.rows), cudaMemcpyDeviceToHost, stream_));
    ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return;
  }
  const size_t elem = dtype_size(src.dtype);
  std::vector<std::byte> raw(static_cast<size_t>(src.numel()) * elem);
  ADALLM_CUDA_CHECK(cudaMemcpy2DAsync(raw.data(), static_cast<size_t>(src.cols) * elem, src.data,
                                      static_cast<size_t>(src.stride) * elem, static_cast<size_t>(src.cols) * elem,
                                      static_cast<size_t>(src.rows), cudaMemcpyDeviceToHost, stream_));
  ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
  for (size_t i = 0; i < dst.size(); ++i) {
    if (src.dtype == DType::I32) {
      int32_t v;
      std::memcpy(&v, raw.data() + i * 4, 4);
      dst[i] = static_cast<float>(v);
    } else {
      uint16_t h;
      std::memcpy(&h, raw.data() + i * 2, 2);
      dst[i] = bf16_to_f32(h);
    }
  }
}

CudaGraph::~CudaGraph() {
  if (exec_ != nullptr) cudaGraphExecDestroy(exec_);
}

void CudaBackend::begin_graph() {
  if (recording_) throw Error("begin_graph: a graph is being recorded already");
  if (profiling_) throw Error("begin_graph: op profiling is on (its events cannot be recorded into a graph)");
  // Thread-local: another thread's CUDA calls (a server's) are not part of, and do not break, the recording.
  ADALLM_CUDA_CHECK(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal));
  recording_ = true;
}

std::unique_ptr<Graph> CudaBackend::end_graph() {
  if (!recording_) throw Error("end_graph: no graph is being recorded");
  recording_ = false;
  cudaGraph_t graph = nullptr;
  const cudaError_t ended = cudaStreamEndCapture(stream_, &graph);
  if (ended != cudaSuccess) {
    cudaGetLastError();  // an invalidated capture is not sticky
    if (graph != nullptr) cudaGraphDestroy(graph);
    throw Error(std::string("end_graph: the recording failed: ") + cudaGetErrorString(ended));
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t made = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  ADALLM_CUDA_CHECK(made);
  auto recorded = std::make_unique<CudaGraph>(exec, memory_epoch_);
  ADALLM_CUDA_CHECK(cudaGraphUpload(exec, stream_));  // the first replay pays no upload
  return recorded;
}

void CudaBackend::abort_graph() {
  if (!recording_) return;
  recording_ = false;
  cudaGraph_t graph = nullptr;
  cudaStreamEndCapture(stream_, &graph);
  if (graph != nullptr) cudaGraphDestroy(graph);
  cudaGetLastError();
}

void CudaBackend::replay_graph(const Graph& graph) {
  const auto* g = dynamic_cast<const CudaGraph*>(&graph);
  if (g == nullptr) throw Error("replay_graph: the graph was not recorded by the CUDA backend");
  if (recording_) throw Error("replay_graph: a graph is being recorded");
  if (g->epoch() != memory_epoch_) {
    throw Error("replay_graph: the graph is stale (recorded in memory epoch " + std::to_string(g->epoch()) +
                ", the backend's device memory has moved since: epoch " + std::to_string(memory_epoch_) + ")");
  }
  ADALLM_CUDA_CHECK(cudaGraphLaunch(g->exec(), stream_));
}

void CudaBackend::set_batch(const ForwardBatch& batch) {
  // Its upload is not part of a graph: a replay reads what the set_batch before it uploaded.
  if (recording_) throw Error("set_batch: called while a graph is being recorded; set the batch first");
  // One upload of every array, each at a 16-byte aligned offset of one device buffer.
  size_t offset = 0;
  struct Part {
    const void* data;
    size_t bytes;
    size_t offset;
  };
  std::vector<Part> parts;
  const auto add = [&](const auto& v) {
    const size_t bytes = v.size() * sizeof(v[0]);
    parts.push_back({v.data(), bytes, offset});
    offset += (bytes + 15) / 16 * 16;
  };
  add(batch.token_ids);
  add(batch.positions);
  add(batch.seq_index);
  add(batch.slot_mapping);
  add(batch.page_tables);
  add(batch.logit_rows);
  // Attention blocks (see DeviceBatch): only when some sequence brings several tokens.
  const bool multi_token = batch.num_tokens() > batch.num_seqs();
  decode_blocks_.clear();
  for (auto& blocks : prefill_blocks_) blocks.clear();
  for (int i = 0; multi_token && i < DeviceBatch::kPrefillBlockSizes; ++i) {
    AttentionRuns runs = attention_runs(batch, 4 << i);
    if (i == 0) decode_blocks_ = std::move(runs.decode);
    prefill_blocks_[i] = std::move(runs.prefill);
  }
  add(decode_blocks_);
  for (const auto& blocks : prefill_blocks_) add(blocks);
  if (batch_staging_.size() < offset) batch_staging_.resize(offset);
  for (const Part& p : parts) {
    if (p.bytes > 0) std::memcpy(batch_staging_.data() + p.offset, p.data, p.bytes);
  }
  if (batch_memory_.bytes() < offset) {
    ADALLM_CUDA_CHECK(cudaStreamSynchronize(stream_));
    batch_memory_ = DeviceMemory();
    batch_memory_ = DeviceMemory(offset * 2);
    ++memory_epoch_;
  }
  if (offset > 0) {
    ADALLM_CUDA_CHECK(cudaMemcpyAsync(batch_memory_.get(), batch_staging_.data(), offset, cudaMemcpyHostToDevice, stream_));
  }
  auto* base = batch_memory_.as<std::byte>();
  device_batch_.token_ids = reinterpret_cast<int32_t*>(base + parts[0].offset);
  device_batch_.positions = reinterpret_cast<int32_t*>(base + parts[1].offset);
  device_batch_.seq_index = reinterpret_cast<int32_t*>(base + parts[2].offset);
  device_batch_.slot_mapping = reinterpret_cast<int64_t*>(base + parts[3].offset);
  device_batch_.page_tables = reinterpret_cast<int32_t*>(base + parts[4].offset);
  device_batch_.logit_rows = reinterpret_cast<int32_t*>(base + parts[5].offset);
  const auto table = [&](size_t part) {
    return multi_token ? reinterpret_cast<const kernels::AttentionQueryBlock*>(base + parts[part].offset) : nullptr;
  };
  device_batch_.decode_blocks = table(6);
  device_batch_.num_decode_blocks = static_cast<int64_t>(decode_blocks_.size());
  for (int i = 0; i < DeviceBatch::kPrefillBlockSizes; ++i) {
    device_batch_.prefill_blocks[i] = table(7 + i);
    device_batch_.num_prefill_blocks[i] = static_cast<int64_t>(prefill_blocks_[i].size());
  }
  batch_ = &batch;
}

const ForwardBatch& CudaBackend::batch(const char* op) const {
  if (batch_ == nullptr) throw Error(std::string(op) + ": no forward batch; call set_batch first");
  return *batch_;
}

void CudaBackend::embed(const Tensor& table, int64_t first_id, int64_t vocab_size, float scale, Tensor out) {
  const OpScope scope(*this, "embed");
  const ForwardBatch& b = batch("embed");
  check_embed(table, first_id, vocab_size, b, out);
  kernels::embed(table.data, table.dtype, table.stride, first_id, table.rows, device_batch_.token_ids, b.num_tokens(),
                 table.cols, scale, out.ptr<float>(), out.stride, stream_);
}

namespace {

kernels::RmsNormParams norm_params(const Tensor& x, const Tensor& weight, float eps, NormKind kind, const Tensor& out) {
  kernels::RmsNormParams p;
  p.rows = x.rows;
  p.cols = x.cols;
  p.x = x.data;
  p.x_dtype = x.dtype;
  p.x_stride = x.stride;
  p.weight = weight.ptr<float>();
  p.eps = eps;
  p.gemma = kind == NormKind::gemma;
  p.out = out.data;
  p.out_dtype = out.dtype;
  p.out_stride = out.stride;
  return p;
}

void expect_float_tensor(const Tensor& t, int64_t rows, int64_t cols, const char* op, const char* what) {
  if (t.dtype != DType::BF16 && t.dtype != DType::F32) {
    throw Error(std::string(op) + ": " + what + " must be BF16 or F32, got " + t.describe());
  }
  expect_tensor(t, t.dtype, rows, cols, op, what);
}

}  // namespace

void CudaBackend::rms_norm(const Tensor& x, const Tensor& weight, float eps, NormKind kind, Tensor out) {
  expect_float_tensor(x, -1, -1, "rms_norm", "x");
  expect_tensor(weight, DType::F32, 1, x.cols, "rms_norm", "weight");
  expect_float_tensor(out, x.rows, x.cols, "rms_norm", "out");
  if (out.data == x.data && (out.dtype != x.dtype || out.stride != x.stride)) {
    throw Error("rms_norm: out aliases x with another dtype or stride");
  }
  const OpScope scope(*this, "rms_norm");
  kernels::rms_norm(norm_params(x, weight, eps, kind, out), stream_);
}

void CudaBackend::add_rms_norm(const Tensor& x, Tensor residual, const Tensor& weight, float eps, NormKind kind,
                               Tensor out) {
  expect_float_tensor(x, -1, -1, "add_rms_norm", "x");
  expect_tensor(residual, DType::F32, x.rows, x.cols, "add_rms_norm", "residual");
  expect_tensor(weight, DType::F32, 1, x.cols, "add_rms_norm", "weight");
  expect_float_tensor(out, x.rows, x.cols, "add_rms_norm", "out");
  if (out.data == x.data && (out.dtype != x.dtype || out.stride != x.stride)) {
    throw Error("add_rms_norm: out aliases x with another dtype or stride");
  }
  kernels::RmsNormParams p = norm_params(x, weight, eps, kind, out);
  p.residual = residual.ptr<float>();
  p.residual_stride = residual.stride;
  const OpScope scope(*this, "add_rms_norm");
  kernels::rms_norm(p, stream_);
}

void CudaBackend::gated_activation(const Tensor& gate_up, Activation act, Tensor out) {
  const OpScope scope(*this, "gated_activation");
  expect_tensor(gate_up, DType::BF16, -1, -1, "gated_activation", "gate_up");
  if (gate_up.cols % 2 != 0) {
    throw Error("gated_activation: gate_up expected [rows, 2 * n], got an odd column count: " + gate_up.describe());
  }
  const int64_t n = gate_up.cols / 2;
  expect_tensor(out, DType::BF16, gate_up.rows, n, "gated_activation", "out");
  kernels::gated_activation(gate_up.ptr<__nv_bfloat16>(), gate_up.stride, gate_up.rows, n,
                            act == Activation::silu ? kernels::GatedActivation::silu : kernels::GatedActivation::gelu_tanh,
                            out.ptr<__nv_bfloat16>(), out.stride, stream_);
}

void CudaBackend::gather_logit_rows(const Tensor& x, Tensor out) {
  const OpScope scope(*this, "gather_logit_rows");
  const ForwardBatch& b = batch("gather_logit_rows");
  if (x.dtype != DType::F32 && x.dtype != DType::BF16) throw Error("gather_logit_rows: x must be F32 or BF16, got " + x.describe());
  expect_tensor(x, x.dtype, b.num_tokens(), -1, "gather_logit_rows", "x");
  expect_tensor(out, x.dtype, static_cast<int64_t>(b.logit_rows.size()), x.cols, "gather_logit_rows", "out");
  for (int32_t r : b.logit_rows) {
    if (r < 0 || r >= x.rows) {
      throw Error("gather_logit_rows: logit row " + std::to_string(r) + " is not one of " + std::to_string(x.rows) + " tokens");
    }
  }
  if (out.data == x.data) throw Error("gather_logit_rows: out must not alias x on the GPU");
  kernels::gather_rows(x.data, x.stride, device_batch_.logit_rows, out.rows, x.cols, static_cast<int>(dtype_size(x.dtype)),
                       out.data, out.stride, stream_);
}

void CudaBackend::argmax_rows(const Tensor& logits, Tensor ids) {
  check_argmax_rows(logits, ids);
  const OpScope scope(*this, "argmax_rows");
  kernels::argmax_rows(logits.ptr<float>(), logits.stride, logits.rows, logits.cols, ids.ptr<int32_t>(),
                       kArgmaxNonFinite, kArgmaxNoFinite, stream_);
}

}  // namespace cuda_backend

namespace {
cuda_backend::CudaBackend& as_cuda(Backend& backend) {
  auto* cuda = dynamic_cast<cuda_backend::CudaBackend*>(&backend);
  if (cuda == nullptr) throw Error("op profiling needs the CUDA backend, not " + backend.name());
  return *cuda;
}
}  // namespace

void set_op_profiling(Backend& backend, bool on) { as_cuda(backend).set_profiling(on); }
std::vector<OpTime> take_op_profile(Backend& backend) { return as_cuda(backend).take_profile(); }

}  // namespace adallm::backend
