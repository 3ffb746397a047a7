// Hugging Face repo ids resolved to cache snapshots, downloading what is missing (see hf_hub.h).
#include "io/hf_hub.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <set>
#include <string_view>
#include <system_error>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/log.h"
#include "io/http_client.h"
#include "io/safetensors.h"

namespace adallm::io {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kIndexName = "model.safetensors.index.json";
// What AdaLLM reads besides the weights: the model config, generation defaults, the tokenizer and its
// config, the chat template, ModelOpt's quantization config.
constexpr std::array<std::string_view, 8> kSideFiles = {
    "config.json",          "generation_config.json", "tokenizer.json",      "tokenizer_config.json",
    "special_tokens_map.json", "chat_template.jinja", "chat_template.json", "hf_quant_config.json"};
// A transfer cut off after it moved some bytes is resumed at once, this many times in all.
constexpr int kAttempts = 5;

struct HubFile {
  std::string name;
  std::optional<uint64_t> size;
  std::string etag;  // the blob's name: the LFS sha256, else the git blob id (the hub's ETag for each)
};

struct Listing {
  std::string commit;
  std::map<std::string, HubFile> files;
};

// The blob name the hub gives in its own answer (before any redirect to a CDN), as huggingface_hub reads
// it: X-Linked-Etag (LFS files), else ETag, without a weak prefix and quotes.
std::string hub_etag(const HttpResponse& r) {
  std::string etag = r.first_header("x-linked-etag");
  if (etag.empty()) etag = r.first_header("etag");
  if (etag.rfind("W/", 0) == 0) etag = etag.substr(2);
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') etag = etag.substr(1, etag.size() - 2);
  return etag;
}

std::string human_bytes(uint64_t bytes) {
  char buf[32];
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", b / 1e9);
  else if (b >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", b / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f kB", b / 1e3);
  return buf;
}

// huggingface_hub's lock of a blob (py-filelock takes flock() on Linux), held while the blob is
// downloaded, so that two processes, Python or AdaLLM, never write the same .incomplete file.
class BlobLock {
 public:
  BlobLock(const fs::path& path, const std::string& what) {
    fs::create_directories(path.parent_path());
    fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw Error(std::string("cannot open the lock file: ") + std::strerror(errno)).file(path.string());
    if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) return;
    log::info("waiting for another process downloading ", what, " (", path.string(), ")");
    while (::flock(fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        const int err = errno;
        ::close(fd_);
        throw Error(std::string("cannot lock: ") + std::strerror(err)).file(path.string());
      }
    }
  }
  ~BlobLock() { ::close(fd_); }  // closing releases the lock
  BlobLock(const BlobLock&) = delete;
  BlobLock& operator=(const BlobLock&) = delete;

 private:
  int fd_ = -1;
};

// One snapshot download: the listing, then the files AdaLLM reads that the cache lacks.
class Download {
 public:
  Download(const RepoRef& ref, const HubSettings& settings)
      : ref_(ref),
        settings_(settings),
        cache_(settings.cache_dir, ref.repo_id),
        client_(settings.token.empty() ? std::vector<std::string>{}
                                       : std::vector<std::string>{"Authorization: Bearer " + settings.token}) {}

  fs::path run();

 private:
  Listing list();
  std::vector<const HubFile*> select(const Listing& listing);
  bool in_snapshot(const HubFile& file) const;
  void fetch(const HubFile& file, Progress& progress);
  void download_blob(const HubFile& file, Progress& progress);
  HttpResponse transfer(const std::string& url, const fs::path& partial, uint64_t offset, const HubFile& file,
                        Progress& progress, std::string& problem);
  [[noreturn]] void fail(const HttpResponse& r, const std::string& url, const std::string& file) const;

  const RepoRef& ref_;
  const HubSettings& settings_;
  RepoCache cache_;
  HttpClient client_;
  std::string commit_;
};

