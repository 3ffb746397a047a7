// What one forward pass works on, as flat POD arrays (the batch builder's output): the tokens of every
// sequence in the step, their positions, where their K/V go in the paged cache, and each sequence's page
// table. Building it (scheduling, page allocation) is the engine's job; uploading it is the backend's.
#pragma once

#include <cstdint>
#include <vector>

namespace adallm::backend {

struct ForwardBatch {
  // Per token, grouped by sequence (a sequence's tokens are consecutive and in position order).
  std::vector<int32_t> token_ids;     // [num_tokens]
  std::vector<int32_t> positions;     // [num_tokens] absolute position in its sequence
  std::vector<int32_t> seq_index;     // [num_tokens] which sequence (row of page_tables)
  std::vector<int64_t> slot_mapping;  // [num_tokens] page_id * page_size + offset: where its K/V go

  // Per sequence. A token at position p attends to the keys at positions 0..p of its sequence (those in
  // the cache before this step and those this step writes), found through the page table:
  // key j lives in page page_tables[s * max_pages_per_seq + j / page_size], slot j % page_size.
  std::vector<int32_t> context_lens;  // [num_seqs] keys in the cache once this step has written
  std::vector<int32_t> page_tables;   // [num_seqs, max_pages_per_seq] page ids, -1 past the end
  int32_t max_pages_per_seq = 0;

  // Token rows whose logits the caller wants (the last token of each sequence when decoding; every row
  // for `adallm logits` and perplexity).
  std::vector<int32_t> logit_rows;  // [num_logits]

  // 0, or the keys attention plans its work for when that is more than any token of the step sees (a step
  // graph recorded once for contexts up to this length; each token still reads only its own keys).
  int32_t plan_keys = 0;

  int64_t num_tokens() const { return static_cast<int64_t>(token_ids.size()); }
  int64_t num_seqs() const { return static_cast<int64_t>(context_lens.size()); }
  // Throws adallm::Error when the arrays disagree in size or point outside the cache (num_pages pages
  // of page_size slots): a malformed batch must not reach a kernel.
  void validate(int64_t num_pages, int64_t page_size) const;
};

// `count` consecutive tokens of one sequence, starting at token `first` of a ForwardBatch.
struct TokenRun {
  int32_t first = 0;
  int32_t count = 0;
};

// A step's tokens for the attention kernels: each token alone of its sequence in the step is a decode run
// of one token; the tokens of sequences with several are cut, per sequence, into prefill runs of at most
// `max_tokens`. Every token is in exactly one run; runs keep the batch's token order.
struct AttentionRuns {
  std::vector<TokenRun> decode;
  std::vector<TokenRun> prefill;
};
AttentionRuns attention_runs(const ForwardBatch& batch, int32_t max_tokens);

}  // namespace adallm::backend
