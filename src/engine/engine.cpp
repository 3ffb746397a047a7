// The engine thread and the request streams (see engine.h).
#include "engine/engine.h"

#include <exception>
#include <iterator>
#include <utility>

#include "core/error.h"

namespace adallm::engine {

bool RequestStream::next(RequestOutput& out) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (last_taken_) return false;
  ready_.wait(lock, [&] { return !events_.empty(); });
  out = std::move(events_.front());
  events_.pop_front();
  if (out.finished()) last_taken_ = true;
  return true;
}

bool RequestStream::wait_for(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  return ready_.wait_for(lock, timeout, [&] { return last_taken_ || !events_.empty(); });
}

void RequestStream::cancel() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (last_pushed_) return;  // finished already (or the engine is gone)
  }
  engine_->cancel(id_);
}

void RequestStream::push(RequestOutput event) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (event.finished()) last_pushed_ = true;
    events_.push_back(std::move(event));
  }
  ready_.notify_all();
}

Engine::Engine(model::Model& model, backend::Backend& backend, const EngineOptions& options)
    : core_(model, backend, options), thread_([this] { run(); }) {}

Engine::~Engine() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

std::shared_ptr<RequestStream> Engine::submit(const GenerateRequest& request) {
  core_.validate(request);
  std::shared_ptr<RequestStream> stream;
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) throw Error("the engine is shutting down");
    stream.reset(new RequestStream(next_id_++, this));
    inbox_.push_back({stream->id(), request, stream});
  }
  wake_.notify_all();
  return stream;
}

void Engine::cancel(int64_t id) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    cancels_.push_back(id);
  }
  wake_.notify_all();
}

void Engine::run() {
  for (;;) {
    std::deque<Submitted> inbox;
    std::vector<int64_t> cancels;
    bool stopping = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || !inbox_.empty() || !cancels_.empty() || !core_.idle(); });
      inbox.swap(inbox_);
      cancels.swap(cancels_);
      stopping = stopping_;
    }
    std::vector<RequestOutput> events;
    for (Submitted& s : inbox) {
      streams_[s.id] = s.stream;
      try {
        core_.add(s.request, s.id);
      } catch (const std::exception& e) {  // validated on submit: only a bug gets here
        RequestOutput out;
        out.request_id = s.id;
        out.finish_reason = FinishReason::error;
        out.error = e.what();
        out.prompt_tokens = static_cast<int64_t>(s.request.prompt.size());
        events.push_back(std::move(out));
      }
    }
    for (int64_t id : cancels) core_.cancel(id);
    for (const auto& [id, stream] : streams_) {
      if (stopping || stream.expired()) core_.cancel(id);  // shutting down, or nobody is listening
    }
    try {
      std::vector<RequestOutput> step_events = core_.step();
      events.insert(events.end(), std::make_move_iterator(step_events.begin()), std::make_move_iterator(step_events.end()));
    } catch (const std::exception& e) {
      std::vector<RequestOutput> failed = core_.fail_all(e.what());
      events.insert(events.end(), std::make_move_iterator(failed.begin()), std::make_move_iterator(failed.end()));
    }
    kv_pages_used_.store(core_.pages().num_referenced());
    for (RequestOutput& event : events) {
      const auto it = streams_.find(event.request_id);
      if (it == streams_.end()) continue;
      const bool finished = event.finished();
      if (std::shared_ptr<RequestStream> stream = it->second.lock()) stream->push(std::move(event));
      if (finished) streams_.erase(it);
    }
    if (stopping && core_.idle()) break;
  }
}

}  // namespace adallm::engine
