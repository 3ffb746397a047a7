// libcurl behind HttpClient (see http_client.h).
#include "io/http_client.h"

#include <curl/curl.h>

#include <cctype>
#include <mutex>

#include "core/error.h"

namespace adallm::io {
namespace {

// An error body is a short message; a misbehaving server's megabytes are not worth keeping.
constexpr size_t kMaxErrorBody = 64 * 1024;

// curl_global_init is not thread-safe: once per process, before the first handle.
void init_curl_once() {
  static std::once_flag once;
  static CURLcode result = CURLE_OK;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  if (result != CURLE_OK) throw Error(std::string("libcurl failed to initialize: ") + curl_easy_strerror(result));
}

struct Transfer {
  CURL* curl = nullptr;
  HttpResponse* response = nullptr;
  const BodySink* sink = nullptr;
  bool sink_stopped = false;
};

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

// A status line ("HTTP/1.1 302 Found") opens a hop; "Name: value" lines belong to the last one.
size_t on_header(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const std::string_view line(data, size * count);
  if (line.rfind("HTTP/", 0) == 0) {
    t->response->hops.emplace_back();
  } else if (const size_t colon = line.find(':'); colon != std::string_view::npos && !t->response->hops.empty()) {
    std::string name(trim(line.substr(0, colon)));
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    t->response->hops.back().emplace_back(std::move(name), std::string(trim(line.substr(colon + 1))));
  }
  return size * count;
}

// libcurl skips the bodies of the redirects it follows, so every byte here is the last hop's.
size_t on_body(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  if (t->sink == nullptr || status < 200 || status >= 300) {
    if (t->response->body.size() < kMaxErrorBody || t->sink == nullptr) t->response->body.append(data, n);
    return n;
  }
  t->response->status = status;
  if (!(*t->sink)(*t->response, std::string_view(data, n))) {
    t->sink_stopped = true;
    return CURL_WRITEFUNC_ERROR;
  }
  t->response->streamed += n;
  return n;
}

std::string header_in(const std::vector<std::pair<std::string, std::string>>& hop, std::string_view name) {
  for (const auto& [key, value] : hop) {
    if (key == name) return value;
  }
  return "";
}

}  // namespace

std::string HttpResponse::first_header(std::string_view name) const {
  return hops.empty() ? "" : header_in(hops.front(), name);
}

std::string HttpResponse::last_header(std::string_view name) const {
  return hops.empty() ? "" : header_in(hops.back(), name);
}

HttpClient::HttpClient(std::vector<std::string> headers) : curl_(nullptr), headers_(std::move(headers)) {
  init_curl_once();
  curl_ = curl_easy_init();
  if (curl_ == nullptr) throw Error("libcurl could not create a transfer handle");
}

HttpClient::~HttpClient() { curl_easy_cleanup(static_cast<CURL*>(curl_)); }

HttpResponse HttpClient::get(const std::string& url) { return get(url, {}, BodySink()); }

HttpResponse HttpClient::get(const std::string& url, const std::vector<std::string>& extra_headers,
                             const BodySink& sink) {
  CURL* curl = static_cast<CURL*>(curl_);
  curl_easy_reset(curl);  // options only: the open connection stays for the next request
  HttpResponse response;
  Transfer transfer{curl, &response, sink ? &sink : nullptr};

  struct HeaderList {
    curl_slist* list = nullptr;
    ~HeaderList() { curl_slist_free_all(list); }
  } header_list;
  std::vector<std::string> headers = headers_;
  headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
  for (const std::string& h : headers) {
    curl_slist* grown = curl_slist_append(header_list.list, h.c_str());
    if (grown == nullptr) throw Error("libcurl: out of memory building request headers");
    header_list.list = grown;
  }
  char error[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, header_list.list);
  curl_easy_setopt(curl, CURLOPT_USERAGENT, "adallm/0.1.0 (libcurl/" LIBCURL_VERSION ")");
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);  // no SIGALRM for DNS timeouts: other threads may run
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  // A transfer that moves nothing for a minute is cut off (a partial download is kept and resumed).
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 60L);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &transfer);
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);

  const CURLcode result = curl_easy_perform(curl);
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &response.status);
  if (transfer.sink_stopped) {
    response.error = "the receiver stopped the transfer";
  } else if (result != CURLE_OK) {
    response.error = error[0] != '\0' ? error : curl_easy_strerror(result);
  }
  return response;
}

std::string url_escape(std::string_view text, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (alnum || c == '-' || c == '.' || c == '_' || c == '~' || (keep_slash && c == '/')) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

}  // namespace adallm::io
