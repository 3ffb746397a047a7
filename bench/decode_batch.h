// The forward batch the GPU benchmarks decode: `batch` sequences of `context` keys each, every one decoding
// its last token (one logit row each), pages dealt out in order.
#pragma once

#include <cstdint>

#include "backend/batch.h"

namespace adallm::bench {

inline backend::ForwardBatch decode_batch(int64_t batch, int64_t context, int64_t page_size) {
  backend::ForwardBatch b;
  const int64_t pages = (context + page_size - 1) / page_size;
  b.max_pages_per_seq = static_cast<int32_t>(pages);
  for (int64_t s = 0; s < batch; ++s) {
    for (int64_t p = 0; p < pages; ++p) b.page_tables.push_back(static_cast<int32_t>(s * pages + p));
    b.context_lens.push_back(static_cast<int32_t>(context));
    b.token_ids.push_back(static_cast<int32_t>(1000 + 7 * s));
    b.positions.push_back(static_cast<int32_t>(context - 1));
    b.seq_index.push_back(static_cast<int32_t>(s));
    b.slot_mapping.push_back((s * pages + (context - 1) / page_size) * page_size + (context - 1) % page_size);
    b.logit_rows.push_back(static_cast<int32_t>(s));
  }
  return b;
}

}  // namespace adallm::bench
