// Comparing logits with a reference, as every model-level test does: NMSE and top-1 agreement over rows
// of [rows, vocab_size], and reading the committed reference files (tests/fixtures/<arch>/logits.safetensors).
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "io/safetensors.h"

namespace adallm::test {

struct LogitsAgreement {
  double nmse = 0.0;  // Σ (got - want)² / Σ want² over every element
  double top1 = 0.0;  // fraction of rows whose argmax agree (lowest index on ties)
};

// Σ (got - want)² / Σ want² (over Σ 1 when want is all zeros).
inline double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  double err = 0.0, ref = 0.0;
  for (size_t i = 0; i < want.size(); ++i) {
    err += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    ref += double(want[i]) * want[i];
  }
  return err / (ref > 0.0 ? ref : 1.0);
}

inline LogitsAgreement compare_logits(const std::vector<float>& got, const std::vector<float>& want,
                                      int64_t vocab_size) {
  double err = 0.0, ref = 0.0;
  const int64_t rows = static_cast<int64_t>(want.size()) / vocab_size;
  int64_t same = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const float* g = &got[static_cast<size_t>(r * vocab_size)];
    const float* w = &want[static_cast<size_t>(r * vocab_size)];
    int64_t ag = 0, aw = 0;
    for (int64_t v = 0; v < vocab_size; ++v) {
      err += (double(g[v]) - w[v]) * (double(g[v]) - w[v]);
      ref += double(w[v]) * w[v];
      if (g[v] > g[ag]) ag = v;
      if (w[v] > w[aw]) aw = v;
    }
    same += ag == aw;
  }
  return {err / ref, rows > 0 ? double(same) / double(rows) : 0.0};
}

// An I64 tensor (token ids) of a reference file; data may be unaligned, hence the copy.
inline std::vector<int64_t> read_i64(const io::Checkpoint& file, const std::string& name) {
  const io::TensorInfo& t = file.get(name);
  std::vector<int64_t> values(static_cast<size_t>(t.numel()));
  std::memcpy(values.data(), t.data, t.nbytes);
  return values;
}

}  // namespace adallm::test
