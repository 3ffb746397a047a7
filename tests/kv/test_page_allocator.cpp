// Page allocator and sequence page tables: all-or-nothing allocation, reuse, double-free detection,
// slot arithmetic across page boundaries.
#include <gtest/gtest.h>

#include <vector>

#include "core/error.h"
#include "kv/page_allocator.h"

namespace adallm::kv {
namespace {

TEST(PageAllocator, AllocatesAllOrNothing) {
  PageAllocator pool(5);
  EXPECT_EQ(pool.allocate(3), (std::vector<int32_t>{0, 1, 2}));
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_TRUE(pool.allocate(3).empty());  // only 2 left: nothing taken
  EXPECT_EQ(pool.num_free(), 2);
  EXPECT_EQ(pool.allocate(2), (std::vector<int32_t>{3, 4}));
  EXPECT_EQ(pool.num_free(), 0);
}

TEST(PageAllocator, ReusesReleasedPagesAndRefusesDoubleFree) {
  PageAllocator pool(4);
  std::vector<int32_t> a = pool.allocate(2);
  pool.release(std::vector<int32_t>{a[1]});
  EXPECT_EQ(pool.allocate(1), (std::vector<int32_t>{a[1]}));
  pool.release(a);
  EXPECT_THROW(pool.release(std::vector<int32_t>{a[0]}), Error);
  EXPECT_THROW(pool.release(std::vector<int32_t>{7}), Error);
  EXPECT_THROW(PageAllocator(0), Error);
}

TEST(SequencePages, GrowsPageByPageAndMapsSlots) {
  PageAllocator pool(8);
  pool.allocate(1);  // page 0 taken by someone else: the table is not the identity
  SequencePages seq(4);
  ASSERT_TRUE(seq.reserve(pool, 1));
  EXPECT_EQ(seq.pages().size(), 1u);
  ASSERT_TRUE(seq.reserve(pool, 4));  // still one page
  EXPECT_EQ(seq.pages().size(), 1u);
  ASSERT_TRUE(seq.reserve(pool, 9));  // positions 0..8: three pages
  ASSERT_EQ(seq.pages(), (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(seq.slot(0), 4);
  EXPECT_EQ(seq.slot(3), 7);
  EXPECT_EQ(seq.slot(4), 8);
  EXPECT_EQ(seq.slot(8), 12);
  EXPECT_THROW(seq.slot(12), Error);
  EXPECT_FALSE(seq.reserve(pool, 40));  // needs 7 more, 4 free: nothing taken
  EXPECT_EQ(pool.num_free(), 4);
  seq.release(pool);
  EXPECT_EQ(pool.num_free(), 7);
  EXPECT_TRUE(seq.pages().empty());
}

}  // namespace
}  // namespace adallm::kv
