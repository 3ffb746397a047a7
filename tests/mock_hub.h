// A Hugging Face hub on 127.0.0.1 for the download tests (tests/io, tests/cli): cpp-httplib on an
// ephemeral port, in-process, answering what huggingface.co answers to huggingface_hub: the revision
// listing (/api/models/{repo}/revision/{rev}, with sizes and blob ids), /resolve/ with ETag and
// X-Repo-Commit, LFS files as a 302 (X-Linked-Etag, X-Linked-Size) to a CDN path whose own ETag differs,
// Range requests, 401/403/404 with X-Error-Code. Every request is logged, and a transfer can be cut off.
#pragma once

#include <httplib.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace adallm::test {

class MockHub {
 public:
  struct File {
    std::string content;
    bool lfs = false;  // served through a redirect to /cdn/, named by its sha256
    std::string blob_id;  // git blob id (regular files) or sha256 (LFS): derived from the content
  };
  struct Repo {
    std::string commit;                   // 40 hex digits
    std::set<std::string> revisions;      // branch and tag names besides the commit itself
    std::map<std::string, File> files;
    std::string token;  // when set: no token is a 401, another token a 403 (a gated repo)
    std::map<std::string, uint64_t> listed_sizes;  // sizes the listing gives instead of the real ones
  };
  struct Request {
    std::string method, path, range, authorization;
  };

  MockHub() {
    server_.Get(R"(/api/models/([^/]+/[^/]+)/revision/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) { listing(req, res); });
    server_.Get(R"(/([^/]+/[^/]+)/resolve/([^/]+)/(.+))",
                [this](const httplib::Request& req, httplib::Response& res) { resolve(req, res); });
    server_.Get(R"(/cdn/([0-9a-f]+))", [this](const httplib::Request& req, httplib::Response& res) { cdn(req, res); });
    // Logged before the answer, so that a client that has its answer finds its request in the log.
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response&) {
      log(req);
      return httplib::Server::HandlerResponse::Unhandled;
    });
    server_.set_tcp_nodelay(true);  // headers and body go out as separate writes: no Nagle wait between them
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() is a no-op until the accept loop runs: wait for it, so that the destructor always ends it.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~MockHub() {
    server_.stop();
    thread_.join();
  }
  MockHub(const MockHub&) = delete;
  MockHub& operator=(const MockHub&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Adds a repo whose `revisions` (e.g. "main") name `commit`; blob ids are made up from the contents.
  void add_repo(const std::string& repo_id, const std::string& commit, std::map<std::string, File> files,
                std::set<std::string> revisions = {"main"}) {
    for (auto& [name, file] : files) file.blob_id = fake_hash(name + file.content, file.lfs ? 64 : 40);
    std::lock_guard<std::mutex> lock(mutex_);
    repos_[repo_id] = Repo{commit, std::move(revisions), std::move(files), "", {}};
  }
  // Changes a repo's settings (token, listed sizes) under the lock.
  template <typename Fn>
  void edit_repo(const std::string& repo_id, Fn&& fn) {
    std::lock_guard<std::mutex> lock(mutex_);
    fn(repos_.at(repo_id));
  }
  std::string blob_id(const std::string& repo_id, const std::string& file) {
    std::lock_guard<std::mutex> lock(mutex_);
    return repos_.at(repo_id).files.at(file).blob_id;
  }

  // The next transfer of `file`'s bytes sends only the first `bytes` of what was asked for, then drops
  // the connection.
  void cut_next(const std::string& file, uint64_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    cuts_[file] = bytes;
  }
  // Answer Range requests with the whole file and 200, as a server without range support does.
  void set_ignore_ranges(bool ignore) {
    std::lock_guard<std::mutex> lock(mutex_);
    ignore_ranges_ = ignore;
  }

  std::vector<Request> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  // The paths requested, in order.
  std::vector<std::string> paths() const {
    std::vector<std::string> out;
    for (const Request& r : requests()) out.push_back(r.path);
    return out;
  }
  void clear_requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.clear();
  }

  // Deterministic hex of `digits` characters standing in for a sha1/sha256 (FNV-1a, rehashed per word).
  static std::string fake_hash(const std::string& text, size_t digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (uint64_t word = 0; out.size() < digits; ++word) {
      uint64_t h = 1469598103934665603ull ^ word;
      for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
      for (int i = 0; i < 16 && out.size() < digits; ++i) out += kHex[(h >> (4 * i)) & 15];
    }
    return out;
  }

 private:
  void log(const httplib::Request& req) {
    std::lock_guard<std::mutex> lock(mutex_);
    requests_.push_back({req.method, req.path, req.get_header_value("Range"), req.get_header_value("Authorization")});
  }

  static void error(httplib::Response& res, int status, const std::string& code, const std::string& message) {
    res.status = status;
    res.set_header("X-Error-Code", code);
    res.set_header("X-Error-Message", message);
    res.set_content(nlohmann::json{{"error", message}}.dump(), "application/json");
  }

