// A small persistent thread pool for the CPU backend's loops: parallel_for splits [0, n) into chunks that
// the pool's workers and the calling thread take in turn. Leaves what to parallelise (and any ordering
// that makes results independent of the split) to the caller: each index must be written by one chunk.
#pragma once

#include <cstdint>
#include <functional>

namespace adallm {

// Sets the pool size, the calling thread included: n = 0 picks std::thread::hardware_concurrency(), 1 runs
// everything inline. Joins the old workers first; do not call while a parallel_for is running.
void set_num_threads(int n);
// The current pool size (the calling thread included); starts the default pool on first use.
int num_threads();

// Calls fn(begin, end) over disjoint ranges covering [0, n), each at least min_chunk long (except the
// last), on the pool and the calling thread, and returns when all are done. Runs inline when n <=
// min_chunk, the pool has one thread, or it is called from inside a chunk (nested) or while another
// thread's parallel_for holds the pool: so it is safe from any thread, but only one caller at a time gets
// the workers. The first exception a chunk throws cancels the chunks not yet started and is rethrown here.
void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t begin, int64_t end)>& fn);

}  // namespace adallm
