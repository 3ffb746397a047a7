// The scheduler alone (no model: sampled tokens are made up), checked step by step on randomized request
// mixes for the rules it promises: the token budget and the sequence cap hold, decodes are served before
// any prefill, chunks continue exactly where the cache ends and their pages exist, waiting requests start
// in arrival order, every request finishes (none starved; one whose sampling fails ends with an error),
// and no page is leaked.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <vector>

#include "core/error.h"
#include "engine/scheduler.h"
#include "kv/page_pool.h"

namespace adallm::engine {
namespace {

std::unique_ptr<Sequence> make_sequence(int64_t id, std::vector<int32_t> prompt, int64_t max_tokens) {
  auto s = std::make_unique<Sequence>();
  s->id = id;
  s->tokens = std::move(prompt);
  s->max_tokens = max_tokens;
  return s;
}

TEST(Scheduler, RefusesAPoolSmallerThanOneSequence) {
  kv::PagePool pool(3, 4, true);
  EXPECT_THROW(Scheduler({8, 64, 13}, pool), Error);  // 13 tokens need 4 pages
  EXPECT_NO_THROW(Scheduler({8, 64, 12}, pool));
  EXPECT_THROW(Scheduler({0, 64, 12}, pool), Error);
  EXPECT_THROW(Scheduler({8, 0, 12}, pool), Error);
}

TEST(Scheduler, ChunksALongPromptWithinTheBudgetAndDecodesFirst) {
  kv::PagePool pool(64, 4, true);
  Scheduler s({8, 10, 128}, pool);
  s.add(make_sequence(1, std::vector<int32_t>(5, 1), 3));
  auto chunks = s.schedule();  // the whole 5-token prompt
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].count, 5);
  EXPECT_TRUE(chunks[0].sample);
  s.complete(chunks, std::vector<int32_t>{7});
  s.add(make_sequence(2, std::vector<int32_t>(23, 2), 3));
  chunks = s.schedule();  // sequence 1's decode first, then 9 tokens of sequence 2's prompt
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0].seq->id, 1);
  EXPECT_EQ(chunks[0].count, 1);
  EXPECT_EQ(chunks[1].seq->id, 2);
  EXPECT_EQ(chunks[1].begin, 0);
  EXPECT_EQ(chunks[1].count, 9);
  EXPECT_FALSE(chunks[1].sample);
  s.complete(chunks, std::vector<int32_t>{8});
  chunks = s.schedule();
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[1].begin, 9);
  EXPECT_EQ(chunks[1].count, 9);
}

class SchedulerMix : public ::testing::TestWithParam<uint32_t> {};

TEST_P(SchedulerMix, KeepsItsRulesOnRandomLoads) {
  std::mt19937 rng(GetParam());
  const auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  const int64_t page_size = uniform(1, 8);
  const int64_t max_model_len = uniform(16, 80);
  const int64_t pages = (max_model_len + page_size - 1) / page_size + uniform(0, 20);
  const SchedulerOptions options{uniform(1, 8), uniform(1, 48), max_model_len};
  kv::PagePool pool(pages, page_size, uniform(0, 1) == 1);
  Scheduler s(options, pool);

  const int kRequests = 60;
  std::vector<int64_t> arrival_order;
  std::set<int64_t> finished, cancelled;
  std::map<int64_t, int64_t> admitted_at;  // id -> step of its first chunk
  int64_t next_id = 1;
  int step = 0;
  for (; step < 20000; ++step) {
    if (next_id <= kRequests && uniform(0, 2) == 0) {
      std::vector<int32_t> prompt(static_cast<size_t>(uniform(1, static_cast<int>(max_model_len))));
      for (auto& t : prompt) t = uniform(0, 3);  // few distinct tokens: shared prefixes are common
      s.add(make_sequence(next_id, prompt, uniform(1, 30)));
      arrival_order.push_back(next_id++);
    }
    if (uniform(0, 30) == 0 && !arrival_order.empty()) {
      const int64_t id = arrival_order[rng() % arrival_order.size()];
      if (s.cancel(id)) cancelled.insert(id);
    }
    // Running sequences with one token left: their decodes must come before every other chunk.
    std::set<int64_t> decodes;
    for (const auto& q : s.running()) {
      if (static_cast<int64_t>(q->tokens.size()) - q->num_computed == 1 && !q->cancel_requested) decodes.insert(q->id);
    }
    const std::vector<ScheduledChunk> chunks = s.schedule();
    int64_t tokens = 0;
    bool other_seen = false;
    std::set<int64_t> ids;
    for (const ScheduledChunk& c : chunks) {
      const Sequence& q = *c.seq;
      tokens += c.count;
      EXPECT_TRUE(ids.insert(q.id).second) << "two chunks for one sequence";
      EXPECT_EQ(c.begin, q.num_computed) << "a chunk must start where the cache ends";
      EXPECT_GE(c.count, 1);
      EXPECT_LE(c.begin + c.count, static_cast<int64_t>(q.tokens.size()));
      EXPECT_EQ(c.sample, c.begin + c.count == static_cast<int64_t>(q.tokens.size()));
      EXPECT_GE(static_cast<int64_t>(q.pages.size()) * page_size, c.begin + c.count) << "pages missing";
      const bool decode = decodes.count(q.id) == 1;
      EXPECT_FALSE(decode && other_seen) << "a decode scheduled after a prefill";
      other_seen = other_seen || !decode;
      if (admitted_at.count(q.id) == 0) admitted_at[q.id] = step;
    }
    EXPECT_LE(tokens, options.max_num_batched_tokens);
    EXPECT_LE(s.num_running(), options.max_num_seqs);
    // Made-up tokens; a token of 3 now and then acts as a stop id for odd ids.
    std::vector<int32_t> sampled;
    for (const ScheduledChunk& c : chunks) {
      if (!c.sample) continue;
      sampled.push_back(uniform(0, 200) == 0 ? -1 : uniform(0, 3));  // -1: that sequence's sampling failed
      if (c.seq->id % 2 == 1) c.seq->stop_token_ids = {3};
    }
    s.complete(chunks, sampled);
    for (auto& seq : s.take_finished()) {
      EXPECT_TRUE(finished.insert(seq->id).second);
      EXPECT_TRUE(seq->pages.empty());
      if (seq->finish_reason == FinishReason::cancelled) {
        EXPECT_EQ(cancelled.count(seq->id), 1u);
      } else if (seq->finish_reason != FinishReason::error) {  // error: its made-up sampling failed
        EXPECT_TRUE(seq->finish_reason == FinishReason::stop || seq->finish_reason == FinishReason::length);
        EXPECT_TRUE(seq->output_len() == seq->max_tokens || static_cast<int64_t>(seq->tokens.size()) == max_model_len ||
                    seq->tokens.back() == 3);
      }
    }
    if (next_id > kRequests && s.idle()) break;
  }
  ASSERT_LT(step, 20000) << "some request never finished";
  EXPECT_EQ(static_cast<int64_t>(finished.size()), kRequests);
  EXPECT_EQ(pool.num_referenced(), 0) << "pages leaked";
  // First admission follows arrival order (a preempted sequence returns ahead of later arrivals, which
  // keeps that order too).
  for (size_t i = 1; i < arrival_order.size(); ++i) {
    const int64_t a = arrival_order[i - 1], b = arrival_order[i];
    if (admitted_at.count(a) && admitted_at.count(b)) {
      EXPECT_LE(admitted_at[a], admitted_at[b]) << a << " before " << b;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Seeds, SchedulerMix, ::testing::Range(1u, 41u));

}  // namespace
}  // namespace adallm::engine
