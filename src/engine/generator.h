// One sequence at a time on top of a Model: chunked prefill, token-by-token decode with the sampler, and
// scoring (the logits of every position). It keeps the KV of what it last ran, so a follow-up whose
// tokens extend it (the next turn of a chat) computes only the new suffix. This is what `adallm run`,
// `logits` and `perplexity` use; continuous batching of many sequences is the serving engine's job.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "adallm/sampling_params.h"
#include "backend/backend.h"
#include "kv/page_allocator.h"
#include "model/model.h"

namespace adallm::engine {

struct GeneratorOptions {
  int64_t max_context = 0;     // tokens the cache holds; 0: min(max_position_embeddings, 8192)
  int64_t page_size = 16;      // tokens per KV page
  int64_t prefill_chunk = 256;  // tokens per forward step while prefilling
  backend::KvCacheDType kv_cache_dtype = backend::KvCacheDType::fp8_e4m3;
  uint64_t seed = 0;  // used when SamplingParams has none
};

struct GenerationResult {
  std::vector<int32_t> tokens;  // generated, the stop token included when one ended it
  std::string finish_reason;    // "stop" (a stop token), "length" (max_tokens or the context), "cancelled"
  int64_t prompt_tokens = 0;
  int64_t cached_prompt_tokens = 0;  // prompt tokens whose KV was reused from the previous call
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;
};

class Generator {
 public:
  Generator(model::Model& model, backend::Backend& backend, const GeneratorOptions& options);

  int64_t max_context() const { return max_context_; }
  const backend::KvCacheSpec& cache_spec() const { return cache_->spec(); }

  // Logits [tokens.size(), vocab_size] of every position, from an empty cache.
  std::vector<float> score(std::span<const int32_t> tokens);

  // Runs `prompt` (reusing the cached prefix it shares with the previous call), then samples up to
  // max_tokens tokens, calling on_token for each as it comes. Stops at a token of stop_token_ids, at
  // max_tokens or when prompt + output fill the context, or when `cancel` becomes true (checked between tokens).
  GenerationResult generate(std::span<const int32_t> prompt, const SamplingParams& params, int64_t max_tokens,
                            std::span<const int32_t> stop_token_ids, const std::function<void(int32_t)>& on_token,
                            const std::atomic<bool>* cancel = nullptr);

  // Drops the cached history.
  void reset();

 private:
  // Appends `tokens` to the cached sequence in chunks; `logits` receives the rows of the positions
  // listed by `all_rows` (every row) or only the last token's.
  void extend(std::span<const int32_t> tokens, bool all_rows, std::vector<float>& logits);

  model::Model& model_;
  backend::Backend& backend_;
  GeneratorOptions options_;
  int64_t max_context_ = 0;
  std::unique_ptr<backend::KvCache> cache_;
  kv::PageAllocator pages_;
  kv::SequencePages sequence_;
  std::vector<int32_t> cached_;  // tokens whose K/V are in the cache, in position order
};

}  // namespace adallm::engine
