// What the golden tests of every backend share (tests/model/test_golden.cpp on the CPU,
// tests/gpu/test_cuda_model.cpp on the GPU): the committed transformers reference of a fixture and a
// single-sequence run through Model::forward, prefilled in chunks over pages out of order.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "backend/backend.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "logits_compare.h"
#include "model/model.h"
#include "test_util.h"

namespace adallm::test {

inline constexpr int kNumSequences = 3;  // tokens0 (16), tokens1 (8), tokens2 (96: past llama3's 64, 6 KV pages)

struct Reference {
  std::vector<std::vector<int32_t>> tokens;
  std::vector<std::vector<float>> logits;  // per sequence [len, vocab]
};

inline Reference load_reference(const std::string& arch, const std::string& form) {
  const io::Checkpoint ref = io::Checkpoint::open(fixtures_dir() / arch / "logits.safetensors");
  Reference r;
  for (int i = 0; i < kNumSequences; ++i) {
    const std::vector<int64_t> ids = read_i64(ref, "tokens" + std::to_string(i));
    r.tokens.emplace_back(ids.begin(), ids.end());
    r.logits.push_back(io::tensor_to_f32(ref.get(form + ".tokens" + std::to_string(i))));
  }
  return r;
}

// One sequence per batch, its pages deliberately out of order, prefilled in chunks of `chunk` tokens.
inline std::vector<float> run_sequence(model::Model& model, backend::KvCache& cache,
                                       const std::vector<int32_t>& tokens, int64_t chunk) {
  const int64_t page_size = cache.spec().page_size;
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t pages = (n + page_size - 1) / page_size;
  std::vector<int32_t> table;
  for (int64_t p = 0; p < pages; ++p) table.push_back(static_cast<int32_t>(cache.spec().num_pages - 1 - 2 * p));
  std::vector<float> all, step;
  for (int64_t begin = 0; begin < n; begin += chunk) {
    const int64_t end = std::min(n, begin + chunk);
    backend::ForwardBatch b;
    b.max_pages_per_seq = static_cast<int32_t>(pages);
    b.page_tables = table;
    b.context_lens = {static_cast<int32_t>(end)};
    for (int64_t t = begin; t < end; ++t) {
      b.token_ids.push_back(tokens[static_cast<size_t>(t)]);
      b.positions.push_back(static_cast<int32_t>(t));
      b.seq_index.push_back(0);
      b.slot_mapping.push_back(table[static_cast<size_t>(t / page_size)] * page_size + t % page_size);
      b.logit_rows.push_back(static_cast<int32_t>(t - begin));
    }
    model.forward(b, cache, step);
    all.insert(all.end(), step.begin(), step.end());
  }
  return all;
}

// One golden case: a fixture architecture, checkpoint form and KV cache dtype.
struct Case {
  std::string arch, form, kv;
};

// Every architecture × form (bf16, nvfp4-modelopt, nvfp4-ct) × KV dtype (bf16, fp8).
inline std::vector<Case> golden_cases() {
  std::vector<Case> cases;
  for (const char* arch : {"llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"}) {
    for (const char* form : {"bf16", "nvfp4-modelopt", "nvfp4-ct"}) {
      for (const char* kv : {"bf16", "fp8"}) cases.push_back({arch, form, kv});
    }
  }
  return cases;
}

// A GoogleTest parameter name for a case: "qwen3_nvfp4_modelopt_fp8".
inline std::string golden_case_name(const ::testing::TestParamInfo<Case>& info) {
  std::string name = info.param.arch + "_" + info.param.form + "_" + info.param.kv;
  for (char& ch : name) {
    if (ch == '-') ch = '_';
  }
  return name;
}

}  // namespace adallm::test
