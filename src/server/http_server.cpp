// The HTTP server (see http_server.h). Streams are cpp-httplib chunked content providers: each call pumps
// one round of engine events into SSE chunks and blocks in the engine stream meanwhile, never spinning.
// The content type is exactly "text/event-stream", the one text type cpp-httplib never compresses
// (compression would hold every event back until the end). A failed write is a client that went away:
// its Generation is dropped, which cancels its engine requests. While a handler waits for the engine it
// looks at its socket (server/connection_probe.h), so that a client gone before any write cancels too.
#include "server/http_server.h"

#include <httplib.h>

#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "server/connection_probe.h"
#include "server/openai_response.h"

namespace adallm::server {

namespace {

using json = nlohmann::ordered_json;

void send_json(httplib::Response& res, int status, const json& body) {
  res.status = status;
  res.set_content(dump_json(body), "application/json");
}

void send_error(httplib::Response& res, const ApiError& e) { send_json(res, e.status(), e.body()); }

// cpp-httplib 0.11 listens with a backlog of 5 connections (CPPHTTPLIB_LISTEN_BACKLOG, compiled into
// Debian's library): 64 clients connecting at once overflow it, the kernel drops their SYNs and they retry
// a second later (a p99 time to first token of 1.05 s in bench/http_overhead.sh on the H100). listen() on a
// listening socket sets a new backlog (the kernel caps it at net.core.somaxconn).
class BackloggedServer : public httplib::Server {
 public:
  static constexpr int kListenBacklog = 1024;
  void deepen_backlog() {
    if (::listen(svr_sock_, kListenBacklog) != 0) {
      throw Error(std::string("listen() with a backlog of ") + std::to_string(kListenBacklog) + " failed: " +
                  std::strerror(errno));
    }
  }
};

// Compares in time independent of where the strings first differ (the length may leak; the key may not).
bool same_secret(const std::string& given, const std::string& expected) {
  if (given.size() != expected.size()) return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < given.size(); ++i) diff |= static_cast<unsigned char>(given[i] ^ expected[i]);
  return diff == 0;
}

// Bodies are JSON: a request that says it sends something else (a form from `curl -d` without -H, a
// multipart upload) is refused rather than parsed as JSON by accident. No Content-Type is accepted.
void check_content_type(const httplib::Request& req) {
  const std::string type = req.get_header_value("Content-Type");
  std::string media = type.substr(0, type.find(';'));
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.pop_back();
  for (char& c : media) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (type.empty() || media == "application/json") return;
  throw ApiError(415, "the request body must be JSON (Content-Type: application/json), got Content-Type \"" + type + "\"",
                 "", "invalid_request_error", "unsupported_media_type");
}

// Reads a POST body through cpp-httplib's content reader, whose limit holds for chunked bodies too (the
// library checks set_payload_max_length against Content-Length only). A refused or unreadable body leaves
// bytes unread: the connection is closed after the error.
std::string read_body(httplib::Response& res, const httplib::ContentReader& reader, size_t max_bytes) {
  std::string body;
  bool too_large = false;
  const bool ok = reader([&](const char* data, size_t length) {
    if (length > max_bytes - body.size()) {
      too_large = true;
      return false;
    }
    body.append(data, length);
    return true;
  });
  if (too_large || res.status == 413) {
    res.set_header("Connection", "close");
    throw ApiError(413, "the request body is larger than " + std::to_string(max_bytes) + " bytes (--max-body-bytes)",
                   "", "invalid_request_error", "request_too_large");
  }
  if (!ok) {
    res.set_header("Connection", "close");
    throw ApiError(400, "the request body could not be read: malformed chunked encoding, or cut short");
  }
  return body;
}

std::string sse(const json& chunk) { return "data: " + dump_json(chunk) + "\n\n"; }

// How often a waiting handler looks at its client and at shutdown between engine events.
constexpr std::chrono::milliseconds kPollInterval{200};

using Clock = std::chrono::steady_clock;

// One streaming response's state, shared by its content provider and resource releaser.
struct Stream {
  std::unique_ptr<Generation> generation;
  std::unique_ptr<ConnectionProbe> probe;
  ResponseMeta meta;
  bool include_usage = false;
  bool logprobs = false;  // the request asked for them: text chunks carry their tokens' entries
  bool started = false;
  bool ended = false;
  std::chrono::milliseconds keepalive{0};
  Clock::time_point last_write = Clock::now();

