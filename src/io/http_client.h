// HTTP GETs through libcurl, for the hub client (hf_hub.cpp): redirects followed, the headers of every
// hop kept (the hub names a file's blob in its own answer, before redirecting to a CDN), a small body
// kept in memory or a large one streamed to a sink. What a status means, retries and files are the
// caller's. Proxies come from libcurl's usual environment (https_proxy, no_proxy).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace adallm::io {

struct HttpResponse {
  long status = 0;    // of the last hop; 0 when no answer came
  std::string error;  // libcurl's reason when the transfer failed (no connection, cut off, stalled); else ""
  std::string body;   // the body, unless a 2xx one went to the sink
  uint64_t streamed = 0;  // bytes the sink took
  // Every hop's headers in order, names lower-cased.
  std::vector<std::vector<std::pair<std::string, std::string>>> hops;

  // The value of `name` (lower case) in the first hop, or in the last; "" when absent.
  std::string first_header(std::string_view name) const;
  std::string last_header(std::string_view name) const;
  bool ok() const { return error.empty() && status >= 200 && status < 300; }
};

// Takes a chunk of a 2xx body, with the response so far (status and headers: what to check before
// writing anything); false stops the transfer (HttpResponse::error is then set).
using BodySink = std::function<bool(const HttpResponse& head, std::string_view chunk)>;

// One connection reused across requests (one TLS handshake for a whole snapshot). Not thread-safe.
class HttpClient {
 public:
  // `headers` ("Name: value") go with every request; libcurl leaves a custom Authorization header out of
  // a redirect to another host, so a token never reaches a CDN.
  explicit HttpClient(std::vector<std::string> headers = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // A GET whose body is kept in HttpResponse::body.
  HttpResponse get(const std::string& url);
  // A GET whose 2xx body goes to `sink` as it arrives; any other status's body (the hub's error message)
  // is kept in HttpResponse::body. `extra_headers` add to the client's (e.g. a Range).
  HttpResponse get(const std::string& url, const std::vector<std::string>& extra_headers, const BodySink& sink);

 private:
  void* curl_;  // CURL*
  std::vector<std::string> headers_;
};

// Percent-encodes everything but RFC 3986's unreserved characters, and '/' when `keep_slash`.
std::string url_escape(std::string_view text, bool keep_slash);

}  // namespace adallm::io
