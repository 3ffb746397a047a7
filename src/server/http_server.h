// The OpenAI-compatible HTTP server (cpp-httplib): routes, API-key auth, body limits, OpenAI-shaped JSON
// responses and server-sent-event streams over the serving layer. Many worker threads share the one
// Engine through server/serving.h. Request errors are OpenAI error bodies; the server keeps serving.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/serving.h"

namespace httplib {
class Server;
}

namespace adallm::server {

// Requests with more header fields get 431.
inline constexpr size_t kMaxHeaders = 100;

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8000;                         // 0: any free port (bind() returns it)
  std::string api_key;                     // non-empty: every endpoint but /health needs "Bearer <key>"
  size_t max_body_bytes = 4 << 20;         // larger bodies get 413
  int threads = 64;                        // HTTP workers: each open stream or keep-alive connection holds one
  int read_timeout_s = 30;                 // a client that stops sending mid-request is dropped
  int write_timeout_s = 30;
  // A stream that sent nothing for this long gets an SSE comment (": keep-alive") while it waits.
  std::chrono::milliseconds sse_keepalive{15000};
};

class HttpServer {
 public:
  HttpServer(Serving& serving, ServerOptions options);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port; returns the port (the one chosen for port 0). Throws adallm::Error when it cannot.
  int bind();
  // Serves until stop(); returns then.
  void listen();
  // From any thread: ends open streams, stops accepting, makes listen() return.
  void stop();

 private:
  void routes();

  Serving& serving_;
  ServerOptions options_;
  std::unique_ptr<httplib::Server> http_;
  int64_t created_;  // Unix seconds of the start: the model's "created" in /v1/models
  std::atomic<bool> stopping_{false};
};

}  // namespace adallm::server