  bool write(httplib::DataSink& sink, const std::string& out) {
    if (!sink.write(out.data(), out.size())) {
      generation->cancel();
      return false;
    }
    last_write = Clock::now();
    return true;
  }

  // Waits for the next engine event: an SSE comment whenever nothing was sent for `keepalive` (proxies
  // and clients drop connections that stay silent while a request is queued), and the client and
  // shutdown looked at every kPollInterval. False: the client is gone, or the server is stopping.
  bool wait(httplib::DataSink& sink, const std::atomic<bool>& stopping) {
    const auto interval = std::min(kPollInterval, keepalive);
    for (;;) {
      if (stopping.load()) return false;
      if (probe->closed()) {  // a write would only fail one or two writes later
        generation->cancel();
        return false;
      }
      if (generation->wait(interval)) return true;
      if (Clock::now() - last_write >= keepalive && !write(sink, ": keep-alive\n\n")) return false;
    }
  }

  // Returns false to abort the response (the client is gone).
  bool pump(httplib::DataSink& sink, const std::atomic<bool>& stopping) {
    if (ended) return false;  // not reached: done() ends the provider loop
    std::string out;
    if (!started) {  // the opening chunks go out at once, before any wait
      started = true;
      for (size_t i = 0; i < generation->num_choices(); ++i) {
        const auto index = static_cast<int64_t>(i);
        if (meta.endpoint == Endpoint::chat) {
          out += sse(chunk_json(meta, index, "", "", true, include_usage));
        } else if (!generation->echo_text(i).empty()) {
          out += sse(chunk_json(meta, index, generation->echo_text(i), "", false, include_usage));
        }
      }
      if (!out.empty()) return write(sink, out);
    }
    if (!generation->done()) {
      try {
        if (!wait(sink, stopping)) {
          if (!stopping.load()) return false;
          throw ApiError(503, "the server is shutting down");
        }
        std::vector<ChoiceDelta> deltas;
        generation->next(deltas);
        for (const ChoiceDelta& d : deltas) {
          // Reasoning comes before the content a delta holds (it was generated first); the delta's logprobs
          // go with its first chunk.
          if (!d.reasoning.empty()) {
            out += sse(reasoning_chunk_json(meta, d.index, d.reasoning, include_usage, logprobs ? &d.logprobs : nullptr));
          }
          if (!d.text.empty() || (d.reasoning.empty() && !d.logprobs.empty())) {
            const std::vector<LogprobEntry> none;
            const std::vector<LogprobEntry>* entries = d.reasoning.empty() ? &d.logprobs : &none;
            out += sse(chunk_json(meta, d.index, d.text, "", false, include_usage, logprobs ? entries : nullptr));
          }
          for (const ToolCallDelta& call : d.tool_calls) {
            out += sse(tool_call_chunk_json(meta, d.index, call, include_usage));
          }
          if (!d.finish_reason.empty()) out += sse(chunk_json(meta, d.index, "", d.finish_reason, false, include_usage));
        }
      } catch (const ApiError& e) {
        generation->cancel();
        out += sse(e.body());
        ended = true;
      }
    }
    if (generation->done() && !ended) {
      if (include_usage) out += sse(usage_chunk_json(meta, generation->usage()));
      ended = true;
    }
    if (ended) out += "data: [DONE]\n\n";
    if (!out.empty() && !write(sink, out)) return false;
    if (ended) sink.done();
    return true;
  }
};

}  // namespace

HttpServer::HttpServer(Serving& serving, ServerOptions options)
    : serving_(serving), options_(std::move(options)), http_(std::make_unique<BackloggedServer>()),
      created_(std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
                   .count()) {
  if (options_.threads < 1) throw Error("the HTTP server needs at least one worker thread");
  const size_t threads = static_cast<size_t>(options_.threads);
  http_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  http_->set_payload_max_length(options_.max_body_bytes);
  http_->set_read_timeout(options_.read_timeout_s);
  http_->set_write_timeout(options_.write_timeout_s);
  routes();
}