// Errors name the repository (and file), the status with the hub's error code, and what to do.
void Download::fail(const HttpResponse& r, const std::string& url, const std::string& file) const {
  const std::string what = (file.empty() ? "" : file + " of ") + ref_.repo_id + " (revision " + ref_.revision + ")";
  if (r.status == 0) {
    throw Error("cannot reach the Hugging Face hub at " + settings_.endpoint + " for " + what + ": " + r.error)
        .hint("check the network (and https_proxy); with HF_HUB_OFFLINE=1 only the cache (" +
              settings_.cache_dir.string() + ") is used");
  }
  const std::string code = r.last_header("x-error-code");
  std::string message = r.last_header("x-error-message");
  if (message.empty()) {
    const json body = json::parse(r.body, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) message = body["error"];
  }
  const std::string status = "HTTP " + std::to_string(r.status) + (code.empty() ? "" : " " + code) + " from " + url +
                             (message.empty() ? "" : ": " + message);
  const std::string not_local = "; no local directory " + ref_.repo_id + " exists either";
  switch (r.status) {
    case 401:
      throw Error(what + ": not authorized (" + status + ")")
          .hint(settings_.token.empty()
                    ? "a private or gated repository needs a token: set HF_TOKEN (or log in with `huggingface-cli "
                      "login`); the hub also answers 401 for a repository that does not exist" + not_local
                    : "the hub refused the token of HF_TOKEN (or of the token file): check that it is valid and "
                      "has access to " + ref_.repo_id);
    case 403:
      throw Error(what + ": access refused (" + status + ")")
          .hint("a gated model: accept its license on " + settings_.endpoint + "/" + ref_.repo_id +
                " with the account whose token is in HF_TOKEN");
    case 404: {
      const std::string missing = code == "RevisionNotFound" ? "revision " + ref_.revision + " not found"
                                  : code == "RepoNotFound"   ? "repository not found"
                                  : file.empty()             ? "repository or revision not found"
                                                             : "file not found";
      throw Error(what + ": " + missing + " (" + status + ")")
          .hint("check the repo id and the revision" + (file.empty() ? not_local : ""));
    }
    default:
      throw Error(what + ": " + (r.error.empty() ? "" : r.error + ", ") + status)
          .hint("the hub may be unavailable: try again later");
  }
}

Listing Download::list() {
  const std::string url =
      settings_.endpoint + "/api/models/" + ref_.repo_id + "/revision/" + url_escape(ref_.revision, false) + "?blobs=true";
  const HttpResponse r = client_.get(url);
  if (!r.ok()) fail(r, url, "");
  const json j = json::parse(r.body, nullptr, false);
  if (!j.is_object() || !j.contains("sha") || !j["sha"].is_string() || !is_commit_hash(j["sha"].get<std::string>()) ||
      !j.contains("siblings") || !j["siblings"].is_array()) {
    throw Error("the hub's answer for " + ref_.repo_id + " is not a model listing (expected a commit \"sha\" and "
                "\"siblings\")")
        .file(url)
        .hint("is HF_ENDPOINT (" + settings_.endpoint + ") a Hugging Face hub?");
  }
  Listing listing;
  listing.commit = j["sha"].get<std::string>();
  for (const json& sibling : j["siblings"]) {
    if (!sibling.is_object() || !sibling.contains("rfilename") || !sibling["rfilename"].is_string()) continue;
    HubFile f;
    f.name = sibling["rfilename"].get<std::string>();
    const json* lfs = sibling.contains("lfs") && sibling["lfs"].is_object() ? &sibling["lfs"] : nullptr;
    const json& sized = lfs != nullptr && lfs->contains("size") ? *lfs : sibling;
    if (sized.contains("size") && sized["size"].is_number_unsigned()) f.size = sized["size"].get<uint64_t>();
    if (lfs != nullptr && lfs->contains("sha256") && (*lfs)["sha256"].is_string()) {
      f.etag = (*lfs)["sha256"].get<std::string>();
    } else if (sibling.contains("blobId") && sibling["blobId"].is_string()) {
      f.etag = sibling["blobId"].get<std::string>();
    }
    listing.files.emplace(f.name, std::move(f));
  }
  return listing;
}

