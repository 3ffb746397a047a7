// The engine's step loop (see engine_core.h).
#include "engine/engine_core.h"

#include <algorithm>
#include <chrono>
#include <optional>
#include <span>
#include <vector>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/log.h"

namespace adallm::engine {
namespace {

// The backend's codes for a row it could not sample from become that request's error (the scheduler
// fails a sequence whose id is -1); the rest of the batch goes on.
void fail_refused_rows(const std::vector<ScheduledChunk>& chunks, std::vector<int32_t>& sampled) {
  size_t row = 0;
  for (const ScheduledChunk& c : chunks) {
    if (!c.sample) continue;
    int32_t& id = sampled[row++];
    if (id == backend::Backend::kArgmaxNonFinite) {
      c.seq->error = "sampler: the logits hold NaN or +inf; expected finite logits, or -inf for masked tokens";
      id = -1;
    } else if (id == backend::Backend::kArgmaxNoFinite) {
      c.seq->error = "sampler: every logit is -inf; expected at least one finite logit to choose from";
      id = -1;
    }
  }
}

// Each constrained sequence's constraint takes the token picked under its mask; one it refuses (the
// mask allowed it, so the constraint contradicts itself) fails that request.
void accept_constrained(const std::vector<ScheduledChunk>& chunks, std::vector<int32_t>& sampled) {
  size_t row = 0;
  for (const ScheduledChunk& c : chunks) {
    if (!c.sample) continue;
    int32_t& id = sampled[row++];
    if (id < 0 || !c.seq->constraint) continue;
    if (!c.seq->constraint->accept(id)) {
      c.seq->error = "constraint: token " + std::to_string(id) +
                     " was allowed by the mask but refused by the constraint (an internal error)";
      id = -1;
    }
  }
}

int64_t pages_for(int64_t tokens, int64_t page_size) { return (tokens + page_size - 1) / page_size; }

bool use_graphs(const backend::Backend& backend, const EngineOptions& o) {
  return !o.enforce_eager && backend.supports_graphs();
}

model::GraphPlan graph_plan(const EngineOptions& o, int64_t pad_page) {
  model::GraphPlan plan;
  plan.batch_sizes = graph_batch_sizes(o.max_num_seqs);
  plan.max_pages_per_seq = static_cast<int32_t>(pages_for(o.max_model_len, o.page_size));
  plan.pad_page = static_cast<int32_t>(pad_page);
  plan.max_keys = static_cast<int32_t>(o.max_model_len);
  return plan;
}

// Device memory the step graphs take: those of the largest batch size recorded over a one-page cache, times
// the number of sizes (every size's graph has the same nodes).
int64_t graph_memory(model::Model& model, backend::Backend& backend, const EngineOptions& o) {
  auto cache = backend.alloc_kv_cache(model.kv_cache_spec(1, o.page_size, o.kv_cache_dtype));
  model::GraphPlan plan = graph_plan(o, 0);
  const auto sizes = static_cast<int64_t>(plan.batch_sizes.size());
  plan.batch_sizes = {plan.batch_sizes.back()};
  const int64_t before = backend.device_memory()->free;
  model.enable_graphs(plan, *cache);
  const int64_t taken = before - backend.device_memory()->free;
  model.disable_graphs();
  return std::max<int64_t>(taken, 0) * sizes;
}

EngineOptions resolve(const model::Model& model, EngineOptions o) {
  if (o.page_size <= 0) throw Error("KV page size must be positive, got " + std::to_string(o.page_size));
  const int64_t limit = model.config().max_position_embeddings > 0 ? model.config().max_position_embeddings : 8192;
  if (o.max_model_len == 0) o.max_model_len = std::min<int64_t>(limit, 8192);
  if (o.max_model_len < 0 || o.max_model_len > limit) {
    throw Error("max_model_len " + std::to_string(o.max_model_len) + " is outside 1.." + std::to_string(limit) +
                " (the model's max_position_embeddings)");
  }
  if (o.num_pages < 0 || o.kv_cache_memory < 0) throw Error("KV page count and KV cache memory must be >= 0");
  if (o.num_pages > 0 && o.kv_cache_memory > 0) throw Error("give the KV pool's page count or its memory, not both");
  if (o.kv_cache_memory > 0) {
    const int64_t page_bytes = model.kv_cache_spec(1, o.page_size, o.kv_cache_dtype).bytes();
    o.num_pages = o.kv_cache_memory / page_bytes;
    if (o.num_pages == 0) {
      throw Error("KV cache memory of " + std::to_string(o.kv_cache_memory) + " bytes holds no page of " +
                  std::to_string(page_bytes) + " bytes");
    }
  }
  if (!(o.gpu_memory_utilization > 0.0 && o.gpu_memory_utilization <= 1.0)) {
    throw Error("gpu_memory_utilization must be in (0, 1], got " + std::to_string(o.gpu_memory_utilization));
  }
  return o;
}

// One step of the largest size the scheduler may form (max_num_batched_tokens prefill tokens, in sequences
// of at most max_model_len, one logit row each, sampled with every knob on) on a scratch KV cache just
// large enough: every activation buffer and workspace a step needs, the sampler's included, is allocated
// afterwards, so what is left is the KV pool's.
void profile_step(model::Model& model, backend::Backend& backend, const EngineOptions& o) {
  const int64_t tokens = o.max_num_batched_tokens;
  const int64_t seq_len = std::min(tokens, o.max_model_len);
  const int64_t seqs = (tokens + seq_len - 1) / seq_len;
  const int64_t pages_per_seq = pages_for(seq_len, o.page_size);
  auto cache = backend.alloc_kv_cache(model.kv_cache_spec(seqs * pages_per_seq, o.page_size, o.kv_cache_dtype));
  backend::ForwardBatch b;
  b.max_pages_per_seq = static_cast<int32_t>(pages_per_seq);
  for (int64_t s = 0; s < seqs; ++s) {
    const int64_t len = std::min(seq_len, tokens - s * seq_len);
    for (int64_t p = 0; p < pages_per_seq; ++p) b.page_tables.push_back(static_cast<int32_t>(s * pages_per_seq + p));
    b.context_lens.push_back(static_cast<int32_t>(len));
    for (int64_t t = 0; t < len; ++t) {
      b.token_ids.push_back(0);
      b.positions.push_back(static_cast<int32_t>(t));
      b.seq_index.push_back(static_cast<int32_t>(s));
      b.slot_mapping.push_back((s * pages_per_seq + t / o.page_size) * o.page_size + t % o.page_size);
    }
    b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size() - 1));
  }
  std::vector<backend::SamplingRow> rows(static_cast<size_t>(seqs));
  for (int64_t s = 0; s < seqs; ++s) {
    backend::SamplingRow& row = rows[static_cast<size_t>(s)];
    row.top_k = 50;
    row.top_p = 0.9f;
    row.min_p = 0.01f;
    row.repetition_penalty = 1.1f;
    row.frequency_penalty = 0.1f;
    row.uniform = 0.5;
    const int64_t first = s * seq_len, len = std::min(seq_len, tokens - first);
    row.prompt_tokens =
        std::span<const int32_t>(b.token_ids).subspan(static_cast<size_t>(first), static_cast<size_t>(len));
  }
  std::vector<int32_t> ids;
  model.forward_sample(b, *cache, rows, ids);
}

