// The serving engine on its own thread, the sole owner of the model's KV cache and of the device: any
// thread submits requests and reads each one's events from its RequestStream. Nothing thrown on the
// engine thread crosses to callers: a failed step ends the affected requests with FinishReason::error.
// Dropping a stream before its last event cancels the request (a client that went away).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "adallm/request.h"
#include "engine/engine_core.h"

namespace adallm::engine {

class Engine;

// One request's events, in order. Thread-safe.
class RequestStream {
 public:
  int64_t id() const { return id_; }
  // Blocks until the next event and returns true, or returns false once the last event was taken.
  bool next(RequestOutput& out);
  // Waits at most `timeout` for an event; true when next() would return at once.
  bool wait_for(std::chrono::milliseconds timeout);
  // Asks the engine to stop this request; its last event then says FinishReason::cancelled (unless it
  // finished first).
  void cancel();

 private:
  friend class Engine;
  RequestStream(int64_t id, Engine* engine) : id_(id), engine_(engine) {}
  void push(RequestOutput event);

  int64_t id_;
  Engine* engine_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<RequestOutput> events_;
  bool last_pushed_ = false;
  bool last_taken_ = false;
};

class Engine {
 public:
  // Starts the engine thread. Throws adallm::Error for inconsistent options.
  Engine(model::Model& model, backend::Backend& backend, const EngineOptions& options);
  // Cancels what is unfinished, lets it end, and joins the thread.
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const EngineOptions& options() const { return core_.options(); }
  int64_t vocab_size() const { return core_.vocab_size(); }  // the model's: the width of token masks

  // Validates the request here, on the caller's thread (adallm::Error, nothing queued), then queues it.
  std::shared_ptr<RequestStream> submit(const GenerateRequest& request);
  void cancel(int64_t id);

  // KV pages held by sequences (cached prefix pages that no sequence holds are free) and the pool's
  // size, as of the engine thread's last step; from any thread. Idle and nothing leaked: 0 held.
  struct KvStats {
    int64_t pages_used = 0;
    int64_t num_pages = 0;
  };
  KvStats kv_stats() const { return {kv_pages_used_.load(), core_.pages().num_pages()}; }

 private:
  void run();

  EngineCore core_;  // the engine thread's alone once it runs, but for validate() and options()
  std::mutex mutex_;
  std::condition_variable wake_;
  struct Submitted {
    int64_t id;
    GenerateRequest request;
    std::weak_ptr<RequestStream> stream;
  };
  std::deque<Submitted> inbox_;
  std::vector<int64_t> cancels_;
  bool stopping_ = false;
  int64_t next_id_ = 1;
  std::unordered_map<int64_t, std::weak_ptr<RequestStream>> streams_;  // the engine thread's
  std::atomic<int64_t> kv_pages_used_{0};
  std::thread thread_;
};

}  // namespace adallm::engine