// The files Checkpoint::open and the text loaders read, as they look for them: the side files present,
// and the shards of model.safetensors.index.json, else model.safetensors, else every top-level
// *.safetensors. The index is downloaded here, first: the shards are what it names.
std::vector<const HubFile*> Download::select(const Listing& listing) {
  const std::string where = ref_.repo_id + " (revision " + ref_.revision + ", commit " + commit_ + ")";
  if (listing.files.count("config.json") == 0) {
    throw Error(where + " has no config.json").hint("AdaLLM loads transformers checkpoints: config.json and *.safetensors");
  }
  std::vector<const HubFile*> files;
  for (std::string_view name : kSideFiles) {
    if (auto it = listing.files.find(std::string(name)); it != listing.files.end()) files.push_back(&it->second);
  }
  std::set<std::string> weights;
  if (auto index = listing.files.find(std::string(kIndexName)); index != listing.files.end()) {
    Progress quiet("index", 0, Progress::Unit::bytes, Progress::Mode::silent);
    fetch(index->second, quiet);
    files.push_back(&index->second);
    for (const auto& [tensor, shard] : read_safetensors_index(cache_.snapshot_dir(commit_) / kIndexName)) {
      if (listing.files.count(shard) == 0) {
        throw Error(std::string(kIndexName) + " of " + where + " names shard " + shard + ", which the repository "
                    "does not have")
            .tensor(tensor);
      }
      weights.insert(shard);
    }
  } else if (listing.files.count("model.safetensors") != 0) {
    weights.insert("model.safetensors");
  } else {
    for (const auto& [name, file] : listing.files) {
      if (name.size() > 12 && name.ends_with(".safetensors") && name.find('/') == std::string::npos) weights.insert(name);
    }
  }
  if (weights.empty()) {
    throw Error(where + " has no safetensors weights")
        .hint("AdaLLM loads *.safetensors checkpoints; a repository of pytorch_model.bin or GGUF files cannot be "
              "loaded");
  }
  for (const std::string& name : weights) files.push_back(&listing.files.at(name));
  for (const HubFile* f : files) {
    if (!f->size || f->etag.empty()) {
      throw Error("the hub's listing of " + where + " gives no size or blob id for " + f->name)
          .hint("is HF_ENDPOINT (" + settings_.endpoint + ") a Hugging Face hub?");
    }
  }
  if (log::enabled(log::Level::debug)) {
    std::string skipped;
    for (const auto& [name, file] : listing.files) {
      bool used = false;
      for (const HubFile* f : files) used = used || f->name == name;
      if (!used) skipped += (skipped.empty() ? "" : ", ") + name;
    }
    if (!skipped.empty()) log::debug(ref_.repo_id, ": not downloading what AdaLLM does not read: ", skipped);
  }
  return files;
}

// Whether the snapshot already links `file` to a whole blob.
bool Download::in_snapshot(const HubFile& file) const {
  std::error_code ec;
  const fs::path link = cache_.snapshot_dir(commit_) / file.name;
  return fs::is_regular_file(link, ec) && fs::file_size(link, ec) == *file.size;
}

void Download::fetch(const HubFile& file, Progress& progress) {
  if (in_snapshot(file)) return;
  download_blob(file, progress);
  cache_.link(commit_, file.name, file.etag);
}