// The KV pool's page count when the options give neither pages nor bytes: from device memory on a GPU,
// else four sequences of max_model_len (or max_num_seqs of them if fewer).
EngineOptions size_kv_pool(model::Model& model, backend::Backend& backend, EngineOptions o) {
  if (o.num_pages > 0) return o;
  if (!backend.device_memory()) {
    o.num_pages = pages_for(o.max_model_len, o.page_size) * std::clamp<int64_t>(o.max_num_seqs, 1, 4);
    return o;
  }
  model.reserve(o.max_num_batched_tokens, std::min(o.max_num_seqs, o.max_num_batched_tokens));
  profile_step(model, backend, o);
  const int64_t graphs = use_graphs(backend, o) ? graph_memory(model, backend, o) : 0;
  const backend::DeviceMemoryInfo now = *backend.device_memory();
  const int64_t used = now.total - now.free + graphs;
  const auto budget = static_cast<int64_t>(o.gpu_memory_utilization * static_cast<double>(now.total)) - used;
  const int64_t page_bytes = model.kv_cache_spec(1, o.page_size, o.kv_cache_dtype).bytes();
  o.num_pages = budget > 0 ? budget / page_bytes : 0;
  const int64_t one_sequence = pages_for(o.max_model_len, o.page_size);
  if (o.num_pages < one_sequence) {
    throw Error("gpu_memory_utilization " + std::to_string(o.gpu_memory_utilization) + " of " +
                std::to_string(now.total >> 20) + " MiB leaves " + std::to_string(std::max<int64_t>(budget, 0) >> 20) +
                " MiB for the KV cache after weights and activations (" + std::to_string(used >> 20) +
                " MiB in use): not one sequence of max_model_len " + std::to_string(o.max_model_len) + " (" +
                std::to_string(one_sequence * page_bytes >> 20) + " MiB)")
        .hint("raise --gpu-memory-utilization, or lower --max-model-len or --max-num-batched-tokens");
  }
  log::info("device memory: " + std::to_string(used >> 20) + " MiB in use after loading and a " +
            std::to_string(o.max_num_batched_tokens) + "-token profile step (step graphs " +
            std::to_string(graphs >> 20) + " MiB); KV pool gets " +
            std::to_string(o.num_pages * page_bytes >> 20) + " MiB (gpu_memory_utilization " +
            std::to_string(o.gpu_memory_utilization) + " of " + std::to_string(now.total >> 20) + " MiB)");
  return o;
}

}  // namespace

