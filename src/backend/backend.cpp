// Out-of-line pieces of the Backend interface: tensor views, KV cache sizes and names, batch checks.
#include "backend/backend.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "core/error.h"

namespace adallm::backend {

void Backend::begin_graph() { throw Error("the " + name() + " backend does not record step graphs"); }
std::unique_ptr<Graph> Backend::end_graph() { throw Error("the " + name() + " backend does not record step graphs"); }
void Backend::replay_graph(const Graph&) { throw Error("the " + name() + " backend does not record step graphs"); }

Tensor Tensor::row_slice(int64_t first, int64_t count) const {
  if (first < 0 || count < 0 || first + count > rows) {
    throw Error("row slice [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of " +
                describe());
  }
  Tensor t = *this;
  t.data = static_cast<char*>(data) + first * stride * static_cast<int64_t>(dtype_size(dtype));
  t.rows = count;
  return t;
}

Tensor Tensor::col_slice(int64_t first, int64_t count) const {
  if (first < 0 || count < 0 || first + count > cols) {
    throw Error("column slice [" + std::to_string(first) + ", " + std::to_string(first + count) + ") of " +
                describe());
  }
  Tensor t = *this;
  t.data = static_cast<char*>(data) + first * static_cast<int64_t>(dtype_size(dtype));
  t.cols = count;
  return t;
}

std::string Tensor::describe() const {
  return std::string(dtype_name(dtype)) + " [" + std::to_string(rows) + ", " + std::to_string(cols) +
         "] stride " + std::to_string(stride);
}

const char* kv_cache_dtype_name(KvCacheDType dtype) {
  return dtype == KvCacheDType::bf16 ? "bf16" : "fp8";
}

KvCacheDType parse_kv_cache_dtype(const std::string& name) {
  if (name == "bf16" || name == "bfloat16") return KvCacheDType::bf16;
  if (name == "fp8" || name == "fp8_e4m3") return KvCacheDType::fp8_e4m3;
  throw Error("unknown KV cache dtype \"" + name + "\"").hint("use fp8 or bf16");
}

int64_t KvCacheSpec::bytes_per_token_per_layer() const {
  return 2 * num_key_value_heads * head_dim * (dtype == KvCacheDType::bf16 ? 2 : 1);
}

int64_t KvCacheSpec::bytes() const { return bytes_per_token_per_layer() * num_layers * num_pages * page_size; }

void KvCacheSpec::validate(int64_t head_dim_multiple) const {
  if (num_layers <= 0 || num_pages <= 0 || page_size <= 0 || num_key_value_heads <= 0 || head_dim <= 0 ||
      head_dim % head_dim_multiple != 0) {
    throw Error("KV cache: bad spec: num_layers " + std::to_string(num_layers) + ", num_pages " +
                std::to_string(num_pages) + ", page_size " + std::to_string(page_size) + ", num_key_value_heads " +
                std::to_string(num_key_value_heads) + ", head_dim " + std::to_string(head_dim) +
                " (all must be > 0, head_dim a multiple of " + std::to_string(head_dim_multiple) + ")");
  }
  const bool required = dtype == KvCacheDType::fp8_e4m3;
  for (const auto& [scales, which] : {std::pair{&k_scales, "k_scales"}, std::pair{&v_scales, "v_scales"}}) {
    if (scales->empty() && !required) continue;
    if (static_cast<int64_t>(scales->size()) != num_layers) {
      throw Error(std::string("KV cache: ") + which + " has " + std::to_string(scales->size()) + " entries, expected " +
                  std::to_string(num_layers) + " (one per layer)");
    }
    for (size_t i = 0; i < scales->size(); ++i) {
      const float s = (*scales)[i];
      if (!std::isfinite(s) || s <= 0.0f) {
        throw Error(std::string("KV cache: ") + which + "[" + std::to_string(i) + "] is " + std::to_string(s) +
                    ", expected a finite value > 0");
      }
    }
  }
}

void ForwardBatch::validate(int64_t num_pages, int64_t page_size) const {
  const auto n = static_cast<size_t>(num_tokens());
  const auto fail = [](const std::string& what) { throw Error("malformed forward batch: " + what); };
  if (plan_keys < 0) fail("plan_keys is " + std::to_string(plan_keys));
  if (positions.size() != n || seq_index.size() != n || slot_mapping.size() != n) {
    fail("token_ids, positions, seq_index and slot_mapping differ in length");
  }
  if (page_tables.size() != context_lens.size() * static_cast<size_t>(max_pages_per_seq)) {
    fail("page_tables is not [num_seqs, max_pages_per_seq]");
  }
  // Page tables first: the token checks below index into them.
  for (size_t s = 0; s < context_lens.size(); ++s) {
    const int64_t pages_needed = (context_lens[s] + page_size - 1) / page_size;
    if (pages_needed > max_pages_per_seq) fail("sequence " + std::to_string(s) + " needs more pages than its table");
    for (int64_t p = 0; p < pages_needed; ++p) {
      const int32_t page = page_tables[s * max_pages_per_seq + p];
      if (page < 0 || page >= num_pages) {
        fail("sequence " + std::to_string(s) + " page " + std::to_string(p) + " is " + std::to_string(page));
      }
    }
  }
  for (size_t t = 0; t < n; ++t) {
    const int32_t s = seq_index[t];
    if (s < 0 || s >= num_seqs()) fail("token " + std::to_string(t) + " names sequence " + std::to_string(s));
    if (positions[t] < 0 || positions[t] >= context_lens[s]) {
      fail("token " + std::to_string(t) + " at position " + std::to_string(positions[t]) +
           " is outside its sequence's context of " + std::to_string(context_lens[s]));
    }
    if (slot_mapping[t] < 0 || slot_mapping[t] >= num_pages * page_size) {
      fail("token " + std::to_string(t) + " has slot " + std::to_string(slot_mapping[t]) + " outside the cache");
    }
    const int32_t page = page_tables[s * max_pages_per_seq + positions[t] / page_size];
    if (page_size * page + positions[t] % page_size != slot_mapping[t]) {
      fail("token " + std::to_string(t) + ": slot_mapping disagrees with its page table");
    }
  }
  for (int32_t r : logit_rows) {
    if (r < 0 || static_cast<size_t>(r) >= n) fail("logit row " + std::to_string(r) + " is not a token");
  }
}

AttentionRuns attention_runs(const ForwardBatch& batch, int32_t max_tokens) {
  if (max_tokens <= 0) throw Error("attention_runs: max_tokens must be > 0, got " + std::to_string(max_tokens));
  AttentionRuns runs;
  const auto n = static_cast<int32_t>(batch.seq_index.size());
  for (int32_t t = 0; t < n;) {
    int32_t end = t + 1;
    while (end < n && batch.seq_index[end] == batch.seq_index[t]) ++end;
    if (end - t == 1) {
      runs.decode.push_back({t, 1});
    } else {
      for (int32_t first = t; first < end; first += max_tokens) runs.prefill.push_back({first, std::min(max_tokens, end - first)});
    }
    t = end;
  }
  return runs;
}

}  // namespace adallm::backend
