// The serving engine's step loop without threads: requests in, one forward step at a time over every
// scheduled sequence (continuous batching, chunked prefill, prefix caching, preemption), token events
// out. engine/engine.h runs it on its own thread behind a thread-safe API; tests and `bench` may drive it
// directly.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "adallm/request.h"
#include "backend/backend.h"
#include "engine/scheduler.h"
#include "kv/page_pool.h"
#include "model/model.h"

namespace adallm::engine {

struct EngineOptions {
  int64_t max_model_len = 0;  // 0: min(max_position_embeddings, 8192)
  int64_t max_num_seqs = 256;
  int64_t max_num_batched_tokens = 2048;
  // The KV pool, by page count or by bytes (at most one of the two). Neither: on a GPU, what is left of
  // gpu_memory_utilization · total device memory once the weights are loaded and a step of
  // max_num_batched_tokens tokens has run (its activations and workspaces); on the CPU, room for
  // min(max_num_seqs, 4) sequences of max_model_len.
  int64_t num_pages = 0;
  int64_t kv_cache_memory = 0;
  double gpu_memory_utilization = 0.9;  // (0, 1]
  int64_t page_size = 16;
  bool prefix_caching = true;
  backend::KvCacheDType kv_cache_dtype = backend::KvCacheDType::fp8_e4m3;
  uint64_t seed = 0;  // for requests whose SamplingParams have none
  // Decode steps of up to max_num_seqs sequences replay step graphs recorded at start (padded to 1, 2, 4,
  // 8, then multiples of 8) on a backend that records them; true runs every step eagerly.
  bool enforce_eager = false;
};

// The padded decode batch sizes step graphs are recorded for: 1, 2, 4, 8, then multiples of 8, up to the
// first that holds max_num_seqs sequences.
std::vector<int64_t> graph_batch_sizes(int64_t max_num_seqs);

class EngineCore {
 public:
  // Sizes and allocates the KV cache. Throws adallm::Error for inconsistent options.
  EngineCore(model::Model& model, backend::Backend& backend, const EngineOptions& options);
  ~EngineCore();  // the model's step graphs (which read this engine's cache) go with it
  EngineCore(const EngineCore&) = delete;
  EngineCore& operator=(const EngineCore&) = delete;

  const EngineOptions& options() const { return options_; }  // with the defaults resolved
  int64_t vocab_size() const { return model_.config().vocab_size; }
  const kv::PagePool& pages() const { return pool_; }
  const Scheduler& scheduler() const { return scheduler_; }

  // Validates and queues a request; returns its id (1, 2, ...). Throws adallm::Error naming the problem
  // (empty prompt, a prompt longer than max_model_len, a token id outside the vocabulary, negative
  // max_tokens, a sampling field out of range): nothing is queued then.
  int64_t add(const GenerateRequest& request);
  // The same with the caller's id, which must exceed every id used before.
  void add(const GenerateRequest& request, int64_t id);
  // The checks add() makes, without queueing anything; safe from any thread.
  void validate(const GenerateRequest& request) const;
  // Cancels a queued or running request: its last event (FinishReason::cancelled) comes from the next
  // step(). False for an unknown or finished id.
  bool cancel(int64_t id);

  // Runs one forward step (if anything is scheduled) and returns the events it produced: one per request
  // that got a token or finished. A forward pass that throws fails every unfinished request
  // (FinishReason::error with the message) and the engine stays usable.
  std::vector<RequestOutput> step();

  bool idle() const { return scheduler_.idle(); }

  // Ends every unfinished request with FinishReason::error and `message`; returns their last events.
  std::vector<RequestOutput> fail_all(const std::string& message);

 private:
  void forward(const std::vector<ScheduledChunk>& chunks, std::vector<int32_t>& sampled);
  RequestOutput event_for(const Sequence& seq, int64_t first_token) const;

  model::Model& model_;
  EngineOptions options_;
  kv::PagePool pool_;
  Scheduler scheduler_;
  std::unique_ptr<backend::KvCache> cache_;
  int64_t next_id_ = 1;
  std::vector<backend::SamplingRow> rows_;  // the sampled rows of a step that is not all greedy
  model::StepLogprobs logprobs_;            // a step's log-probabilities, when a sequence asks
  std::vector<uint32_t> masks_;             // a step's token masks, when a sequence is constrained
  backend::ForwardBatch batch_;
};

}  // namespace adallm::engine
