// Continuous-batching scheduler (see scheduler.h).
#include "engine/scheduler.h"

#include <algorithm>
#include <string>
#include <utility>

#include "core/error.h"

namespace adallm::engine {
namespace {

int64_t pages_for(int64_t tokens, int64_t page_size) { return (tokens + page_size - 1) / page_size; }

}  // namespace

Scheduler::Scheduler(const SchedulerOptions& options, kv::PagePool& pool) : options_(options), pool_(pool) {
  if (options_.max_num_seqs <= 0) throw Error("max_num_seqs must be positive, got " + std::to_string(options_.max_num_seqs));
  if (options_.max_num_batched_tokens <= 0) {
    throw Error("max_num_batched_tokens must be positive, got " + std::to_string(options_.max_num_batched_tokens));
  }
  if (options_.max_model_len <= 0) throw Error("max_model_len must be positive, got " + std::to_string(options_.max_model_len));
  const int64_t needed = pages_for(options_.max_model_len, pool_.page_size());
  if (needed > pool_.num_pages()) {
    throw Error("the KV cache holds " + std::to_string(pool_.num_pages() * pool_.page_size()) +
                " tokens, fewer than one sequence of max_model_len " + std::to_string(options_.max_model_len))
        .hint("lower --max-model-len or give the KV cache more memory");
  }
}

void Scheduler::add(std::unique_ptr<Sequence> seq) {
  seq->prompt_len = static_cast<int64_t>(seq->tokens.size());
  if (seq->prompt_len < 1 || seq->prompt_len > options_.max_model_len) {
    throw Error("sequence " + std::to_string(seq->id) + " has a prompt of " + std::to_string(seq->prompt_len) +
                " tokens; 1 to max_model_len " + std::to_string(options_.max_model_len) + " are allowed");
  }
  if (seq->max_tokens <= 0 || seq->prompt_len == options_.max_model_len) {
    // Nothing to generate: done without running (a full-context prompt leaves no room for a token).
    seq->cached_tokens = 0;
    retire(std::move(seq), FinishReason::length);
    return;
  }
  waiting_.push_back(std::move(seq));
}

bool Scheduler::cancel(int64_t id) {
  for (auto& s : waiting_) {
    if (s->id == id) return s->cancel_requested = true;
  }
  for (auto& s : running_) {
    if (s->id == id) return s->cancel_requested = true;
  }
  return false;
}

void Scheduler::drop_cancelled() {
  const auto drop = [&](auto& list) {  // the waiting deque or the running vector
    for (auto it = list.begin(); it != list.end();) {
      if (!(*it)->cancel_requested) {
        ++it;
        continue;
      }
      std::unique_ptr<Sequence> seq = std::move(*it);
      it = list.erase(it);
      retire(std::move(seq), FinishReason::cancelled);
    }
  };
  drop(waiting_);
  drop(running_);
}

bool Scheduler::grow(Sequence& seq, int64_t num_tokens) {
  const int64_t needed = pages_for(num_tokens, pool_.page_size());
  while (static_cast<int64_t>(seq.pages.size()) < needed) {
    const int32_t page = pool_.allocate();
    if (page < 0) return false;
    seq.pages.push_back(page);
  }
  return true;
}

void Scheduler::release_pages(Sequence& seq) {
  // Last page first: a cached prefix's first pages are then the most recently used and evicted last.
  for (auto it = seq.pages.rbegin(); it != seq.pages.rend(); ++it) pool_.release(*it);
  seq.pages.clear();
  seq.num_computed = 0;
}

void Scheduler::preempt(Sequence* seq) {
  const auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s.get() == seq; });
  std::unique_ptr<Sequence> victim = std::move(*it);
  running_.erase(it);
  release_pages(*victim);
  victim->running = false;
  ++preemptions_;
  // To the front: preempted sequences were admitted before every waiting one. Preempting newest first
  // leaves the oldest of them at the front.
  waiting_.push_front(std::move(victim));
}

void Scheduler::admit_prefix(Sequence& seq) {
  // Full pages before the last token: that one is always computed, its logits pick the next token.
  const int64_t page_size = pool_.page_size();
  const int64_t full = (static_cast<int64_t>(seq.tokens.size()) - 1) / page_size;
  for (int64_t i = 0; i < full; ++i) {
    const int32_t parent = i == 0 ? -1 : seq.pages.back();
    const int32_t page = pool_.lookup(parent, std::span<const int32_t>(seq.tokens).subspan(i * page_size, page_size));
    if (page < 0) break;
    seq.pages.push_back(page);
  }
  seq.num_computed = static_cast<int64_t>(seq.pages.size()) * page_size;
  if (seq.cached_tokens < 0) seq.cached_tokens = std::min(seq.num_computed, seq.prompt_len);
}