// blobs/<etag>, from blobs/<etag>.incomplete: continued where an earlier run (or attempt) stopped.
void Download::download_blob(const HubFile& file, Progress& progress) {
  const uint64_t size = *file.size;
  const fs::path blob = cache_.blob_path(file.etag);
  const fs::path partial = blob.string() + ".incomplete";
  fs::create_directories(blob.parent_path());
  const BlobLock lock(cache_.lock_path(file.etag), file.name + " of " + ref_.repo_id);
  std::error_code ec;
  if (fs::is_regular_file(blob, ec)) {
    if (fs::file_size(blob, ec) == size) {  // another revision's, or another process finished it meanwhile
      progress.skip(size);
      return;
    }
    log::warn("the cached blob ", blob.string(), " of ", file.name, " has ", fs::file_size(blob, ec),
              " bytes, the hub lists ", size, ": downloading it again");
    fs::remove(blob);
  }
  const std::string url =
      settings_.endpoint + "/" + ref_.repo_id + "/resolve/" + commit_ + "/" + url_escape(file.name, true);
  for (int attempt = 1;; ++attempt) {
    uint64_t offset = fs::exists(partial, ec) ? fs::file_size(partial, ec) : 0;
    if (offset > size) {
      fs::remove(partial);
      offset = 0;
    }
    if (attempt == 1) progress.skip(offset);
    if (offset == size && fs::exists(partial, ec)) break;  // whole, but an earlier run stopped before the rename
    std::string problem;
    const HttpResponse r = transfer(url, partial, offset, file, progress, problem);
    if (!problem.empty()) throw Error(file.name + " of " + ref_.repo_id + " from " + url + ": " + problem);
    if (r.ok()) break;
    if (r.status >= 300 || r.status == 0) fail(r, url, file.name);
    // A 2xx body cut off: the part received stays in the .incomplete file.
    const uint64_t have = fs::file_size(partial, ec);
    if (r.streamed == 0 || attempt == kAttempts) {
      throw Error("downloading " + file.name + " of " + ref_.repo_id + " from " + url + " stopped after " +
                  std::to_string(have) + " of " + std::to_string(size) + " bytes: " + r.error)
          .hint("run the command again: the download resumes from " + partial.string());
    }
    log::warn("downloading ", file.name, " was cut off (", r.error, ") after ", have, " of ", size,
              " bytes: resuming");
  }
  const uint64_t got = fs::file_size(partial);
  if (got != size) {
    fs::remove(partial);
    throw Error("downloaded " + file.name + " of " + ref_.repo_id + " has " + std::to_string(got) +
                " bytes, the hub lists " + std::to_string(size))
        .hint("run the command again; if it happens again, the hub or a proxy serves another file");
  }
  fs::rename(partial, blob);
}

// One GET of `file` into `partial`, from `offset` on (a Range request). Before the first byte is written
// the answer is checked: the hub's ETag must be the listed blob, a 206 must start at `offset`, and a 200
// to a Range request (a server that ignores ranges) starts the file over. `problem` says why the sink
// stopped the transfer.
HttpResponse Download::transfer(const std::string& url, const fs::path& partial, uint64_t offset,
                                const HubFile& file, Progress& progress, std::string& problem) {
  std::FILE* out = std::fopen(partial.c_str(), offset > 0 ? "r+b" : "wb");
  if (out == nullptr || std::fseek(out, static_cast<long>(offset), SEEK_SET) != 0) {
    if (out != nullptr) std::fclose(out);
    throw Error(std::string("cannot open for writing: ") + std::strerror(errno)).file(partial.string());
  }
  std::vector<std::string> headers;
  if (offset > 0) headers.push_back("Range: bytes=" + std::to_string(offset) + "-");
  bool first = true;
  const HttpResponse r = client_.get(url, headers, [&](const HttpResponse& head, std::string_view chunk) {
    if (first) {
      first = false;
      const std::string etag = hub_etag(head);
      if (!etag.empty() && etag != file.etag) {
        problem = "the hub's ETag " + etag + " is not the blob " + file.etag + " its listing gives";
        return false;
      }
      const std::string range = head.last_header("content-range");
      if (head.status == 206 && range.rfind("bytes " + std::to_string(offset) + "-", 0) != 0) {
        problem = "asked for bytes from " + std::to_string(offset) + ", got Content-Range \"" + range + "\"";
        return false;
      }
      if (head.status != 206 && offset > 0) {
        log::warn("the server ignored the Range request: downloading ", file.name, " from the start");
        if (std::fflush(out) != 0 || ::ftruncate(::fileno(out), 0) != 0 || std::fseek(out, 0, SEEK_SET) != 0) {
          problem = std::string("cannot truncate ") + partial.string() + ": " + std::strerror(errno);
          return false;
        }
      }
    }
    if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size()) {
      problem = std::string("cannot write ") + partial.string() + ": " + std::strerror(errno);
      return false;
    }
    progress.advance(chunk.size());
    return true;
  });
  if (std::fclose(out) != 0 && problem.empty()) {
    problem = std::string("cannot write ") + partial.string() + ": " + std::strerror(errno);
  }
  return r;
}

