// The forward batch the GPU benchmarks run: `batch` sequences of `context` keys each, every one bringing
// its last `new_tokens` tokens (1: decoding; more: a prefill chunk), one logit row each (the last token),
// pages dealt out in order.
#pragma once

#include <cstdint>

#include "backend/batch.h"

namespace adallm::bench {

inline backend::ForwardBatch decode_batch(int64_t batch, int64_t context, int64_t page_size, int64_t new_tokens = 1) {
  backend::ForwardBatch b;
  const int64_t pages = (context + page_size - 1) / page_size;
  b.max_pages_per_seq = static_cast<int32_t>(pages);
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t p = 0; p < pages; ++p) b.page_tables.push_back(static_cast<int32_t>(s * pages + p));
    b.context_lens.push_back(static_cast<int32_t>(context));
    for (int64_t position = context - new_tokens; position < context; ++position) {
      b.token_ids.push_back(static_cast<int32_t>(1000 + 7 * s + position % 13));
      b.positions.push_back(static_cast<int32_t>(position));
      b.seq_index.push_back(static_cast<int32_t>(s));
      b.slot_mapping.push_back((s * pages + position / page_size) * page_size + position % page_size);
    }
    b.logit_rows.push_back(static_cast<int32_t>(b.token_ids.size() - 1));
  }
  return b;
}

}  // namespace adallm::bench