HttpServer::~HttpServer() = default;

void HttpServer::routes() {
  httplib::Server& http = *http_;
  http.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // cpp-httplib bounds each header line (8 KiB) but not their number.
    if (req.headers.size() > kMaxHeaders) {
      send_error(res, ApiError(431, "the request has " + std::to_string(req.headers.size()) + " header fields; at most " +
                                        std::to_string(kMaxHeaders) + " are accepted", "", "invalid_request_error",
                               "request_header_fields_too_large"));
      res.set_header("Connection", "close");
      return httplib::Server::HandlerResponse::Handled;
    }
    if (options_.api_key.empty() || req.path == "/health") return httplib::Server::HandlerResponse::Unhandled;
    if (same_secret(req.get_header_value("Authorization"), "Bearer " + options_.api_key)) {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    send_error(res, ApiError(401, "Incorrect or missing API key: send the header `Authorization: Bearer <key>`", "",
                             "invalid_request_error", "invalid_api_key"));
    res.set_header("Connection", "close");  // the unread body must not be taken for the next request
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses cpp-httplib sets itself (no route, oversize body, malformed request) get an OpenAI body too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                   httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) {
      send_error(res, ApiError(404, "no route " + req.method + " " + req.path, "", "invalid_request_error", "not_found"));
    } else if (res.status == 413) {
      send_error(res, ApiError(413, "the request body is larger than " + std::to_string(options_.max_body_bytes) +
                                        " bytes (--max-body-bytes)", "", "invalid_request_error", "request_too_large"));
    } else {
      send_error(res, ApiError(res.status, "the HTTP request could not be handled (status " +
                                               std::to_string(res.status) + ")"));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string what = "unknown exception";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& e) {
      what = e.what();
    } catch (...) {
    }
    log::error("request failed: ", what);
    send_error(res, ApiError(500, "internal error: " + what));
  });
  http.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    serving_.metrics().http_request(res.status);
    log::info(req.remote_addr, " \"", req.method, " ", req.path, "\" ", res.status);
  });

  http.Get("/health", [](const httplib::Request&, httplib::Response& res) { send_json(res, 200, {{"status", "ok"}}); });
  http.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    json model;
    model["id"] = serving_.model_name();
    model["object"] = "model";
    model["created"] = created_;
    model["owned_by"] = "adallm";
    model["max_model_len"] = serving_.max_model_len();
    send_json(res, 200, {{"object", "list"}, {"data", json::array({model})}});
  });
  http.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(serving_.render_metrics(), "text/plain; version=0.0.4");
  });
  const auto generate = [this](Endpoint endpoint) {
    return [this, endpoint](const httplib::Request& req, httplib::Response& res, const httplib::ContentReader& reader) {
      try {
        const std::string body = read_body(res, reader, options_.max_body_bytes);  // all of it: keep-alive goes on
        check_content_type(req);
        std::unique_ptr<Generation> generation;
        bool stream = false, include_usage = false, logprobs = false;
        if (endpoint == Endpoint::chat) {
          const ChatRequest r = parse_chat_request(body);
          generation = serving_.chat(r);
          stream = r.stream;
          include_usage = r.include_usage;
          logprobs = r.logprobs.has_value();
        } else {
          const CompletionRequest r = parse_completion_request(body);
          generation = serving_.complete(r);
          stream = r.stream;
          include_usage = r.include_usage;
          logprobs = r.logprobs.has_value();
        }
        ResponseMeta meta = new_response_meta(endpoint, serving_.model_name());
        auto probe = std::make_unique<ConnectionProbe>(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
        if (!probe->found()) {
          log::warn("no socket found for ", req.remote_addr, ":", req.remote_port,
                    ": this request is not cancelled if its client disconnects before its first write");
        }
        if (stream) {
          auto state = std::make_shared<Stream>();
          state->generation = std::move(generation);
          state->probe = std::move(probe);
          state->keepalive = options_.sse_keepalive;
          state->meta = std::move(meta);
          state->include_usage = include_usage;
          state->logprobs = logprobs;
          res.set_header("Cache-Control", "no-cache");
          res.set_chunked_content_provider(
              "text/event-stream",
              [this, state](size_t, httplib::DataSink& sink) {
                try {
                  return state->pump(sink, stopping_);
                } catch (const std::exception& e) {  // headers are sent: all that is left is to end it
                  log::error("stream failed: ", e.what());
                  state->generation->cancel();
                  return false;
                }
              },
              [state](bool success) {
                if (!success) state->generation->cancel();
              });
          return;
        }
        const size_t n = generation->num_choices();
        std::vector<std::string> texts(n), reasons(n), reasoning(n);
        std::vector<std::vector<LogprobEntry>> entries(n);
        std::vector<std::vector<ToolCallDelta>> tool_calls(n);
        for (size_t i = 0; i < n; ++i) texts[i] = generation->echo_text(i);
        std::vector<ChoiceDelta> deltas;
        while (!generation->done()) {
          // A client that hangs up before its answer cancels the request (nothing can be written to it).
          for (;;) {
            if (stopping_.load()) throw ApiError(503, "the server is shutting down");
            if (probe->closed()) {
              generation->cancel();
              // nginx's "client closed request": logged and counted, written to nobody.
              send_error(res, ApiError(499, "the client closed the connection: request cancelled"));
              return;
            }
            if (generation->wait(kPollInterval)) break;
          }
          deltas.clear();
          generation->next(deltas);
          for (const ChoiceDelta& d : deltas) {
            texts[static_cast<size_t>(d.index)] += d.text;
            reasoning[static_cast<size_t>(d.index)] += d.reasoning;
            reasons[static_cast<size_t>(d.index)] = d.finish_reason;
            auto& choice_entries = entries[static_cast<size_t>(d.index)];
            choice_entries.insert(choice_entries.end(), d.logprobs.begin(), d.logprobs.end());
            auto& choice_calls = tool_calls[static_cast<size_t>(d.index)];
            choice_calls.insert(choice_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
          }
        }
        const bool with_reasoning = endpoint == Endpoint::chat && serving_.reasoning() != text::ReasoningFormat::none;
        send_json(res, 200, response_json(meta, texts, reasons, generation->usage(), logprobs ? &entries : nullptr,
                                          endpoint == Endpoint::chat ? &tool_calls : nullptr,
                                          with_reasoning ? &reasoning : nullptr));
      } catch (const ApiError& e) {
        send_error(res, e);
      }
    };
  };
  http.Post("/v1/chat/completions", generate(Endpoint::chat));
  http.Post("/v1/completions", generate(Endpoint::completions));

  // Known paths with another method: 405 (cpp-httplib would answer 404).
  const auto not_allowed = [](const char* allowed) {
    return [allowed](const httplib::Request& req, httplib::Response& res) {
      res.set_header("Allow", allowed);
      send_error(res, ApiError(405, "method " + req.method + " is not allowed on " + req.path + "; use " + allowed, "",
                               "invalid_request_error", "method_not_allowed"));
    };
  };
  for (const char* path : {"/v1/chat/completions", "/v1/completions"}) {
    http.Get(path, not_allowed("POST"));
    http.Put(path, not_allowed("POST"));
    http.Patch(path, not_allowed("POST"));
    http.Delete(path, not_allowed("POST"));
  }
  for (const char* path : {"/health", "/v1/models", "/metrics"}) {
    http.Post(path, not_allowed("GET"));
    http.Put(path, not_allowed("GET"));
    http.Patch(path, not_allowed("GET"));
    http.Delete(path, not_allowed("GET"));
  }
}

int HttpServer::bind() {
  int port = options_.port;
  if (port == 0) {
    port = http_->bind_to_any_port(options_.host);
    if (port < 0) throw Error("cannot bind " + options_.host + " to any port").hint("check --host");
  } else if (!http_->bind_to_port(options_.host, port)) {
    throw Error("cannot bind " + options_.host + ":" + std::to_string(port))
        .hint("is another server on that port? pick one with --port");
  }
  static_cast<BackloggedServer&>(*http_).deepen_backlog();
  return port;
}

void HttpServer::listen() {
  if (!http_->listen_after_bind() && !stopping_.load()) throw Error("the HTTP server stopped unexpectedly");
}

void HttpServer::stop() {
  stopping_.store(true);
  http_->stop();
}

}  // namespace adallm::server