EngineCore::EngineCore(model::Model& model, backend::Backend& backend, const EngineOptions& options)
    : model_(model),
      options_(size_kv_pool(model, backend, resolve(model, options))),
      pool_(options_.num_pages, options_.page_size, options_.prefix_caching),
      scheduler_({options_.max_num_seqs, options_.max_num_batched_tokens, options_.max_model_len}, pool_) {
  // With step graphs the cache holds one page past the pool's: the padding rows of a graphed step use it.
  const bool graphs = use_graphs(backend, options_);
  const backend::KvCacheSpec spec =
      model_.kv_cache_spec(options_.num_pages + (graphs ? 1 : 0), options_.page_size, options_.kv_cache_dtype);
  cache_ = backend.alloc_kv_cache(spec);
  // A step holds at most the token budget and logits for at most max_num_seqs rows: allocate it now.
  model_.reserve(options_.max_num_batched_tokens, std::min(options_.max_num_seqs, options_.max_num_batched_tokens));
  if (graphs) model_.enable_graphs(graph_plan(options_, options_.num_pages), *cache_);
  const int64_t tokens = options_.num_pages * options_.page_size;
  log::info("KV cache: " + std::to_string(options_.num_pages) + " pages of " + std::to_string(options_.page_size) +
            " tokens (" + std::to_string(tokens) + " tokens, " + std::to_string(spec.bytes() >> 20) + " MiB " +
            backend::kv_cache_dtype_name(options_.kv_cache_dtype) + "); sequences of max_model_len " +
            std::to_string(options_.max_model_len) + " at once: " +
            std::to_string(options_.num_pages / pages_for(options_.max_model_len, options_.page_size)) +
            "; prefix caching " + (options_.prefix_caching ? "on" : "off"));
}

std::vector<int64_t> graph_batch_sizes(int64_t max_num_seqs) {
  std::vector<int64_t> sizes = {1};
  while (sizes.back() < max_num_seqs) sizes.push_back(sizes.back() < 8 ? 2 * sizes.back() : sizes.back() + 8);
  return sizes;
}

EngineCore::~EngineCore() { model_.disable_graphs(); }

int64_t EngineCore::add(const GenerateRequest& request) {
  const int64_t id = next_id_;
  add(request, id);
  return id;
}

