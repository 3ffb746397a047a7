// Page free list and per-sequence page tables (see page_allocator.h).
#include "kv/page_allocator.h"

#include <algorithm>
#include <cstdint>
#include <string>

#include "core/error.h"

namespace adallm::kv {

PageAllocator::PageAllocator(int64_t num_pages) {
  if (num_pages <= 0 || num_pages > INT32_MAX) {
    throw Error("KV cache page count " + std::to_string(num_pages) + " is out of range");
  }
  in_use_.assign(static_cast<size_t>(num_pages), false);
  free_.reserve(static_cast<size_t>(num_pages));
  for (int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(static_cast<int32_t>(p));
}

std::vector<int32_t> PageAllocator::allocate(int64_t count) {
  if (count < 0 || count > num_free()) return {};
  std::vector<int32_t> pages(free_.end() - count, free_.end());
  free_.resize(free_.size() - static_cast<size_t>(count));
  std::reverse(pages.begin(), pages.end());
  for (int32_t p : pages) in_use_[static_cast<size_t>(p)] = true;
  return pages;
}

void PageAllocator::release(std::span<const int32_t> pages) {
  for (int32_t p : pages) {
    if (p < 0 || p >= num_pages() || !in_use_[static_cast<size_t>(p)]) {
      throw Error("KV page " + std::to_string(p) + " released but not allocated (pool of " +
                  std::to_string(num_pages()) + ")");
    }
    in_use_[static_cast<size_t>(p)] = false;
    free_.push_back(p);
  }
}

SequencePages::SequencePages(int64_t page_size) : page_size_(page_size) {
  if (page_size <= 0) throw Error("KV page size must be positive, got " + std::to_string(page_size));
}

bool SequencePages::reserve(PageAllocator& allocator, int64_t num_tokens) {
  const int64_t needed = (num_tokens + page_size_ - 1) / page_size_ - static_cast<int64_t>(pages_.size());
  if (needed <= 0) return true;
  std::vector<int32_t> more = allocator.allocate(needed);
  if (more.empty()) return false;
  pages_.insert(pages_.end(), more.begin(), more.end());
  return true;
}

int64_t SequencePages::slot(int64_t position) const {
  if (position < 0 || position >= capacity()) {
    throw Error("position " + std::to_string(position) + " has no KV page (capacity " +
                std::to_string(capacity()) + ")");
  }
  return static_cast<int64_t>(pages_[static_cast<size_t>(position / page_size_)]) * page_size_ +
         position % page_size_;
}

void SequencePages::release(PageAllocator& allocator) {
  allocator.release(pages_);
  pages_.clear();
}

}  // namespace adallm::kv
