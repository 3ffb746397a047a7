// Single-sequence generation and scoring (see generator.h).
#include "engine/generator.h"

#include <algorithm>
#include <chrono>
#include <string>

#include "core/error.h"
#include "engine/sampler.h"

namespace adallm::engine {
namespace {

int64_t context_of(const model::Model& model, const GeneratorOptions& options) {
  const int64_t limit = model.config().max_position_embeddings > 0 ? model.config().max_position_embeddings : 8192;
  const int64_t context = options.max_context > 0 ? options.max_context : std::min<int64_t>(limit, 8192);
  if (context <= 0) throw Error("max context must be positive, got " + std::to_string(context));
  return context;
}

int64_t pages_for(int64_t tokens, int64_t page_size) {
  if (page_size <= 0) throw Error("KV page size must be positive, got " + std::to_string(page_size));
  return (tokens + page_size - 1) / page_size;
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

Generator::Generator(model::Model& model, backend::Backend& backend, const GeneratorOptions& options)
    : model_(model),
      backend_(backend),
      options_(options),
      max_context_(context_of(model, options)),
      pages_(pages_for(max_context_, options.page_size)),
      sequence_(options.page_size) {
  if (options_.prefill_chunk <= 0) throw Error("prefill chunk must be positive");
  cache_ = backend_.alloc_kv_cache(
      model_.kv_cache_spec(pages_for(max_context_, options_.page_size), options_.page_size, options_.kv_cache_dtype));
  if (!sequence_.reserve(pages_, max_context_)) throw Error("KV cache has too few pages for its own context");
}

void Generator::reset() { cached_.clear(); }

void Generator::extend(std::span<const int32_t> tokens, bool all_rows, std::vector<float>& logits) {
  if (static_cast<int64_t>(cached_.size() + tokens.size()) > max_context_) {
    throw Error("sequence of " + std::to_string(cached_.size() + tokens.size()) + " tokens exceeds the context of " +
                std::to_string(max_context_))
        .hint("raise --max-context (up to max_position_embeddings) or shorten the input");
  }
  logits.clear();
  std::vector<float> step_logits;
  backend::ForwardBatch batch;
  batch.max_pages_per_seq = static_cast<int32_t>(sequence_.pages().size());
  batch.page_tables = sequence_.pages();
  for (size_t begin = 0; begin < tokens.size(); begin += static_cast<size_t>(options_.prefill_chunk)) {
    const size_t end = std::min(tokens.size(), begin + static_cast<size_t>(options_.prefill_chunk));
    const bool last_chunk = end == tokens.size();
    batch.token_ids.assign(tokens.begin() + static_cast<std::ptrdiff_t>(begin),
                           tokens.begin() + static_cast<std::ptrdiff_t>(end));
    const auto n = static_cast<int32_t>(end - begin);
    batch.positions.resize(static_cast<size_t>(n));
    batch.seq_index.assign(static_cast<size_t>(n), 0);
    batch.slot_mapping.resize(static_cast<size_t>(n));
    const auto first = static_cast<int32_t>(cached_.size());
    for (int32_t i = 0; i < n; ++i) {
      batch.positions[static_cast<size_t>(i)] = first + i;
      batch.slot_mapping[static_cast<size_t>(i)] = sequence_.slot(first + i);
    }
    batch.context_lens = {first + n};
    batch.logit_rows.clear();
    if (all_rows) {
      for (int32_t i = 0; i < n; ++i) batch.logit_rows.push_back(i);
    } else if (last_chunk) {
      batch.logit_rows.push_back(n - 1);
    }
    model_.forward(batch, *cache_, step_logits);
    logits.insert(logits.end(), step_logits.begin(), step_logits.end());
    cached_.insert(cached_.end(), batch.token_ids.begin(), batch.token_ids.end());
  }
}

std::vector<float> Generator::score(std::span<const int32_t> tokens) {
  reset();
  std::vector<float> logits;
  if (!tokens.empty()) extend(tokens, true, logits);
  return logits;
}

GenerationResult Generator::generate(std::span<const int32_t> prompt, const SamplingParams& params,
                                     int64_t max_tokens, std::span<const int32_t> stop_token_ids,
                                     const std::function<void(int32_t)>& on_token,
                                     const std::atomic<bool>* cancel) {
  params.validate();
  if (prompt.empty()) throw Error("the prompt is empty").hint("give at least one token");
  if (max_tokens < 0) throw Error("max_tokens must be >= 0, got " + std::to_string(max_tokens));
  GenerationResult result;
  result.prompt_tokens = static_cast<int64_t>(prompt.size());

  // Reuse the cached prefix, but always recompute at least the last prompt token: its logits are needed.
  size_t common = 0;
  while (common < cached_.size() && common + 1 < prompt.size() && cached_[common] == prompt[common]) ++common;
  cached_.resize(common);
  result.cached_prompt_tokens = static_cast<int64_t>(common);

  const auto prefill_start = std::chrono::steady_clock::now();
  std::vector<float> logits;
  extend(prompt.subspan(common), false, logits);
  result.prefill_seconds = seconds_since(prefill_start);

  Sampler sampler(params, options_.seed);
  const auto decode_start = std::chrono::steady_clock::now();
  result.finish_reason = "length";
  for (int64_t i = 0; i < max_tokens; ++i) {
    if (cancel && cancel->load()) {
      result.finish_reason = "cancelled";
      break;
    }
    if (static_cast<int64_t>(prompt.size() + result.tokens.size()) >= max_context_) break;  // context full
    const int32_t token = sampler.sample(logits, prompt, result.tokens);
    result.tokens.push_back(token);
    if (on_token) on_token(token);
    if (std::find(stop_token_ids.begin(), stop_token_ids.end(), token) != stop_token_ids.end()) {
      result.finish_reason = "stop";
      break;
    }
    if (i + 1 == max_tokens || static_cast<int64_t>(prompt.size() + result.tokens.size()) >= max_context_) break;
    const int32_t next[] = {token};
    extend(next, false, logits);
  }
  result.decode_seconds = seconds_since(decode_start);
  return result;
}

}  // namespace adallm::engine
