// PagePool: reference counts, prefix-cache publish/lookup (content = parent page + tokens, confirmed
// exactly), LRU eviction of cached pages, stale children after a parent's eviction, double release, and a
// randomized run against a simple model of the pool's accounting.
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <vector>

#include "core/error.h"
#include "kv/page_pool.h"

namespace adallm::kv {
namespace {

std::vector<int32_t> page_tokens(int32_t first, int64_t page_size) {
  std::vector<int32_t> t(static_cast<size_t>(page_size));
  for (int64_t i = 0; i < page_size; ++i) t[static_cast<size_t>(i)] = first + static_cast<int32_t>(i);
  return t;
}

TEST(PagePool, CountsReferencesAndFreesUnpublishedPagesAtOnce) {
  PagePool pool(3, 4, true);
  EXPECT_EQ(pool.num_free(), 3);
  const int32_t a = pool.allocate(), b = pool.allocate(), c = pool.allocate();
  EXPECT_EQ(std::vector<int32_t>({a, b, c}), std::vector<int32_t>({0, 1, 2}));
  EXPECT_EQ(pool.allocate(), -1);
  EXPECT_EQ(pool.num_referenced(), 3);
  pool.release(b);
  EXPECT_EQ(pool.num_free(), 1);
  EXPECT_EQ(pool.num_cached(), 0);  // never published: free, not cached
  EXPECT_EQ(pool.allocate(), b);
  EXPECT_THROW(pool.release(7), Error);
  pool.release(a);
  EXPECT_THROW(pool.release(a), Error);  // a double release is a bug
}

TEST(PagePool, SharesPublishedPagesByParentAndTokens) {
  PagePool pool(8, 4, true);
  const auto t0 = page_tokens(10, 4), t1 = page_tokens(20, 4);
  const int32_t p0 = pool.allocate(), p1 = pool.allocate();
  pool.publish(p0, -1, t0);
  pool.publish(p1, p0, t1);
  EXPECT_EQ(pool.lookup(-1, t0), p0);
  EXPECT_EQ(pool.refcount(p0), 2);
  EXPECT_EQ(pool.lookup(p0, t1), p1);
  EXPECT_EQ(pool.lookup(-1, t1), -1);  // same tokens, other parent
  EXPECT_EQ(pool.lookup(p1, t1), -1);
  auto other = t1;
  other.back() += 1;
  EXPECT_EQ(pool.lookup(p0, other), -1);  // one token differs
  EXPECT_EQ(pool.lookups(), 5);
  EXPECT_EQ(pool.hits(), 2);
  EXPECT_THROW(pool.lookup(-1, page_tokens(0, 3)), Error);  // not a whole page
}

TEST(PagePool, KeepsUnreferencedPublishedPagesAndEvictsLeastRecentFirst) {
  PagePool pool(3, 2, true);
  const auto ta = page_tokens(1, 2), tb = page_tokens(5, 2);
  const int32_t a = pool.allocate(), b = pool.allocate();
  pool.publish(a, -1, ta);
  pool.publish(b, -1, tb);
  pool.release(a);  // cached, least recent
  pool.release(b);
  EXPECT_EQ(pool.num_cached(), 2);
  EXPECT_EQ(pool.num_free(), 3);
  const int32_t fresh = pool.allocate();  // the never-used page goes first
  EXPECT_NE(fresh, a);
  EXPECT_NE(fresh, b);
  EXPECT_EQ(pool.lookup(-1, ta), a);  // a hit makes `a` referenced again
  pool.release(a);                    // ... and now the most recent
  EXPECT_EQ(pool.allocate(), b);      // evicts b, the least recent
  EXPECT_EQ(pool.lookup(-1, tb), -1);  // its content is forgotten
  EXPECT_EQ(pool.lookup(-1, ta), a);
}

TEST(PagePool, ChildrenOfAnEvictedParentNeverMatchItsReuse) {
  PagePool pool(2, 2, true);
  const auto t0 = page_tokens(1, 2), t1 = page_tokens(3, 2);
  const int32_t p0 = pool.allocate(), p1 = pool.allocate();
  pool.publish(p0, -1, t0);
  pool.publish(p1, p0, t1);
  pool.release(p0);  // p0 least recent
  pool.release(p1);
  const int32_t reused = pool.allocate();  // evicts p0 and gives it new content
  ASSERT_EQ(reused, p0);
  pool.publish(reused, -1, page_tokens(9, 2));
  // p1 is still cached under (p0, t1), but p0 now holds other tokens: a sequence that reached t1 through
  // the new p0 must not find it.
  EXPECT_EQ(pool.lookup(reused, t1), -1);
}

TEST(PagePool, FirstPublishedCopyWinsAndDisabledCachingFindsNothing) {
  PagePool pool(4, 2, true);
  const auto t = page_tokens(7, 2);
  const int32_t a = pool.allocate(), b = pool.allocate();
  pool.publish(a, -1, t);
  pool.publish(b, -1, t);  // same content computed twice: b stays private
  pool.release(b);
  EXPECT_EQ(pool.num_cached(), 0);
  EXPECT_EQ(pool.lookup(-1, t), a);
  EXPECT_THROW(pool.publish(b, -1, t), Error);  // unreferenced

  PagePool off(2, 2, false);
  const int32_t c = off.allocate();
  off.publish(c, -1, t);
  off.release(c);
  EXPECT_EQ(off.num_cached(), 0);
  EXPECT_EQ(off.lookup(-1, t), -1);
}

// Random allocate / publish / lookup / release of first pages (parent -1; parents are the deterministic
// tests' business) against a model: refcounts and counts must always agree, a lookup returns only a page
// published with exactly those tokens and still cached or held, and releasing everything leaves every
// page free or cached.
TEST(PagePool, RandomOperationsKeepTheAccountingExact) {
  constexpr int64_t kPages = 12, kPageSize = 2;
  PagePool pool(kPages, kPageSize, true);
  std::mt19937 rng(7);
  std::map<int32_t, int> refs;                     // page -> references we hold
  std::map<int32_t, std::vector<int32_t>> content;  // published page -> tokens
  std::vector<int32_t> held;
  for (int step = 0; step < 5000; ++step) {
    const int op = static_cast<int>(rng() % 4);
    const std::vector<int32_t> t = page_tokens(static_cast<int32_t>(rng() % 4), kPageSize);
    if (op == 0) {
      const int32_t p = pool.allocate();
      if (p >= 0) {
        EXPECT_EQ(refs.count(p), 0u) << "page " << p << " handed out while referenced";
        content.erase(p);  // an evicted page's content is gone
        ++refs[p];
        held.push_back(p);
      } else {
        EXPECT_EQ(pool.num_free(), 0);
      }
    } else if (op == 1 && !held.empty()) {
      const int32_t p = held[rng() % held.size()];
      pool.publish(p, -1, t);
      bool duplicate = false;
      for (const auto& [q, c] : content) duplicate = duplicate || c == t;
      if (content.count(p) == 0 && !duplicate) content[p] = t;
    } else if (op == 2) {
      const int32_t p = pool.lookup(-1, t);
      bool present = false;
      for (const auto& [q, c] : content) present = present || c == t;
      EXPECT_EQ(p >= 0, present) << "step " << step;
      if (p >= 0) {
        ASSERT_EQ(content.count(p), 1u);
        EXPECT_EQ(content[p], t);
        ++refs[p];
        held.push_back(p);
      }
    } else if (op == 3 && !held.empty()) {
      const size_t i = rng() % held.size();
      const int32_t p = held[i];
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
      pool.release(p);
      if (--refs[p] == 0) {
        refs.erase(p);
        // An unpublished page is free at once and forgets nothing it had (it had nothing).
      }
    }
    for (const auto& [p, n] : refs) ASSERT_EQ(pool.refcount(p), n) << "page " << p << " at step " << step;
    ASSERT_EQ(pool.num_referenced(), static_cast<int64_t>(refs.size()));
    int64_t cached = 0;
    for (const auto& [p, c] : content) cached += refs.count(p) == 0 ? 1 : 0;
    ASSERT_EQ(pool.num_cached(), cached);
  }
  for (int32_t p : held) pool.release(p);
  EXPECT_EQ(pool.num_referenced(), 0);
  EXPECT_EQ(pool.num_free(), kPages);
  EXPECT_EQ(pool.num_cached(), static_cast<int64_t>(content.size()));
}

}  // namespace
}  // namespace adallm::kv
