// The Hugging Face hub cache, laid out exactly as huggingface_hub lays it out so that AdaLLM, transformers
// and vLLM share one copy of a model: <cache>/models--org--name/refs/<revision> holds a commit hash,
// snapshots/<commit>/<file> are relative symlinks to blobs/<etag>, and a blob being downloaded is
// blobs/<etag>.incomplete. The settings come from the environment variables huggingface_hub reads.
// Nothing here touches the network (hf_hub.h downloads).
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "core/progress.h"

namespace adallm::io {

struct HubSettings {
  std::string endpoint = "https://huggingface.co";  // no trailing '/'
  std::filesystem::path cache_dir;  // the hub cache, holding models--org--name/
  std::string token;                // sent as `Authorization: Bearer`; "" for none
  bool offline = false;             // no network: the cache only
  Progress::Mode progress = Progress::Mode::automatic;

  // HF_ENDPOINT; HF_HUB_CACHE, else HF_HOME/hub, else XDG_CACHE_HOME/huggingface/hub, else
  // ~/.cache/huggingface/hub; HF_TOKEN, else the token file (HF_TOKEN_PATH, else HF_HOME/token) that
  // `huggingface-cli login` writes; HF_HUB_OFFLINE=1; HF_HUB_DISABLE_PROGRESS_BARS=1.
  static HubSettings from_environment();
};

struct RepoRef {
  std::string repo_id;            // "org/name"
  std::string revision = "main";  // a branch, a tag or a commit hash
};

// "org/name" or "org/name@revision", by huggingface_hub's rules for repo ids (letters, digits, '-', '_',
// '.'; no "--" or ".."; each part starting and ending with a letter, digit or '_'); nullopt otherwise.
std::optional<RepoRef> parse_repo_ref(std::string_view text);

// A revision usable as a path under refs/: not empty, no "..", no leading '/', no control characters.
bool valid_revision(std::string_view revision);

// 40 lowercase hex digits: a commit names itself, no refs/ lookup needed.
bool is_commit_hash(std::string_view revision);

// One repository's folder of the cache. Writers replace files atomically (a temporary name renamed), so
// a reader never sees a half-written ref or link.
class RepoCache {
 public:
  RepoCache(const std::filesystem::path& cache_dir, std::string_view repo_id);

  const std::filesystem::path& dir() const { return dir_; }  // <cache>/models--org--name
  std::filesystem::path snapshot_dir(std::string_view commit) const { return dir_ / "snapshots" / commit; }
  std::filesystem::path blob_path(std::string_view etag) const { return dir_ / "blobs" / etag; }
  // huggingface_hub's lock of a blob being downloaded: <cache>/.locks/models--org--name/<etag>.lock.
  std::filesystem::path lock_path(std::string_view etag) const;

  // The commit a revision names: itself for a commit hash, else the content of refs/<revision>;
  // nullopt when the cache has no such ref.
  std::optional<std::string> commit_of(std::string_view revision) const;
  // refs/<revision> := commit (nothing for a revision that is the commit itself).
  void write_ref(std::string_view revision, std::string_view commit) const;
  // snapshots/<commit>/<file> -> ../../blobs/<etag> (one more ../ per folder in `file`).
  void link(std::string_view commit, std::string_view file, std::string_view etag) const;

 private:
  std::filesystem::path cache_dir_;
  std::string folder_;  // models--org--name
  std::filesystem::path dir_;
};

// Whether a snapshot directory holds a whole model AdaLLM can load: config.json and the weights as
// Checkpoint::open finds them (every shard model.safetensors.index.json names, else model.safetensors,
// else some *.safetensors). A link to a missing blob counts as missing.
bool snapshot_complete(const std::filesystem::path& snapshot);

}  // namespace adallm::io
