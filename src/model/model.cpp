// Loading a checkpoint into a backend and running one forward step (see model.h). Everything that
// differs between families lives in arch/; here is only what they share: embedding, the layer loop and
// the output head.
#include "model/model.h"

#include <cmath>
#include <cstddef>
#include <fstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/float_codecs.h"
#include "core/log.h"
#include "io/safetensors.h"
#include "model/arch/arch.h"
#include "model/ledger.h"
#include "model/rope.h"
#include "model/step_state.h"

namespace adallm::model {
namespace {

namespace fs = std::filesystem;

backend::LinearSource linear_source(const LinearTensors& t) {
  backend::LinearSource s;
  s.name = t.module;
  s.out_features = t.out_features;
  s.in_features = t.in_features;
  if (t.nvfp4) {
    s.nvfp4 = quant::Nvfp4View{t.weight->data, t.weight_scale->data, t.weight_scale_2, t.out_features, t.in_features};
  } else {
    s.dense = t.weight->data;
    s.dense_dtype = t.weight->dtype;
  }
  return s;
}

backend::HostArray host_array(const io::TensorInfo& t) {
  backend::HostArray a;
  a.name = t.name;
  a.data = t.data;
  a.dtype = t.dtype;
  a.rows = t.shape.size() == 2 ? t.shape[0] : 1;
  a.cols = t.shape.empty() ? 1 : t.shape.back();
  return a;
}

std::unique_ptr<backend::Buffer> upload_f32(backend::Backend& b, const io::TensorInfo* t) {
  return t ? b.upload(host_array(*t), DType::F32) : nullptr;
}

// Gemma3 multiplies embeddings by sqrt(hidden_size) cast to the embedding dtype first (HF's
// embed_scale.to(weight.dtype)): 55.4256 becomes 55.5 in bf16.
float embedding_scale(const io::ModelConfig& config, DType table_dtype) {
  if (!config.scale_embeddings) return 1.0f;
  const auto scale = static_cast<float>(std::sqrt(static_cast<double>(config.hidden_size)));
  if (table_dtype == DType::BF16) return bf16_to_f32(f32_to_bf16(scale));
  if (table_dtype == DType::F16) return f16_to_f32(f32_to_f16(scale));
  return scale;
}

// A layer's weights, or under tensor parallelism (`shard`) this rank's part of them: column-parallel
// q/k/v and gate/up rows, row-parallel o_proj and down_proj columns.
LayerWeights load_layer(backend::Backend& b, const LayerTensors& t, const io::ModelConfig& c,
                        const TensorParallelShard* shard) {
  const auto rows = [&](const LinearTensors& l, IndexRange r) {
    return shard ? slice_rows(linear_source(l), r) : linear_source(l);
  };
  SliceStorage storage;  // a row-parallel slice's copy, alive until its Linear is loaded
  const auto cols = [&](const LinearTensors& l, IndexRange r) {
    return shard ? slice_columns(linear_source(l), r, storage) : linear_source(l);
  };
  const IndexRange q_rows = shard ? shard->q_rows(c.head_dim) : IndexRange{};
  const IndexRange kv_rows = shard ? shard->kv_rows(c.head_dim) : IndexRange{};
  LayerWeights w;
  w.input_layernorm = upload_f32(b, t.input_layernorm);
  w.post_attention_layernorm = upload_f32(b, t.post_attention_layernorm);
  w.pre_feedforward_layernorm = upload_f32(b, t.pre_feedforward_layernorm);
  w.post_feedforward_layernorm = upload_f32(b, t.post_feedforward_layernorm);
  const backend::LinearSource qkv[] = {rows(t.attn.q_proj, q_rows), rows(t.attn.k_proj, kv_rows),
                                       rows(t.attn.v_proj, kv_rows)};
  w.qkv_proj = b.load_linear(qkv);
  const backend::LinearSource o[] = {cols(t.attn.o_proj, q_rows)};
  w.o_proj = b.load_linear(o);
  w.q_norm = upload_f32(b, t.attn.q_norm);
  w.k_norm = upload_f32(b, t.attn.k_norm);
  if (t.mlp) {
    const IndexRange inter = shard ? shard->intermediate : IndexRange{};
    w.gate_up_proj = b.load_gate_up_linear(rows(t.mlp->gate_proj, inter), rows(t.mlp->up_proj, inter));
    const backend::LinearSource down[] = {cols(t.mlp->down_proj, inter)};
    w.down_proj = b.load_linear(down);
  }
  if (t.moe) {
    const io::TensorInfo& r = *t.moe->router;
    backend::LinearSource router;
    router.name = r.name;
    router.out_features = r.shape[0];
    router.in_features = r.shape[1];
    router.dense = r.data;
    router.dense_dtype = r.dtype;
    w.router = b.load_linear(std::span<const backend::LinearSource>(&router, 1));
    std::vector<backend::ExpertSource> experts;
    experts.reserve(t.moe->experts.size());
    std::vector<SliceStorage> down_slices(t.moe->experts.size());  // alive until load_experts has copied them
    const IndexRange inter = shard ? shard->moe_intermediate : IndexRange{};
    for (size_t i = 0; i < t.moe->experts.size(); ++i) {
      const MlpTensors& e = t.moe->experts[i];
      const backend::LinearSource down =
          shard ? slice_columns(linear_source(e.down_proj), inter, down_slices[i]) : linear_source(e.down_proj);
      experts.push_back({rows(e.gate_proj, inter), rows(e.up_proj, inter), down});
    }
    w.experts = b.load_experts(experts);
  }
  return w;
}

}  // namespace

Model::Model(std::filesystem::path dir, backend::Backend& backend)
    : dir_(std::move(dir)), backend_(backend), step_(std::make_unique<StepBuffers>()) {}

Model::~Model() = default;

void Model::reserve(int64_t num_tokens, int64_t num_logit_rows) {
  backend::Backend& b = backend_;
  const io::ModelConfig& c = config_;
  if (num_tokens > step_->layers.capacity()) ++step_->epoch;
  step_->layers.reserve(b, rank_config_, num_tokens);
  if (num_logit_rows > step_->head_capacity) {
    ++step_->epoch;
    const DType dt = b.activation_dtype();
    step_->residual = b.alloc(num_logit_rows, c.hidden_size, DType::F32);
    step_->delta = b.alloc(num_logit_rows, c.hidden_size, dt);
    step_->normed = b.alloc(num_logit_rows, c.hidden_size, dt);
    step_->logits = b.alloc(num_logit_rows, c.vocab_size, DType::F32);
    if (tp_) {
      step_->rank_logits = b.alloc(num_logit_rows, tp_->shard.vocab_shard, DType::F32);
      step_->gathered_logits = b.alloc(num_logit_rows, tp_->shard.vocab_shard * tp_->shard.size, DType::F32);
    }
    step_->ids = b.alloc(num_logit_rows, 1, DType::I32);
    step_->head_capacity = num_logit_rows;
  }
}

std::unique_ptr<Model> Model::load(const fs::path& dir, backend::Backend& backend, const TensorParallelRank* tp) {
  if (!fs::is_directory(dir)) {
    throw Error("model directory not found").file(dir.string()).hint("give a directory holding config.json and *.safetensors");
  }
  std::unique_ptr<Model> m(new Model(dir, backend));
  const fs::path config_path = dir / "config.json";
  m->config_ = io::load_model_config(config_path);
  nlohmann::json raw;
  {
    std::ifstream in(config_path);
    raw = nlohmann::json::parse(in, nullptr, false);
  }
  m->quant_ = io::load_quant_config(dir, raw);
  const io::Checkpoint checkpoint = io::Checkpoint::open(dir);
  const ModelTensors tensors = bind_checkpoint(checkpoint, m->config_, m->quant_);
  for (const std::string& w : tensors.warnings) log::warn(w);

  const io::ModelConfig& c = m->config_;
  m->rank_config_ = c;
  const TensorParallelShard* shard = nullptr;
  if (tp != nullptr && tp->shard.size > 1) {
    if (tp->comm == nullptr || tp->comm->size() != tp->shard.size || tp->comm->rank() != tp->shard.rank) {
      throw Error("tensor parallelism: rank " + std::to_string(tp->shard.rank) + " of " + std::to_string(tp->shard.size) +
                  " needs a communicator of that rank and size");
    }
    // Made again from this checkpoint's config: a shard made for another model is refused.
    if (!(shard_model(c, tp->shard.size, tp->shard.rank) == tp->shard)) {
      throw Error("tensor parallelism: the rank's shard was made for another model").file(config_path.string());
    }
    m->tp_ = *tp;
    shard = &m->tp_->shard;
    m->rank_config_.num_attention_heads = shard->q_heads.size();
    m->rank_config_.num_key_value_heads = shard->kv_heads.size();
    m->rank_config_.intermediate_size = shard->intermediate.size();
    m->rank_config_.moe_intermediate_size = shard->moe_intermediate.size();
  }
  ModelWeights& w = m->weights_;
  // Under tensor parallelism, this rank's vocabulary rows of the embedding and of the head.
  const IndexRange vocab = shard ? shard->vocab : IndexRange{0, c.vocab_size};
  // BF16 tables stay BF16; F16 and F32 ones become F32 (exact).
  const DType table_dtype = tensors.embed_tokens->dtype == DType::BF16 ? DType::BF16 : DType::F32;
  backend::HostArray table = host_array(*tensors.embed_tokens);
  table.data = static_cast<const std::byte*>(table.data) + vocab.begin * table.cols * dtype_size(table.dtype);
  table.rows = vocab.size();
  w.embed_tokens = backend.upload(table, table_dtype);
  w.embed_scale = embedding_scale(c, tensors.embed_tokens->dtype);
  for (const LayerTensors& layer : tensors.layers) {
    w.layers.push_back(load_layer(backend, layer, c, shard));
    w.k_scales.push_back(layer.attn.k_scale);
    w.v_scales.push_back(layer.attn.v_scale);
    w.has_kv_scales = w.has_kv_scales || layer.attn.has_kv_scales;
  }
  w.norm = upload_f32(backend, tensors.norm);
  if (tensors.lm_head_tied) {
    // The embedding table itself (this rank's rows of it), not a copy.
    w.lm_head = backend.linear_from_table(w.embed_tokens->view());
  } else {
    const backend::LinearSource lm_head[] = {slice_rows(linear_source(tensors.lm_head), vocab)};
    w.lm_head = backend.load_linear(lm_head);
  }
  w.rope_full = rope_table(c.rope_full, c.head_dim);
  w.rope_sliding = rope_table(c.rope_sliding, c.head_dim);
  log::info("loaded " + m->describe() + " on " + backend.name());
  return m;
}

std::string Model::describe() const {
  std::string weights = quant_.quantized() ? std::string("NVFP4 (") + io::quant_format_name(quant_.format) + ")"
                                           : (config_.torch_dtype.empty() ? "dense" : config_.torch_dtype);
  return config_.model_type + ", " + std::to_string(config_.num_hidden_layers) + " layers, hidden " +
         std::to_string(config_.hidden_size) + ", " + weights + " weights";
}

backend::KvCacheSpec Model::kv_cache_spec(int64_t num_pages, int64_t page_size, backend::KvCacheDType dtype) const {
  backend::KvCacheSpec spec;
  spec.num_layers = config_.num_hidden_layers;
  spec.num_pages = num_pages;
  spec.page_size = page_size;
  spec.num_key_value_heads = rank_config_.num_key_value_heads;
  spec.head_dim = config_.head_dim;
  spec.dtype = dtype;
  spec.k_scales = weights_.k_scales;
  spec.v_scales = weights_.v_scales;
  return spec;
}

backend::Tensor Model::run(const backend::ForwardBatch& batch, backend::KvCache& cache) {
  const int64_t n = batch.num_tokens();
  if (n == 0) throw Error("forward: the batch has no tokens");
  batch.validate(cache.spec().num_pages, cache.spec().page_size);
  if (std::optional<backend::Tensor> logits = run_graphed(batch, cache)) return *logits;
  backend_.set_batch(batch);
  const auto rows = static_cast<int64_t>(batch.logit_rows.size());
  reserve(n, rows);
  return issue_step(n, rows, cache);
}

backend::Tensor Model::issue_step(int64_t n, int64_t rows, backend::KvCache& cache) {
  const io::ModelConfig& c = config_;
  backend::Backend& b = backend_;
  arch::Activations act = step_->layers.rows(n);
  // Each rank looks up its own vocabulary rows (zeros for the others') and the sum makes the whole lookup.
  const IndexRange vocab = tp_ ? tp_->shard.vocab : IndexRange{0, c.vocab_size};
  b.embed(weights_.embed_tokens->view(), vocab.begin, c.vocab_size, weights_.embed_scale, act.residual);
  if (tp_) tp_->comm->all_reduce_sum(act.residual);
  arch::LayerContext ctx{b, rank_config_, weights_, cache, act};
  ctx.comm = tp_ ? tp_->comm : nullptr;
  const arch::LayerFunction layer = arch::layer_function(c.arch);
  for (int64_t l = 0; l < c.num_hidden_layers; ++l) layer(ctx, l);

  // The final norm is per row, so only the rows whose logits are wanted go through it and the head.
  if (rows == 0) return backend::Tensor{nullptr, DType::F32, 0, c.vocab_size, c.vocab_size};
  const backend::Tensor residual = step_->residual->view().row_slice(0, rows);
  const backend::Tensor delta = step_->delta->view().row_slice(0, rows);
  const backend::Tensor normed = step_->normed->view().row_slice(0, rows);
  const backend::Tensor out = step_->logits->view().row_slice(0, rows);
  b.gather_logit_rows(act.residual, residual);
  b.gather_logit_rows(act.delta, delta);
  b.add_rms_norm(delta, residual, weights_.norm->view(), static_cast<float>(c.rms_norm_eps),
                 c.gemma_norm ? backend::NormKind::gemma : backend::NormKind::llama, normed);
  if (!tp_) {
    b.linear(*weights_.lm_head, normed, out);
    return out;
  }
  // Each rank's vocabulary rows, gathered side by side (the last rank's padding columns past vocab_size
  // are never read).
  const TensorParallelShard& s = tp_->shard;
  const backend::Tensor mine = step_->rank_logits->view().row_slice(0, rows);
  const backend::Tensor all = step_->gathered_logits->view().row_slice(0, rows);
  b.linear(*weights_.lm_head, normed, mine.col_slice(0, s.vocab.size()));
  tp_->comm->all_gather_cols(mine, all);
  b.copy(all.col_slice(0, c.vocab_size), out);
  return out;
}

void Model::forward(const backend::ForwardBatch& batch, backend::KvCache& cache, std::vector<float>& logits) {
  const backend::Tensor out = run(batch, cache);
  logits.resize(static_cast<size_t>(out.numel()));
  if (out.rows > 0) backend_.to_host(out, logits);
}

void Model::run_to_ids(const backend::ForwardBatch& batch, backend::KvCache& cache, const char* op,
                       const std::function<void(backend::Tensor logits, backend::Tensor ids)>& pick,
                       bool pick_overwrites, std::vector<int32_t>& ids, StepLogprobs* logprobs,
                       std::span<const uint32_t> token_masks) {
  if (config_.vocab_size > (int64_t{1} << 24)) {
    throw Error(std::string(op) + ": vocab_size " + std::to_string(config_.vocab_size) +
                " is past 2^24, where ids read back as floats lose bits");
  }
  if (logprobs != nullptr && (logprobs->top_n < 0 || logprobs->top_n > backend::kMaxTopLogprobs)) {
    throw Error(std::string(op) + ": top_n " + std::to_string(logprobs->top_n) + " logprobs asked; expected 0 to " +
                std::to_string(backend::kMaxTopLogprobs));
  }
  const backend::Tensor out = run(batch, cache);
  ids.resize(static_cast<size_t>(out.rows));
  if (logprobs != nullptr) {
    logprobs->chosen.clear();
    logprobs->top_ids.clear();
    logprobs->top_logprobs.clear();
  }
  if (out.rows == 0) return;
  const backend::Tensor d_ids = step_->ids->view().row_slice(0, out.rows);
  backend::Tensor raw = out;
  if (logprobs != nullptr && (pick_overwrites || !token_masks.empty())) {
    if (!step_->raw_logits || step_->raw_logits->view().rows < out.rows) {
      step_->raw_logits = backend_.alloc(out.rows, out.cols, DType::F32);
    }
    raw = step_->raw_logits->view().row_slice(0, out.rows);
    backend_.copy(out, raw);
  }
  if (!token_masks.empty()) backend_.mask_logits(out, token_masks);
  pick(out, d_ids);
  if (logprobs != nullptr) read_logprobs(raw, d_ids, *logprobs);
  std::vector<float> values(static_cast<size_t>(out.rows));  // to_host reads I32 as exact floats (ids < 2^24)
  backend_.to_host(d_ids, values);
  for (size_t i = 0; i < values.size(); ++i) ids[i] = static_cast<int32_t>(values[i]);
}

void Model::read_logprobs(const backend::Tensor& logits, const backend::Tensor& ids, StepLogprobs& out) {
  backend::Backend& b = backend_;
  const int64_t rows = logits.rows, n = out.top_n;
  if (!step_->chosen || step_->chosen->view().rows < rows) {
    step_->chosen = b.alloc(rows, 1, DType::F32);
    step_->top_ids = b.alloc(rows, backend::kMaxTopLogprobs, DType::I32);
    step_->top_logprobs = b.alloc(rows, backend::kMaxTopLogprobs, DType::F32);
  }
  const backend::Tensor chosen = step_->chosen->view().row_slice(0, rows);
  const backend::Tensor top_ids = step_->top_ids->view().row_slice(0, rows).col_slice(0, n);
  const backend::Tensor top_logprobs = step_->top_logprobs->view().row_slice(0, rows).col_slice(0, n);
  b.logprobs_rows(logits, ids, n, chosen, top_ids, top_logprobs);
  out.chosen.resize(static_cast<size_t>(rows));
  b.to_host(chosen, out.chosen);
  if (n == 0) return;
  std::vector<float> values(static_cast<size_t>(rows * n));
  b.to_host(top_ids, values);  // exact: ids < 2^24, and -1
  out.top_ids.assign(values.begin(), values.end());
  out.top_logprobs.resize(values.size());
  b.to_host(top_logprobs, out.top_logprobs);
}

void Model::forward_greedy(const backend::ForwardBatch& batch, backend::KvCache& cache, std::vector<int32_t>& ids,
                           StepLogprobs* logprobs, std::span<const uint32_t> token_masks) {
  run_to_ids(batch, cache, "forward_greedy",
             [this](backend::Tensor logits, backend::Tensor d_ids) { backend_.argmax_rows(logits, d_ids); }, false, ids,
             logprobs, token_masks);
}

void Model::forward_sample(const backend::ForwardBatch& batch, backend::KvCache& cache,
                           std::span<const backend::SamplingRow> rows, std::vector<int32_t>& ids,
                           StepLogprobs* logprobs, std::span<const uint32_t> token_masks) {
  // Checked before the step runs, so that a mismatch leaves the cache untouched.
  if (rows.size() != batch.logit_rows.size()) {
    throw Error("forward_sample: " + std::to_string(rows.size()) + " sampling rows for " +
                std::to_string(batch.logit_rows.size()) + " logit rows; expected one per logit row");
  }
  const auto pick = [this, &rows](backend::Tensor logits, backend::Tensor d_ids) {
    backend_.sample_rows(logits, rows, d_ids);
  };
  run_to_ids(batch, cache, "forward_sample", pick, true, ids, logprobs, token_masks);
}

}  // namespace adallm::model