fs::path Download::run() {
  const Listing listing = list();
  commit_ = listing.commit;
  std::error_code ec;
  fs::create_directories(cache_.dir() / "blobs", ec);
  if (ec) {
    throw Error("cannot create the Hugging Face cache folder: " + ec.message())
        .file(cache_.dir().string())
        .hint("set HF_HUB_CACHE (or HF_HOME) to a writable directory");
  }
  cache_.write_ref(ref_.revision, commit_);
  const std::vector<const HubFile*> files = select(listing);
  std::vector<const HubFile*> missing;
  uint64_t bytes = 0;
  for (const HubFile* f : files) {
    if (in_snapshot(*f)) continue;
    missing.push_back(f);
    bytes += *f->size;
  }
  if (!missing.empty()) {
    log::info("downloading ", ref_.repo_id, " (revision ", ref_.revision, ", commit ", commit_, "): ", missing.size(),
              " of ", files.size(), " files, ", human_bytes(bytes), " into ", cache_.dir().string());
    Progress progress("download " + ref_.repo_id, bytes, Progress::Unit::bytes, settings_.progress);
    for (const HubFile* f : missing) fetch(*f, progress);
    progress.finish();
  }
  return cache_.snapshot_dir(commit_);
}

}  // namespace

fs::path hub_snapshot(const RepoRef& ref, const HubSettings& settings) {
  const RepoCache cache(settings.cache_dir, ref.repo_id);
  const std::optional<std::string> commit = cache.commit_of(ref.revision);
  if (commit && snapshot_complete(cache.snapshot_dir(*commit))) {
    log::info(ref.repo_id, " (revision ", ref.revision, "): commit ", *commit, " from the cache");
    return cache.snapshot_dir(*commit);
  }
  if (settings.offline) {
    throw Error("HF_HUB_OFFLINE is set and " + ref.repo_id + " (revision " + ref.revision + ") is " +
                (commit ? "not complete" : "not") + " in the Hugging Face cache " + settings.cache_dir.string())
        .hint("download it once without HF_HUB_OFFLINE, or give a local model directory");
  }
  return Download(ref, settings).run();
}

fs::path resolve_model(const std::string& model, const std::string& revision, const HubSettings& settings) {
  std::error_code ec;
  if (fs::exists(model, ec)) {
    if (!revision.empty()) {
      throw Error("--revision " + revision + " applies to a Hugging Face repo id, but " + model + " is a local path")
          .hint("drop --revision");
    }
    return model;
  }
  std::optional<RepoRef> ref = parse_repo_ref(model);
  if (!ref) return model;
  if (!revision.empty()) {
    if (model.find('@') != std::string::npos && ref->revision != revision) {
      throw Error(model + " names revision " + ref->revision + " and --revision names " + revision)
          .hint("give the revision once");
    }
    if (!valid_revision(revision)) throw Error("--revision \"" + revision + "\" is not a git revision");
    ref->revision = revision;
  }
  return hub_snapshot(*ref, settings);
}

}  // namespace adallm::io