void EngineCore::validate(const GenerateRequest& request) const {
  request.sampling.validate();
  const auto prompt_len = static_cast<int64_t>(request.prompt.size());
  if (prompt_len == 0) throw Error("the prompt is empty").hint("give at least one token");
  if (prompt_len > options_.max_model_len) {
    throw Error("the prompt has " + std::to_string(prompt_len) + " tokens, more than max_model_len " +
                std::to_string(options_.max_model_len))
        .hint("shorten the prompt or raise --max-model-len");
  }
  if (request.max_tokens < 0) throw Error("max_tokens must be >= 0, got " + std::to_string(request.max_tokens));
  if (request.logprobs && (*request.logprobs < 0 || *request.logprobs > backend::kMaxTopLogprobs)) {
    throw Error("logprobs must be 0 to " + std::to_string(backend::kMaxTopLogprobs) + ", got " +
                std::to_string(*request.logprobs));
  }
  const int64_t vocab = model_.config().vocab_size;
  for (size_t i = 0; i < request.prompt.size(); ++i) {
    if (request.prompt[i] < 0 || request.prompt[i] >= vocab) {
      throw Error("prompt token " + std::to_string(i) + " is " + std::to_string(request.prompt[i]) +
                  ", outside the vocabulary [0, " + std::to_string(vocab) + ")");
    }
  }
}

void EngineCore::add(const GenerateRequest& request, int64_t id) {
  validate(request);
  if (id < next_id_) throw Error("request id " + std::to_string(id) + " was already used");
  next_id_ = id + 1;
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->tokens = request.prompt;
  seq->max_tokens = request.max_tokens;
  seq->stop_token_ids = request.stop_token_ids;
  seq->logprobs = request.logprobs;
  seq->constraint = request.constraint;
  seq->arrival_time = std::chrono::steady_clock::now();
  seq->sampler = std::make_unique<Sampler>(request.sampling, options_.seed);
  scheduler_.add(std::move(seq));
}

bool EngineCore::cancel(int64_t id) { return scheduler_.cancel(id); }

RequestOutput EngineCore::event_for(const Sequence& seq, int64_t first_token) const {
  RequestOutput out;
  out.request_id = seq.id;
  out.tokens.assign(seq.output().begin() + first_token, seq.output().end());
  if (seq.logprobs) out.logprobs.assign(seq.output_logprobs.begin() + first_token, seq.output_logprobs.end());
  out.finish_reason = seq.finish_reason;
  out.prompt_tokens = seq.prompt_len;
  out.completion_tokens = seq.output_len();
  out.cached_tokens = std::max<int64_t>(seq.cached_tokens, 0);
  out.error = seq.error;
  const auto seconds = [&](std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(t - seq.arrival_time).count();
  };
  if (seq.output_len() > 0) out.time_to_first_token = seconds(seq.first_token_time);
  out.elapsed = seconds(std::chrono::steady_clock::now());
  return out;
}

