// The persistent pool behind parallel_for: workers sleep on a condition variable and wake per job; a job
// hands out chunks through an atomic counter so fast threads take more. The caller waits until every
// worker that joined the job has left it, so no worker touches a job (or its fn) after parallel_for returns.
#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace adallm {
namespace {

// Chunks per thread: small enough to balance uneven chunks, large enough to keep counter traffic low.
constexpr int64_t kChunksPerThread = 4;

thread_local bool t_inside_chunk = false;

struct Job {
  const std::function<void(int64_t, int64_t)>* fn = nullptr;
  int64_t n = 0;
  int64_t chunk = 0;
  int64_t num_chunks = 0;
  std::atomic<int64_t> next{0};
  std::exception_ptr error;  // guarded by Pool::mutex
};

class Pool {
 public:
  explicit Pool(int n) {
    size_ = n;
    for (int i = 1; i < n; ++i) workers_.emplace_back([this] { work(); });
  }
  ~Pool() {
    {
      std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
  }
  int size() const { return size_; }

  // Returns false (nothing run) when another caller holds the pool.
  bool run(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn) {
    std::unique_lock caller(caller_mutex_, std::try_to_lock);
    if (!caller.owns_lock()) return false;
    Job job;
    job.fn = &fn;
    job.n = n;
    const int64_t max_chunks = std::max<int64_t>(1, static_cast<int64_t>(size_) * kChunksPerThread);
    const int64_t by_size = n / min_chunk;  // floor: every chunk but the last holds >= min_chunk
    job.num_chunks = std::max<int64_t>(1, std::min(max_chunks, by_size));
    job.chunk = (n + job.num_chunks - 1) / job.num_chunks;
    job.num_chunks = (n + job.chunk - 1) / job.chunk;
    {
      std::lock_guard lock(mutex_);
      job_ = &job;
      ++generation_;
    }
    wake_.notify_all();
    run_chunks(job);
    std::unique_lock lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
    job_ = nullptr;
    if (job.error) std::rethrow_exception(job.error);
    return true;
  }

 private:
  void run_chunks(Job& job) {
    const bool was_inside = t_inside_chunk;
    t_inside_chunk = true;
    for (;;) {
      const int64_t c = job.next.fetch_add(1);
      if (c >= job.num_chunks) break;
      const int64_t begin = c * job.chunk;
      const int64_t end = std::min(job.n, begin + job.chunk);
      try {
        (*job.fn)(begin, end);
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!job.error) job.error = std::current_exception();
        job.next.store(job.num_chunks);  // cancel what has not started
      }
    }
    t_inside_chunk = was_inside;
  }

  void work() {
    uint64_t seen = 0;
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      Job* job = job_;
      if (job == nullptr) continue;  // woke after the job ended
      ++busy_;
      lock.unlock();
      run_chunks(*job);
      lock.lock();
      if (--busy_ == 0) done_.notify_all();
    }
  }

  int size_ = 1;
  std::vector<std::thread> workers_;
  std::mutex caller_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  uint64_t generation_ = 0;
  Job* job_ = nullptr;
  int busy_ = 0;
  bool stop_ = false;
};

std::mutex g_pool_mutex;
std::unique_ptr<Pool> g_pool;

int resolve(int n) {
  if (n > 0) return n;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

Pool& pool() {
  std::lock_guard lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_unique<Pool>(resolve(0));
  return *g_pool;
}

}  // namespace

void set_num_threads(int n) {
  std::lock_guard lock(g_pool_mutex);
  const int size = resolve(n);
  if (g_pool && g_pool->size() == size) return;
  g_pool.reset();
  g_pool = std::make_unique<Pool>(size);
}

int num_threads() { return pool().size(); }

void parallel_for(int64_t n, int64_t min_chunk, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  if (n <= min_chunk || t_inside_chunk) {
    fn(0, n);
    return;
  }
  Pool& p = pool();
  if (p.size() <= 1 || !p.run(n, min_chunk, fn)) fn(0, n);
}

}  // namespace adallm