  // The repo of a request after the hub's checks, or null with the error answered. Called under mutex_.
  const Repo* find_repo(const httplib::Request& req, httplib::Response& res, const std::string& repo_id,
                        const std::string& revision) {
    auto it = repos_.find(repo_id);
    if (it == repos_.end()) {
      error(res, 404, "RepoNotFound", "Repository Not Found for url: " + req.path);
      return nullptr;
    }
    const Repo& repo = it->second;
    const std::string auth = req.get_header_value("Authorization");
    if (!repo.token.empty() && auth.empty()) {
      error(res, 401, "GatedRepo", "Access to model " + repo_id + " is restricted. You must be authenticated.");
      return nullptr;
    }
    if (!repo.token.empty() && auth != "Bearer " + repo.token) {
      error(res, 403, "GatedRepo", "Access to model " + repo_id + " is restricted and you are not in the authorized list.");
      return nullptr;
    }
    if (revision != repo.commit && repo.revisions.count(revision) == 0) {
      error(res, 404, "RevisionNotFound", "Invalid rev id: " + revision);
      return nullptr;
    }
    return &repo;
  }

  void listing(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Repo* repo = find_repo(req, res, req.matches[1], req.matches[2]);
    if (repo == nullptr) return;
    nlohmann::json siblings = nlohmann::json::array();
    for (const auto& [name, file] : repo->files) {
      auto listed = repo->listed_sizes.find(name);
      const uint64_t size = listed != repo->listed_sizes.end() ? listed->second : file.content.size();
      nlohmann::json s = {{"rfilename", name}, {"size", size}};
      if (file.lfs) {
        s["blobId"] = fake_hash("pointer" + name, 40);
        s["lfs"] = {{"sha256", file.blob_id}, {"size", size}, {"pointerSize", 134}};
      } else {
        s["blobId"] = file.blob_id;
      }
      siblings.push_back(s);
    }
    const nlohmann::json j = {{"id", std::string(req.matches[1])}, {"sha", repo->commit}, {"siblings", siblings}};
    res.set_content(j.dump(), "application/json");
  }

  void resolve(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    const Repo* repo = find_repo(req, res, req.matches[1], req.matches[2]);
    if (repo == nullptr) return;
    auto it = repo->files.find(req.matches[3]);
    if (it == repo->files.end()) {
      error(res, 404, "EntryNotFound", std::string(req.matches[3]) + " does not exist on \"" + repo->commit + "\"");
      return;
    }
    const File& file = it->second;
    res.set_header("X-Repo-Commit", repo->commit);
    if (file.lfs) {
      // The hub's answer names the pointer's git blob in ETag and the real file in X-Linked-Etag.
      res.status = 302;
      res.set_header("ETag", "\"" + fake_hash("pointer" + it->first, 40) + "\"");
      res.set_header("X-Linked-Etag", "\"" + file.blob_id + "\"");
      res.set_header("X-Linked-Size", std::to_string(file.content.size()));
      res.set_header("Location", "/cdn/" + file.blob_id);
      return;
    }
    res.set_header("ETag", "\"" + file.blob_id + "\"");
    serve(req, res, it->first, file.content);
  }

  void cdn(const httplib::Request& req, httplib::Response& res) {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [repo_id, repo] : repos_) {
      for (const auto& [name, file] : repo.files) {
        if (file.lfs && file.blob_id == req.matches[1]) {
          res.set_header("ETag", "\"cdn-" + fake_hash(file.blob_id, 16) + "\"");  // not the hub's: never a blob name
          serve(req, res, name, file.content);
          return;
        }
      }
    }
    res.status = 404;
  }

  // The bytes of a file: httplib answers a Range with 206 and Content-Range; a pending cut sends part of
  // what was asked for and drops the connection. Called under mutex_.
  void serve(const httplib::Request&, httplib::Response& res, const std::string& name, const std::string& content) {
    std::optional<uint64_t> cut;
    if (auto c = cuts_.find(name); c != cuts_.end()) {
      cut = c->second;
      cuts_.erase(c);
    }
    auto body = std::make_shared<std::string>(content);
    if (ignore_ranges_) {
      res.status = 200;  // a chunked provider gets no range applied
      res.set_chunked_content_provider("application/octet-stream", [body, sent = false](size_t, httplib::DataSink& sink) mutable {
        if (!sent) {
          sent = true;
          sink.write(body->data(), body->size());
          return true;
        }
        sink.done();
        return true;
      });
      return;
    }
    res.set_content_provider(content.size(), "application/octet-stream",
                             [body, cut](size_t offset, size_t length, httplib::DataSink& sink) {
                               if (cut) {
                                 sink.write(body->data() + offset, std::min<size_t>(*cut, length));
                                 return false;  // drops the connection
                               }
                               sink.write(body->data() + offset, length);
                               return true;
                             });
  }

  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::map<std::string, Repo> repos_;
  std::map<std::string, uint64_t> cuts_;
  bool ignore_ranges_ = false;
  std::vector<Request> requests_;
};

}  // namespace adallm::test
