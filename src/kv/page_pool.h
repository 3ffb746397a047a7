// The serving engine's KV pages: reference-counted, with prefix caching. A full page whose tokens are
// known is published under its content — the page before it in its sequence plus its own tokens — and a
// later sequence with the same prefix takes the same page instead of computing it again. Unreferenced
// published pages stay cached and are evicted least recently used first when fresh pages run out.
// Only ids and bookkeeping live here; the memory behind the pages is the backend's KvCache, the choice of
// what to share is the scheduler's.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>
#include <vector>

namespace adallm::kv {

class PagePool {
 public:
  // `prefix_caching` false: nothing is ever published or found, and a released page is free at once.
  PagePool(int64_t num_pages, int64_t page_size, bool prefix_caching);

  int64_t num_pages() const { return static_cast<int64_t>(pages_.size()); }
  int64_t page_size() const { return page_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  // Pages allocate() can hand out now: never used or released unpublished, plus the evictable cached ones.
  int64_t num_free() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t num_cached() const { return static_cast<int64_t>(lru_.size()); }  // unreferenced, kept for reuse
  int64_t num_referenced() const { return num_pages() - num_free(); }
  int32_t refcount(int32_t page) const;

  // A page with no content (refcount 1): a free one, else the least recently used cached page, whose
  // content is forgotten. -1 when every page is referenced.
  int32_t allocate();

  // The published page holding `tokens` (page_size of them) right after `parent` (-1: the first page of a
  // sequence), its refcount raised; -1 when there is none. `parent` must be referenced by the caller.
  int32_t lookup(int32_t parent, std::span<const int32_t> tokens);

  // Publishes the referenced page `page`, full with `tokens`, right after `parent` (-1 for a first page;
  // referenced by the caller). A page already published with the same content wins: `page` then stays
  // private. Does nothing without prefix caching.
  void publish(int32_t page, int32_t parent, std::span<const int32_t> tokens);

  // Lowers the refcount; at zero a published page joins the cache, any other becomes free. Throws
  // adallm::Error for an id out of range or a page nobody references (a double release is a bug).
  void release(int32_t page);

  // Prefix-cache statistics: pages looked up and pages found.
  int64_t lookups() const { return lookups_; }
  int64_t hits() const { return hits_; }

 private:
  struct Page {
    int32_t refs = 0;
    uint32_t generation = 0;  // bumped whenever the page's content is forgotten, so stale children never match
    bool published = false;
    int32_t parent = -1;
    uint32_t parent_generation = 0;
    uint64_t key = 0;
    std::vector<int32_t> tokens;
    std::list<int32_t>::iterator lru_position;  // valid while cached (published, refs == 0)
  };

  uint64_t key_of(int32_t parent, std::span<const int32_t> tokens) const;
  bool matches(const Page& page, int32_t parent, std::span<const int32_t> tokens) const;
  void check(int32_t page, const char* what) const;
  void forget(int32_t page);

  int64_t page_size_;
  bool prefix_caching_;
  std::vector<Page> pages_;
  std::vector<int32_t> free_;  // a stack: lowest ids first on a fresh pool
  std::list<int32_t> lru_;     // cached pages, least recently used first
  std::unordered_multimap<uint64_t, int32_t> index_;  // content key → published pages
  int64_t lookups_ = 0, hits_ = 0;
};

}  // namespace adallm::kv
