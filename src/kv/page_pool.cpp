// Reference-counted KV pages with prefix caching (see page_pool.h).
#include "kv/page_pool.h"

#include <algorithm>
#include <string>

#include "core/error.h"

namespace adallm::kv {
namespace {

// splitmix64's finalizer: a cheap, well-mixed step for folding 64-bit words into a key. Keys only pick
// a bucket: a match is always confirmed against the page's parent and tokens.
uint64_t mix(uint64_t h, uint64_t v) {
  uint64_t z = h ^ (v + 0x9E3779B97F4A7C15ull + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace

PagePool::PagePool(int64_t num_pages, int64_t page_size, bool prefix_caching)
    : page_size_(page_size), prefix_caching_(prefix_caching) {
  if (num_pages <= 0 || num_pages > INT32_MAX) {
    throw Error("KV cache page count " + std::to_string(num_pages) + " is out of range");
  }
  if (page_size <= 0) throw Error("KV page size must be positive, got " + std::to_string(page_size));
  pages_.resize(static_cast<size_t>(num_pages));
  free_.reserve(static_cast<size_t>(num_pages));
  for (int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(static_cast<int32_t>(p));
}

void PagePool::check(int32_t page, const char* what) const {
  if (page < 0 || page >= num_pages()) {
    throw Error(std::string("KV page ") + std::to_string(page) + " " + what + ": out of range (pool of " +
                std::to_string(num_pages()) + ")");
  }
}

int32_t PagePool::refcount(int32_t page) const {
  check(page, "refcount");
  return pages_[static_cast<size_t>(page)].refs;
}

uint64_t PagePool::key_of(int32_t parent, std::span<const int32_t> tokens) const {
  uint64_t h = mix(0x6A09E667F3BCC908ull, static_cast<uint64_t>(static_cast<int64_t>(parent)));
  h = mix(h, parent < 0 ? 0 : pages_[static_cast<size_t>(parent)].generation);
  for (int32_t t : tokens) h = mix(h, static_cast<uint32_t>(t));
  return h;
}

bool PagePool::matches(const Page& page, int32_t parent, std::span<const int32_t> tokens) const {
  if (!page.published || page.parent != parent) return false;
  if (parent >= 0 && page.parent_generation != pages_[static_cast<size_t>(parent)].generation) return false;
  return std::equal(tokens.begin(), tokens.end(), page.tokens.begin(), page.tokens.end());
}

void PagePool::forget(int32_t id) {
  Page& page = pages_[static_cast<size_t>(id)];
  if (page.published) {
    const auto range = index_.equal_range(page.key);
    for (auto it = range.first; it != range.second; ++it) {
      if (it->second == id) {
        index_.erase(it);
        break;
      }
    }
  }
  page.published = false;
  page.tokens.clear();
  page.parent = -1;
  ++page.generation;  // pages published after this one can no longer match through it
}

int32_t PagePool::allocate() {
  int32_t id = -1;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else if (!lru_.empty()) {
    id = lru_.front();
    lru_.pop_front();
    forget(id);
  } else {
    return -1;
  }
  pages_[static_cast<size_t>(id)].refs = 1;
  return id;
}

int32_t PagePool::lookup(int32_t parent, std::span<const int32_t> tokens) {
  if (!prefix_caching_) return -1;
  if (parent >= 0) check(parent, "as a parent");
  if (static_cast<int64_t>(tokens.size()) != page_size_) {
    throw Error("prefix-cache lookup of " + std::to_string(tokens.size()) + " tokens; pages hold " +
                std::to_string(page_size_));
  }
  ++lookups_;
  const auto range = index_.equal_range(key_of(parent, tokens));
  for (auto it = range.first; it != range.second; ++it) {
    Page& page = pages_[static_cast<size_t>(it->second)];
    if (!matches(page, parent, tokens)) continue;
    if (page.refs == 0) lru_.erase(page.lru_position);
    ++page.refs;
    ++hits_;
    return it->second;
  }
  return -1;
}

void PagePool::publish(int32_t id, int32_t parent, std::span<const int32_t> tokens) {
  if (!prefix_caching_) return;
  check(id, "published");
  if (parent >= 0) check(parent, "as a parent");
  Page& page = pages_[static_cast<size_t>(id)];
  if (page.refs <= 0) throw Error("KV page " + std::to_string(id) + " published while unreferenced");
  if (static_cast<int64_t>(tokens.size()) != page_size_) {
    throw Error("KV page " + std::to_string(id) + " published with " + std::to_string(tokens.size()) +
                " tokens; pages hold " + std::to_string(page_size_));
  }
  if (page.published) return;
  const uint64_t key = key_of(parent, tokens);
  const auto range = index_.equal_range(key);
  for (auto it = range.first; it != range.second; ++it) {
    if (matches(pages_[static_cast<size_t>(it->second)], parent, tokens)) return;  // the first copy stays the shared one
  }
  page.published = true;
  page.key = key;
  page.parent = parent;
  page.parent_generation = parent < 0 ? 0 : pages_[static_cast<size_t>(parent)].generation;
  page.tokens.assign(tokens.begin(), tokens.end());
  index_.emplace(key, id);
}

void PagePool::release(int32_t id) {
  check(id, "released");
  Page& page = pages_[static_cast<size_t>(id)];
  if (page.refs <= 0) throw Error("KV page " + std::to_string(id) + " released but not referenced");
  if (--page.refs > 0) return;
  if (page.published) {
    page.lru_position = lru_.insert(lru_.end(), id);
  } else {
    forget(id);
    free_.push_back(id);
  }
}

}  // namespace adallm::kv
