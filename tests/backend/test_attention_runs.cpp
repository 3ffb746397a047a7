// attention_runs: how a step's tokens are cut for the GPU attention kernels (decode runs of one token,
// prefill runs of at most N tokens of one sequence). Checked against its contract over random batches:
// every token in exactly one run, runs inside one sequence and in token order, prefill runs as long as
// allowed, decode runs exactly the sequences with one token in the step.
#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "backend/batch.h"
#include "core/error.h"

namespace adallm::backend {
namespace {

ForwardBatch batch_of(const std::vector<int>& tokens_per_seq) {
  ForwardBatch b;
  for (size_t s = 0; s < tokens_per_seq.size(); ++s) {
    for (int i = 0; i < tokens_per_seq[s]; ++i) b.seq_index.push_back(static_cast<int32_t>(s));
  }
  b.token_ids.assign(b.seq_index.size(), 0);
  return b;
}

TEST(AttentionRuns, SplitsDecodesFromPrefills) {
  const ForwardBatch b = batch_of({1, 5, 1, 2});  // tokens 0 | 1..5 | 6 | 7..8
  const AttentionRuns runs = attention_runs(b, 2);
  ASSERT_EQ(runs.decode.size(), 2u);
  EXPECT_EQ(runs.decode[0].first, 0);
  EXPECT_EQ(runs.decode[1].first, 6);
  const std::vector<std::pair<int, int>> want = {{1, 2}, {3, 2}, {5, 1}, {7, 2}};
  ASSERT_EQ(runs.prefill.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(runs.prefill[i].first, want[i].first) << i;
    EXPECT_EQ(runs.prefill[i].count, want[i].second) << i;
  }
}

TEST(AttentionRuns, CoversEveryTokenOnceOverRandomBatches) {
  std::mt19937 rng(11);
  for (int round = 0; round < 200; ++round) {
    std::vector<int> per_seq(1 + rng() % 12);
    for (int& n : per_seq) n = rng() % 3 == 0 ? 1 : 1 + static_cast<int>(rng() % 300);
    const ForwardBatch b = batch_of(per_seq);
    const int max_tokens = 4 << (rng() % 6);
    const AttentionRuns runs = attention_runs(b, max_tokens);
    std::vector<int> seen(b.seq_index.size(), 0);
    for (const TokenRun& r : runs.decode) {
      ASSERT_EQ(r.count, 1);
      EXPECT_EQ(per_seq[static_cast<size_t>(b.seq_index[static_cast<size_t>(r.first)])], 1);
      ++seen[static_cast<size_t>(r.first)];
    }
    int32_t next = -1;
    for (const TokenRun& r : runs.prefill) {
      ASSERT_GE(r.count, 1);
      ASSERT_LE(r.count, max_tokens);
      EXPECT_GT(r.first, next);  // token order
      const int32_t seq = b.seq_index[static_cast<size_t>(r.first)];
      EXPECT_GT(per_seq[static_cast<size_t>(seq)], 1);
      for (int32_t t = r.first; t < r.first + r.count; ++t) {
        ASSERT_EQ(b.seq_index[static_cast<size_t>(t)], seq) << "a run crosses sequences";
        ++seen[static_cast<size_t>(t)];
      }
      // Only a sequence's last run may be short.
      const int32_t end = r.first + r.count;
      if (r.count < max_tokens) {
        EXPECT_TRUE(end == static_cast<int32_t>(b.seq_index.size()) || b.seq_index[static_cast<size_t>(end)] != seq);
      }
      next = r.first;
    }
    for (size_t t = 0; t < seen.size(); ++t) ASSERT_EQ(seen[t], 1) << "token " << t << " in round " << round;
  }
}

TEST(AttentionRuns, RefusesAnEmptyRunLength) { EXPECT_THROW(attention_runs(batch_of({3}), 0), Error); }

}  // namespace
}  // namespace adallm::backend
