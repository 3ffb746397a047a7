// core/parallel: every index is visited exactly once whatever the pool size and chunk size, small jobs
// and nested calls run inline, exceptions reach the caller, and concurrent callers both finish.
#include "core/parallel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace adallm {
namespace {

class ParallelTest : public ::testing::Test {
 protected:
  void TearDown() override { set_num_threads(0); }
};

TEST_F(ParallelTest, CoversEveryIndexOnce) {
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    EXPECT_EQ(num_threads(), threads);
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{83}, int64_t{1000}, int64_t{100003}}) {
      for (int64_t min_chunk : {int64_t{1}, int64_t{3}, int64_t{64}, int64_t{1} << 20}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::atomic<int64_t> short_chunks{0};
        parallel_for(n, min_chunk, [&](int64_t begin, int64_t end) {
          ASSERT_LE(0, begin);
          ASSERT_LT(begin, end);
          ASSERT_LE(end, n);
          if (end != n && end - begin < min_chunk) ++short_chunks;
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << "n " << n << " i " << i;
        EXPECT_EQ(short_chunks.load(), 0) << "only the last chunk may be shorter than min_chunk";
      }
    }
  }
}

TEST_F(ParallelTest, ZeroMeansHardwareConcurrency) {
  set_num_threads(0);
  EXPECT_EQ(num_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

TEST_F(ParallelTest, SmallJobsAndOneThreadRunInline) {
  set_num_threads(4);
  const auto caller = std::this_thread::get_id();
  parallel_for(10, 10, [&](int64_t begin, int64_t end) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(begin, 0);
    EXPECT_EQ(end, 10);
  });
  set_num_threads(1);
  int calls = 0;
  parallel_for(1000, 1, [&](int64_t begin, int64_t end) {
    ++calls;
    EXPECT_EQ(std::this_thread::get_id(), caller);
    EXPECT_EQ(end - begin, 1000);
  });
  EXPECT_EQ(calls, 1);
}

TEST_F(ParallelTest, UsesWorkersWhenThereAreSome) {
  set_num_threads(4);
  std::mutex mutex;
  std::set<std::thread::id> ids;
  parallel_for(64, 1, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard lock(mutex);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_GT(ids.size(), 1u);
}

TEST_F(ParallelTest, ExceptionReachesCaller) {
  set_num_threads(4);
  EXPECT_THROW(parallel_for(1000, 1,
                            [&](int64_t begin, int64_t end) {
                              if (begin <= 500 && 500 < end) throw std::runtime_error("chunk 500");
                            }),
               std::runtime_error);
  // The pool still works afterwards.
  std::atomic<int64_t> sum{0};
  parallel_for(1000, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) sum += i;
  });
  EXPECT_EQ(sum.load(), 999 * 1000 / 2);
}

TEST_F(ParallelTest, NestedCallsRunInline) {
  set_num_threads(4);
  std::atomic<int64_t> sum{0};
  parallel_for(16, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      parallel_for(100, 1, [&](int64_t b, int64_t e) {
        for (int64_t j = b; j < e; ++j) sum += j;
      });
    }
  });
  EXPECT_EQ(sum.load(), 16 * (99 * 100 / 2));
}

TEST_F(ParallelTest, ConcurrentCallersBothFinish) {
  set_num_threads(4);
  std::atomic<int64_t> a{0}, b{0};
  auto job = [](std::atomic<int64_t>& sum) {
    for (int rep = 0; rep < 200; ++rep) {
      parallel_for(1000, 1, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) sum += 1;
      });
    }
  };
  std::thread other([&] { job(b); });
  job(a);
  other.join();
  EXPECT_EQ(a.load(), 200 * 1000);
  EXPECT_EQ(b.load(), 200 * 1000);
}

}  // namespace
}  // namespace adallm