void EngineCore::forward(const std::vector<ScheduledChunk>& chunks, std::vector<int32_t>& sampled) {
  backend::ForwardBatch& b = batch_;
  b.token_ids.clear();
  b.positions.clear();
  b.seq_index.clear();
  b.slot_mapping.clear();
  b.context_lens.clear();
  b.page_tables.clear();
  b.logit_rows.clear();
  size_t max_pages = 0;
  for (const ScheduledChunk& c : chunks) max_pages = std::max(max_pages, c.seq->pages.size());
  b.max_pages_per_seq = static_cast<int32_t>(max_pages);
  const int64_t page_size = options_.page_size;
  for (size_t s = 0; s < chunks.size(); ++s) {
    const ScheduledChunk& c = chunks[s];
    const Sequence& seq = *c.seq;
    for (int64_t p = c.begin; p < c.begin + c.count; ++p) {
      b.token_ids.push_back(seq.tokens[static_cast<size_t>(p)]);
      b.positions.push_back(static_cast<int32_t>(p));
      b.seq_index.push_back(static_cast<int32_t>(s));
      b.slot_mapping.push_back(static_cast<int64_t>(seq.pages[static_cast<size_t>(p / page_size)]) * page_size + p % page_size);
    }
    b.context_lens.push_back(static_cast<int32_t>(c.begin + c.count));
    b.page_tables.insert(b.page_tables.end(), seq.pages.begin(), seq.pages.end());
    b.page_tables.insert(b.page_tables.end(), max_pages - seq.pages.size(), -1);
    if (c.sample) b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size() - 1));
  }
  sampled.clear();
  // Log-probabilities when a sampled sequence asks: as many alternatives as the most demanding one.
  int64_t top_n = -1;
  for (const ScheduledChunk& c : chunks) {
    if (c.sample && c.seq->logprobs) top_n = std::max<int64_t>(top_n, *c.seq->logprobs);
  }
  logprobs_.top_n = std::max<int64_t>(top_n, 0);
  model::StepLogprobs* logprobs = top_n >= 0 ? &logprobs_ : nullptr;
  // Constrained sequences' masks, all bits set in the other rows; none when no sequence is constrained.
  masks_.clear();
  if (std::any_of(chunks.begin(), chunks.end(), [](const ScheduledChunk& c) { return c.sample && c.seq->constraint; })) {
    const auto words = static_cast<size_t>((model_.config().vocab_size + 31) / 32);
    for (const ScheduledChunk& c : chunks) {
      if (!c.sample) continue;
      const size_t at = masks_.size();
      masks_.resize(at + words, c.seq->constraint ? 0u : ~0u);
      if (c.seq->constraint) c.seq->constraint->allowed(std::span(masks_).subspan(at, words));
    }
  }
  // Every sampled sequence greedy: the backend takes the argmax. Otherwise it samples each row under its
  // request's knobs and uniform. Either way only ids (and asked log-probabilities) come back, never logits.
  const bool greedy = std::all_of(chunks.begin(), chunks.end(),
                                  [](const ScheduledChunk& c) { return !c.sample || c.seq->sampler->plain_greedy(); });
  if (greedy) {
    model_.forward_greedy(b, *cache_, sampled, logprobs, masks_);
  } else {
    rows_.clear();
    for (const ScheduledChunk& c : chunks) {
      if (c.sample) rows_.push_back(c.seq->sampler->row(c.seq->prompt(), c.seq->output()));
    }
    model_.forward_sample(b, *cache_, rows_, sampled, logprobs, masks_);
  }
  fail_refused_rows(chunks, sampled);
  accept_constrained(chunks, sampled);
  if (logprobs == nullptr) return;
  // Kept with the sequence for its next event; a refused row gets none (its request fails).
  size_t row = 0;
  for (const ScheduledChunk& c : chunks) {
    if (!c.sample) continue;
    const size_t r = row++;
    if (!c.seq->logprobs || sampled[r] < 0) continue;
    TokenLogprobs t;
    t.logprob = logprobs_.chosen[r];
    const auto n = static_cast<size_t>(*c.seq->logprobs), stride = static_cast<size_t>(logprobs_.top_n);
    for (size_t j = 0; j < n; ++j) {
      const int32_t id = logprobs_.top_ids[r * stride + j];
      if (id >= 0) t.top.emplace_back(id, logprobs_.top_logprobs[r * stride + j]);
    }
    c.seq->output_logprobs.push_back(std::move(t));
  }
}

std::vector<RequestOutput> EngineCore::step() {
  std::vector<RequestOutput> events;
  const std::vector<ScheduledChunk> chunks = scheduler_.schedule();
  if (!chunks.empty()) {
    std::vector<int32_t> sampled;
    try {
      forward(chunks, sampled);
    } catch (const std::exception& e) {
      // The step's state is unknown: fail what is unfinished, keep serving new requests.
      return fail_all(e.what());
    }
    scheduler_.complete(chunks, sampled);
    for (const ScheduledChunk& c : chunks) {
      // Sequences that finished report below, from take_finished(), with their finish reason.
      if (c.sample && c.seq->finish_reason == FinishReason::none) events.push_back(event_for(*c.seq, c.seq->output_len() - 1));
    }
  }
  for (auto& seq : scheduler_.take_finished()) {
    // The token sampled this step, if any, is in this last event.
    const bool sampled_now = seq->finish_reason == FinishReason::stop || seq->finish_reason == FinishReason::length;
    const int64_t first = sampled_now && seq->output_len() > 0 ? seq->output_len() - 1 : seq->output_len();
    events.push_back(event_for(*seq, first));
  }
  return events;
}

std::vector<RequestOutput> EngineCore::fail_all(const std::string& message) {
  std::vector<RequestOutput> events;
  scheduler_.fail_all();
  for (auto& seq : scheduler_.take_finished()) {
    if (seq->finish_reason == FinishReason::error) seq->error = message;
    RequestOutput out = event_for(*seq, seq->output_len());
    events.push_back(std::move(out));
  }
  return events;
}

}  // namespace adallm::engine
