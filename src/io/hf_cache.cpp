// The hub cache's layout and settings (see hf_cache.h).
#include "io/hf_cache.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

#include "core/error.h"
#include "io/safetensors.h"

namespace adallm::io {
namespace fs = std::filesystem;

namespace {

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

// As Python's os.path.expanduser, which huggingface_hub applies to every path it reads.
fs::path expand_user(const std::string& path) {
  if (path == "~" || path.rfind("~/", 0) == 0) {
    if (const auto home = env("HOME")) return fs::path(*home) / path.substr(path.size() > 1 ? 2 : 1);
  }
  return path;
}

// huggingface_hub's truth values for its boolean variables.
bool env_true(const char* name) {
  std::string value = env(name).value_or("");
  for (char& c : value) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return value == "1" || value == "ON" || value == "YES" || value == "TRUE";
}

std::string read_trimmed(const fs::path& path) {
  std::ifstream in(path);
  if (!in) return "";
  std::stringstream s;
  s << in.rdbuf();
  std::string token = s.str();
  const size_t begin = token.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  return token.substr(begin, token.find_last_not_of(" \t\r\n") - begin + 1);
}

bool word_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool valid_repo_part(std::string_view part) {
  if (part.empty() || part.size() > 96 || !word_char(part.front()) || !word_char(part.back())) return false;
  for (char c : part) {
    if (!word_char(c) && c != '-' && c != '.') return false;
  }
  return true;
}

// Writes `content` to `path` through a temporary name in the same folder.
void write_atomically(const fs::path& path, std::string_view content) {
  fs::create_directories(path.parent_path());
  const fs::path temp = path.string() + ".tmp-" + std::to_string(::getpid());
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    if (!out) throw Error("cannot write: " + std::string(std::strerror(errno))).file(temp.string());
  }
  std::error_code ec;
  fs::rename(temp, path, ec);
  if (ec) {
    fs::remove(temp, ec);
    throw Error("cannot rename into place: " + ec.message()).file(path.string());
  }
}

}  // namespace

HubSettings HubSettings::from_environment() {
  HubSettings s;
  if (const auto endpoint = env("HF_ENDPOINT")) {
    s.endpoint = *endpoint;
    while (!s.endpoint.empty() && s.endpoint.back() == '/') s.endpoint.pop_back();
  }
  fs::path hf_home;
  if (const auto home = env("HF_HOME")) {
    hf_home = expand_user(*home);
  } else if (const auto xdg = env("XDG_CACHE_HOME")) {
    hf_home = expand_user(*xdg) / "huggingface";
  } else {
    hf_home = expand_user("~/.cache/huggingface");
  }
  // HUGGINGFACE_HUB_CACHE: the older name, which huggingface_hub still reads.
  if (const auto cache = env("HF_HUB_CACHE")) {
    s.cache_dir = expand_user(*cache);
  } else if (const auto legacy = env("HUGGINGFACE_HUB_CACHE")) {
    s.cache_dir = expand_user(*legacy);
  } else {
    s.cache_dir = hf_home / "hub";
  }
  if (const auto token = env("HF_TOKEN")) {
    s.token = *token;
  } else {
    s.token = read_trimmed(env("HF_TOKEN_PATH") ? expand_user(*env("HF_TOKEN_PATH")) : hf_home / "token");
  }
  s.offline = env_true("HF_HUB_OFFLINE");
  if (env_true("HF_HUB_DISABLE_PROGRESS_BARS")) s.progress = Progress::Mode::silent;
  return s;
}

std::optional<RepoRef> parse_repo_ref(std::string_view text) {
  RepoRef ref;
  const size_t at = text.find('@');
  if (at != std::string_view::npos) {
    ref.revision = std::string(text.substr(at + 1));
    if (!valid_revision(ref.revision)) return std::nullopt;
    text = text.substr(0, at);
  }
  const size_t slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const std::string_view org = text.substr(0, slash), name = text.substr(slash + 1);
  if (!valid_repo_part(org) || !valid_repo_part(name)) return std::nullopt;
  if (text.find("--") != std::string_view::npos || text.find("..") != std::string_view::npos) return std::nullopt;
  if (name.size() >= 4 && name.substr(name.size() - 4) == ".git") return std::nullopt;
  ref.repo_id = std::string(text);
  return ref;
}

bool valid_revision(std::string_view revision) {
  if (revision.empty() || revision.front() == '/' || revision.back() == '/') return false;
  for (const fs::path& part : fs::path(revision)) {
    if (part == ".." || part == ".") return false;
  }
  for (char c : revision) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f || c == '\\') return false;
  }
  return revision.find("//") == std::string_view::npos;
}

bool is_commit_hash(std::string_view revision) {
  if (revision.size() != 40) return false;
  for (char c : revision) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

RepoCache::RepoCache(const fs::path& cache_dir, std::string_view repo_id) : cache_dir_(cache_dir) {
  folder_ = "models--";
  for (char c : repo_id) {
    if (c == '/') folder_ += "--";
    else folder_ += c;
  }
  dir_ = cache_dir_ / folder_;
}

fs::path RepoCache::lock_path(std::string_view etag) const {
  return cache_dir_ / ".locks" / folder_ / (std::string(etag) + ".lock");
}

std::optional<std::string> RepoCache::commit_of(std::string_view revision) const {
  if (is_commit_hash(revision)) return std::string(revision);
  const std::string commit = read_trimmed(dir_ / "refs" / revision);
  if (!is_commit_hash(commit)) return std::nullopt;
  return commit;
}

void RepoCache::write_ref(std::string_view revision, std::string_view commit) const {
  if (revision == commit) return;
  write_atomically(dir_ / "refs" / revision, commit);
}

void RepoCache::link(std::string_view commit, std::string_view file, std::string_view etag) const {
  const fs::path link_path = snapshot_dir(commit) / file;
  std::string target = "../../";
  for (char c : file) {
    if (c == '/') target += "../";
  }
  target += "blobs/" + std::string(etag);
  fs::create_directories(link_path.parent_path());
  const fs::path temp = link_path.string() + ".tmp-" + std::to_string(::getpid());
  std::error_code ec;
  fs::remove(temp, ec);
  fs::create_symlink(target, temp, ec);
  if (!ec) fs::rename(temp, link_path, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw Error("cannot link the snapshot file to its blob " + target + ": " + ec.message()).file(link_path.string());
  }
}

bool snapshot_complete(const fs::path& snapshot) {
  std::error_code ec;
  const auto present = [&](const fs::path& p) { return fs::is_regular_file(p, ec); };  // follows the link
  if (!present(snapshot / "config.json")) return false;
  const fs::path index = snapshot / "model.safetensors.index.json";
  if (present(index)) {
    std::set<std::string> shards;
    for (const auto& [tensor, shard] : read_safetensors_index(index)) shards.insert(shard);
    for (const std::string& shard : shards) {
      if (!present(snapshot / shard)) return false;
    }
    return true;
  }
  if (present(snapshot / "model.safetensors")) return true;
  for (const fs::directory_entry& entry : fs::directory_iterator(snapshot, ec)) {
    if (entry.path().extension() == ".safetensors" && present(entry.path())) return true;
  }
  return false;
}

}  // namespace adallm::io
