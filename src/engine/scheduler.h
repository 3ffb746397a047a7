// The continuous-batching scheduler: which tokens of which sequences run in the next forward step, and
// the KV pages they need. Every sequence is a list of tokens (prompt, then output) of which the first
// num_computed have K/V in the cache; a step computes a chunk of the rest, and samples a token when the
// chunk reaches the end. Decodes (one token left) go first, then unfinished prefills, then waiting
// sequences in arrival order, within a token budget and a sequence cap. When pages run out the newest
// running sequence is preempted: its pages are released and it waits again at the front, to be
// recomputed (the prefix cache usually gives most of it back). It owns no model and samples nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "adallm/request.h"
#include "engine/sampler.h"
#include "kv/page_pool.h"

namespace adallm::engine {

struct Sequence {
  int64_t id = 0;
  std::vector<int32_t> tokens;  // prompt then output, in position order
  int64_t prompt_len = 0;
  int64_t max_tokens = 0;
  std::vector<int32_t> stop_token_ids;
  std::unique_ptr<Sampler> sampler;
  std::optional<int32_t> logprobs;             // the request's: top alternatives per token, unset for none
  std::vector<TokenLogprobs> output_logprobs;  // one per output token when logprobs is set
  std::shared_ptr<TokenConstraint> constraint;  // the request's, or null; has accepted every output token

  int64_t num_computed = 0;    // tokens whose K/V are in the cache
  std::vector<int32_t> pages;  // page table: position p in pages[p / page_size]
  int64_t cached_tokens = -1;  // prompt tokens found in the prefix cache at first admission (-1: not yet)
  bool cancel_requested = false;
  // The scheduler's marks while it plans a step: in running_, and given a chunk in this step.
  bool running = false;
  bool scheduled = false;
  std::chrono::steady_clock::time_point arrival_time{};      // when the engine took it
  std::chrono::steady_clock::time_point first_token_time{};  // when its first token was sampled
  FinishReason finish_reason = FinishReason::none;
  std::string error;  // FinishReason::error: what went wrong

  int64_t output_len() const { return static_cast<int64_t>(tokens.size()) - prompt_len; }
  std::span<const int32_t> prompt() const { return {tokens.data(), static_cast<size_t>(prompt_len)}; }
  std::span<const int32_t> output() const {
    return {tokens.data() + prompt_len, static_cast<size_t>(output_len())};
  }
};

// Tokens [begin, begin + count) of `seq` run this step; when `sample`, the step ends at the sequence's
// last token and its logits pick the next one.
struct ScheduledChunk {
  Sequence* seq = nullptr;
  int64_t begin = 0;
  int64_t count = 0;
  bool sample = false;
};

struct SchedulerOptions {
  int64_t max_num_seqs = 256;              // sequences running at once
  int64_t max_num_batched_tokens = 2048;   // tokens per step
  int64_t max_model_len = 0;               // prompt + output tokens of one sequence
};

class Scheduler {
 public:
  // Throws adallm::Error for a non-positive option, or a pool that cannot hold one max_model_len sequence.
  Scheduler(const SchedulerOptions& options, kv::PagePool& pool);

  const SchedulerOptions& options() const { return options_; }

  // Queues a sequence (tokens = its prompt; 1 <= prompt_len <= max_model_len, checked by the caller).
  void add(std::unique_ptr<Sequence> seq);
  // Marks a sequence for cancellation: the next schedule() finishes it and frees its pages. False when
  // no unfinished sequence has that id.
  bool cancel(int64_t id);

  // The next step's chunks (empty when there is nothing to run). Sequences cancelled, or preempted to make
  // room, are handled first; cancelled ones come out of take_finished().
  std::vector<ScheduledChunk> schedule();

  // After the forward pass: `sampled` holds one token per chunk with sample set, in order (-1 where that
  // sequence's sampling failed: it finishes with FinishReason::error and seq->error set by the caller).
  // Appends them, applies stop ids, finished constraints (both FinishReason::stop), max_tokens and
  // max_model_len, publishes the pages that became full, and retires the sequences that finished.
  void complete(std::span<const ScheduledChunk> chunks, std::span<const int32_t> sampled);

  // Fails every unfinished sequence with FinishReason::error (after a forward pass threw) and frees them.
  void fail_all();

  // Sequences finished since the last call, their pages released.
  std::vector<std::unique_ptr<Sequence>> take_finished();

  // Running sequences in admission order (for metrics and tests).
  const std::vector<std::unique_ptr<Sequence>>& running() const { return running_; }
  int64_t num_running() const { return static_cast<int64_t>(running_.size()); }
  int64_t num_preemptions() const { return preemptions_; }
  // Nothing waiting, running, or finished and not yet taken.
  bool idle() const { return waiting_.empty() && running_.empty() && finished_.empty(); }

 private:
  bool grow(Sequence& seq, int64_t num_tokens);  // pages for positions [0, num_tokens); false if none left
  void preempt(Sequence* seq);                    // frees a running sequence; it waits again at the front
  void admit_prefix(Sequence& seq);               // takes the cached full pages of a waiting sequence
  void publish_full_pages(Sequence& seq, int64_t from_tokens);
  void release_pages(Sequence& seq);
  void retire(std::unique_ptr<Sequence> seq, FinishReason reason);
  void drop_cancelled();

  SchedulerOptions options_;
  kv::PagePool& pool_;
  std::deque<std::unique_ptr<Sequence>> waiting_;   // arrival order; preempted sequences return to the front
  std::vector<std::unique_ptr<Sequence>> running_;  // admission order: the last is the newest
  std::vector<std::unique_ptr<Sequence>> finished_;
  int64_t preemptions_ = 0;
};

}  // namespace adallm::engine