std::vector<ScheduledChunk> Scheduler::schedule() {
  drop_cancelled();
  std::vector<ScheduledChunk> chunks;
  int64_t budget = options_.max_num_batched_tokens;
  const auto total = [](const Sequence& s) { return static_cast<int64_t>(s.tokens.size()); };

  // Running sequences: decodes, then unfinished prefills, each in admission order.
  std::vector<Sequence*> order;
  for (auto& s : running_) {
    if (total(*s) - s->num_computed == 1) order.push_back(s.get());
  }
  for (auto& s : running_) {
    if (total(*s) - s->num_computed > 1) order.push_back(s.get());
  }
  for (Sequence* seq : order) seq->scheduled = false;
  const int64_t preemptions_before = preemptions_;
  for (Sequence* seq : order) {
    if (budget == 0) break;
    if (!seq->running) continue;  // preempted earlier in this step
    const int64_t count = std::min(total(*seq) - seq->num_computed, budget);
    bool fits = grow(*seq, seq->num_computed + count);
    while (!fits) {
      // Out of pages: the newest running sequence without a chunk this step gives way; when that is this
      // one (none newer is left), it gives way itself.
      Sequence* victim = nullptr;
      for (auto it = running_.rbegin(); it != running_.rend() && victim == nullptr; ++it) {
        if (!(*it)->scheduled) victim = it->get();
      }
      preempt(victim);  // never null: `seq` itself is running and unscheduled
      if (victim == seq) break;
      fits = grow(*seq, seq->num_computed + count);
    }
    if (!fits) continue;
    seq->scheduled = true;
    chunks.push_back({seq, seq->num_computed, count, seq->num_computed + count == total(*seq)});
    budget -= count;
  }

  // Waiting sequences in arrival order, as long as the head fits: a request that cannot start blocks
  // the ones behind it, so none of them is starved by later, smaller ones. Not in a step that had to
  // preempt: pages are short, and the sequence just preempted would come straight back.
  while (budget > 0 && !waiting_.empty() && static_cast<int64_t>(running_.size()) < options_.max_num_seqs &&
         preemptions_ == preemptions_before) {
    Sequence& seq = *waiting_.front();
    admit_prefix(seq);
    const int64_t count = std::min(total(seq) - seq.num_computed, budget);
    if (!grow(seq, seq.num_computed + count)) {
      release_pages(seq);  // the cached pages it took stay cached
      break;
    }
    chunks.push_back({&seq, seq.num_computed, count, seq.num_computed + count == total(seq)});
    budget -= count;
    seq.running = true;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
  }
  return chunks;
}

void Scheduler::publish_full_pages(Sequence& seq, int64_t from_tokens) {
  const int64_t page_size = pool_.page_size();
  for (int64_t i = from_tokens / page_size; (i + 1) * page_size <= seq.num_computed; ++i) {
    const int32_t parent = i == 0 ? -1 : seq.pages[static_cast<size_t>(i - 1)];
    pool_.publish(seq.pages[static_cast<size_t>(i)], parent,
                  std::span<const int32_t>(seq.tokens).subspan(static_cast<size_t>(i * page_size), static_cast<size_t>(page_size)));
  }
}

void Scheduler::complete(std::span<const ScheduledChunk> chunks, std::span<const int32_t> sampled) {
  size_t next = 0;
  std::vector<Sequence*> done;
  for (const ScheduledChunk& chunk : chunks) {
    Sequence& seq = *chunk.seq;
    const int64_t before = seq.num_computed;
    seq.num_computed = chunk.begin + chunk.count;
    publish_full_pages(seq, before);
    if (!chunk.sample) continue;
    if (next >= sampled.size()) throw Error("scheduler: fewer sampled tokens than chunks that sample");
    const int32_t token = sampled[next++];
    if (token < 0) {
      seq.finish_reason = FinishReason::error;
      done.push_back(&seq);
      continue;
    }
    if (seq.output_len() == 0) seq.first_token_time = std::chrono::steady_clock::now();
    seq.tokens.push_back(token);
    if (std::find(seq.stop_token_ids.begin(), seq.stop_token_ids.end(), token) != seq.stop_token_ids.end() ||
        (seq.constraint && seq.constraint->finished())) {
      seq.finish_reason = FinishReason::stop;
    } else if (seq.output_len() >= seq.max_tokens ||
               static_cast<int64_t>(seq.tokens.size()) >= options_.max_model_len) {
      seq.finish_reason = FinishReason::length;
    }
    if (seq.finish_reason != FinishReason::none) done.push_back(&seq);
  }
  for (Sequence* seq : done) {
    const auto it = std::find_if(running_.begin(), running_.end(), [&](const auto& s) { return s.get() == seq; });
    std::unique_ptr<Sequence> owned = std::move(*it);
    running_.erase(it);
    retire(std::move(owned), seq->finish_reason);
  }
}

void Scheduler::retire(std::unique_ptr<Sequence> seq, FinishReason reason) {
  release_pages(*seq);
  seq->running = false;
  seq->finish_reason = reason;
  if (seq->cached_tokens < 0) seq->cached_tokens = 0;
  finished_.push_back(std::move(seq));
}

void Scheduler::fail_all() {
  while (!running_.empty()) {
    std::unique_ptr<Sequence> seq = std::move(running_.back());
    running_.pop_back();
    retire(std::move(seq), FinishReason::error);
  }
  while (!waiting_.empty()) {
    std::unique_ptr<Sequence> seq = std::move(waiting_.front());
    waiting_.pop_front();
    retire(std::move(seq), FinishReason::error);
  }
}

std::vector<std::unique_ptr<Sequence>> Scheduler::take_finished() { return std::exchange(finished_, {}); }

}  // namespace adallm::engine
