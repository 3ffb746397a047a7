// KV-cache pages: the free list every sequence draws from, and one sequence's page table. Only ids are
// handled here; the memory behind them belongs to the backend's KvCache. Prefix sharing and eviction
// policies are left to the engine issues that need them.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace adallm::kv {

class PageAllocator {
 public:
  explicit PageAllocator(int64_t num_pages);

  int64_t num_pages() const { return static_cast<int64_t>(in_use_.size()); }
  int64_t num_free() const { return static_cast<int64_t>(free_.size()); }
  // `count` pages, or none at all (empty result) when fewer are free. Lowest ids first on a fresh pool.
  std::vector<int32_t> allocate(int64_t count);
  // Throws adallm::Error for an id out of range or not allocated (a double free is a bug, not a no-op).
  void release(std::span<const int32_t> pages);

 private:
  std::vector<int32_t> free_;  // a stack: the most recently freed page is reused first
  std::vector<bool> in_use_;
};

// The pages of one sequence, in position order: position p lives in page pages()[p / page_size] at
// slot p % page_size.
class SequencePages {
 public:
  explicit SequencePages(int64_t page_size);

  int64_t page_size() const { return page_size_; }
  int64_t capacity() const { return static_cast<int64_t>(pages_.size()) * page_size_; }
  const std::vector<int32_t>& pages() const { return pages_; }
  // Grows the table so that positions [0, num_tokens) have a slot; false (and nothing taken) when the
  // allocator cannot supply the pages.
  bool reserve(PageAllocator& allocator, int64_t num_tokens);
  // The flat cache slot of a position below capacity(): page * page_size + offset.
  int64_t slot(int64_t position) const;
  // Returns every page to the allocator.
  void release(PageAllocator& allocator);

 private:
  int64_t page_size_;
  std::vector<int32_t> pages_;
};

}  // namespace adallm::kv
