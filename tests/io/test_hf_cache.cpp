// The Hugging Face cache without a network: settings from the environment variables huggingface_hub
// reads, repo id syntax, the refs/snapshots/blobs layout, snapshot completeness, and a snapshot laid out
// by hand as huggingface_hub writes it being used as it is (offline included). Downloads: test_hf_hub.cpp.
#include "io/hf_cache.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "io/hf_hub.h"
#include "test_util.h"

namespace adallm::io {
namespace {
namespace fs = std::filesystem;
using test::ScopedEnv;
using test::TempDir;

const std::string kCommit = "0123456789abcdef0123456789abcdef01234567";

void write(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

// Every variable the settings read, unset unless given.
ScopedEnv hub_env(std::optional<std::string> hf_home, std::optional<std::string> hub_cache,
                  std::optional<std::string> xdg, std::optional<std::string> home) {
  return ScopedEnv({{"HF_HOME", hf_home},
                    {"HF_HUB_CACHE", hub_cache},
                    {"HUGGINGFACE_HUB_CACHE", std::nullopt},
                    {"XDG_CACHE_HOME", xdg},
                    {"HOME", home},
                    {"HF_ENDPOINT", std::nullopt},
                    {"HF_TOKEN", std::nullopt},
                    {"HF_TOKEN_PATH", std::nullopt},
                    {"HF_HUB_OFFLINE", std::nullopt},
                    {"HF_HUB_DISABLE_PROGRESS_BARS", std::nullopt}});
}

TEST(HubSettings, CacheDirectoryInHuggingfaceHubsOrder) {
  {
    const ScopedEnv env = hub_env("/h/hf", "/h/cache", "/h/xdg", "/h/home");
    EXPECT_EQ(HubSettings::from_environment().cache_dir, fs::path("/h/cache"));
  }
  {
    const ScopedEnv env = hub_env("/h/hf", std::nullopt, "/h/xdg", "/h/home");
    EXPECT_EQ(HubSettings::from_environment().cache_dir, fs::path("/h/hf/hub"));
  }
  {
    const ScopedEnv env = hub_env(std::nullopt, std::nullopt, "/h/xdg", "/h/home");
    EXPECT_EQ(HubSettings::from_environment().cache_dir, fs::path("/h/xdg/huggingface/hub"));
  }
  {
    const ScopedEnv env = hub_env(std::nullopt, std::nullopt, std::nullopt, "/h/home");
    EXPECT_EQ(HubSettings::from_environment().cache_dir, fs::path("/h/home/.cache/huggingface/hub"));
  }
  {
    const ScopedEnv env = hub_env("/h/hf", std::nullopt, "/h/xdg", "/h/home");
    const ScopedEnv legacy({{"HUGGINGFACE_HUB_CACHE", "/h/legacy"}});  // the older name, still read
    EXPECT_EQ(HubSettings::from_environment().cache_dir, fs::path("/h/legacy"));
  }
  {
    const ScopedEnv env = hub_env("~/hf", std::nullopt, std::nullopt, "/h/home");  // expanded as Python does
    EXPECT_EQ(HubSettings::from_environment().cache_dir, fs::path("/h/home/hf/hub"));
  }
}

TEST(HubSettings, EndpointTokenAndOffline) {
  TempDir dir;
  const ScopedEnv env = hub_env((dir / "hf").string(), std::nullopt, std::nullopt, dir.path().string());
  HubSettings s = HubSettings::from_environment();
  EXPECT_EQ(s.endpoint, "https://huggingface.co");
  EXPECT_EQ(s.token, "");
  EXPECT_FALSE(s.offline);
  EXPECT_EQ(s.progress, Progress::Mode::automatic);

  write(dir / "hf" / "token", "hf_fromfile\n");  // what `huggingface-cli login` writes
  EXPECT_EQ(HubSettings::from_environment().token, "hf_fromfile");
  {
    const ScopedEnv more({{"HF_TOKEN_PATH", (dir / "other-token").string()}});
    write(dir / "other-token", "  hf_otherfile  ");
    EXPECT_EQ(HubSettings::from_environment().token, "hf_otherfile");
  }
  const ScopedEnv more({{"HF_TOKEN", "hf_fromenv"},
                        {"HF_ENDPOINT", "http://mirror.example:8080/"},
                        {"HF_HUB_OFFLINE", "1"},
                        {"HF_HUB_DISABLE_PROGRESS_BARS", "true"}});
  s = HubSettings::from_environment();
  EXPECT_EQ(s.token, "hf_fromenv");
  EXPECT_EQ(s.endpoint, "http://mirror.example:8080");
  EXPECT_TRUE(s.offline);
  EXPECT_EQ(s.progress, Progress::Mode::silent);
  for (const char* value : {"ON", "yes", "True"}) {
    const ScopedEnv offline({{"HF_HUB_OFFLINE", value}});
    EXPECT_TRUE(HubSettings::from_environment().offline) << value;
  }
  for (const char* value : {"0", "false", "no"}) {
    const ScopedEnv offline({{"HF_HUB_OFFLINE", value}});
    EXPECT_FALSE(HubSettings::from_environment().offline) << value;
  }
}

TEST(RepoRef, ParsesRepoIdsAsHuggingfaceHubValidatesThem) {
  const auto ref = parse_repo_ref("Qwen/Qwen3-8B");
  ASSERT_TRUE(ref);
  EXPECT_EQ(ref->repo_id, "Qwen/Qwen3-8B");
  EXPECT_EQ(ref->revision, "main");
  const auto pinned = parse_repo_ref("nvidia/Llama-3.1-8B-Instruct-FP4@refs/pr/3");
  ASSERT_TRUE(pinned);
  EXPECT_EQ(pinned->repo_id, "nvidia/Llama-3.1-8B-Instruct-FP4");
  EXPECT_EQ(pinned->revision, "refs/pr/3");
  EXPECT_TRUE(parse_repo_ref("a_b/c.d-e_1"));
  for (const char* bad : {"gpt2", "/abs/path", "./local/dir", "a/b/c", "org/", "/name", "org/-name", "org/name.",
                          "org--x/name", "org/na..me", "org/name.git", "org/na me", "org/name@", "org/name@../x",
                          "models/demo@/x", "~/models"}) {
    EXPECT_FALSE(parse_repo_ref(bad)) << bad;
  }
  EXPECT_TRUE(is_commit_hash(kCommit));
  EXPECT_FALSE(is_commit_hash("main"));
  EXPECT_FALSE(is_commit_hash("0123456789ABCDEF0123456789abcdef01234567"));
}

TEST(RepoCache, LaysOutRefsLinksAndLocksAsHuggingfaceHub) {
  TempDir dir;
  const RepoCache cache(dir.path(), "org/name");
  EXPECT_EQ(cache.dir(), dir / "models--org--name");
  EXPECT_EQ(cache.lock_path("abc"), dir / ".locks" / "models--org--name" / "abc.lock");
  EXPECT_FALSE(cache.commit_of("main"));
  EXPECT_EQ(cache.commit_of(kCommit), kCommit);  // a commit names itself

  cache.write_ref("main", kCommit);
  cache.write_ref("refs/pr/1", kCommit);
  cache.write_ref(kCommit, kCommit);  // nothing: no refs/<commit>
  EXPECT_EQ(test::read_text(cache.dir() / "refs" / "main"), kCommit);  // no newline, as huggingface_hub writes
  EXPECT_EQ(cache.commit_of("refs/pr/1"), kCommit);
  EXPECT_FALSE(fs::exists(cache.dir() / "refs" / kCommit));

  write(cache.blob_path("e1"), "{}");
  write(cache.blob_path("e2"), "x");
  cache.link(kCommit, "config.json", "e1");
  cache.link(kCommit, "sub/dir/file.txt", "e2");
  EXPECT_EQ(fs::read_symlink(cache.snapshot_dir(kCommit) / "config.json"), fs::path("../../blobs/e1"));
  EXPECT_EQ(fs::read_symlink(cache.snapshot_dir(kCommit) / "sub/dir/file.txt"), fs::path("../../../../blobs/e2"));
  EXPECT_EQ(test::read_text(cache.snapshot_dir(kCommit) / "sub/dir/file.txt"), "x");
  cache.link(kCommit, "config.json", "e2");  // replaced in place
  EXPECT_EQ(test::read_text(cache.snapshot_dir(kCommit) / "config.json"), "x");
}

TEST(RepoCache, SnapshotIsCompleteWithConfigAndEveryWeightFile) {
  TempDir dir;
  const fs::path snap = dir / "snap";
  fs::create_directories(snap);
  EXPECT_FALSE(snapshot_complete(snap));
  write(snap / "config.json", "{}");
  EXPECT_FALSE(snapshot_complete(snap));  // config only: what AutoConfig leaves behind
  write(snap / "model-b.safetensors", "x");
  EXPECT_TRUE(snapshot_complete(snap));   // loose shards, as Checkpoint::open takes them
  write(snap / "model.safetensors.index.json",
        R"({"weight_map": {"a": "model-a.safetensors", "b": "model-b.safetensors"}})");
  EXPECT_FALSE(snapshot_complete(snap));  // the index names a shard that is missing
  write(snap / "model-a.safetensors", "x");
  EXPECT_TRUE(snapshot_complete(snap));
  fs::remove(snap / "model-a.safetensors");
  fs::create_symlink("../../blobs/gone", snap / "model-a.safetensors");
  EXPECT_FALSE(snapshot_complete(snap));  // a link to a missing blob is missing
}

// A snapshot huggingface_hub (transformers, vLLM) downloaded is used as it is, offline too, with no
// network: the settings point at a port nothing listens on.
TEST(HubSnapshot, UsesASnapshotPythonToolsLaidOut) {
  TempDir dir;
  const fs::path repo = dir / "models--org--tiny";
  write(repo / "refs" / "main", kCommit);
  write(repo / "blobs" / "cfg", "{}");
  write(repo / "blobs" / "weights", "x");
  fs::create_directories(repo / "snapshots" / kCommit);
  fs::create_symlink("../../blobs/cfg", repo / "snapshots" / kCommit / "config.json");
  fs::create_symlink("../../blobs/weights", repo / "snapshots" / kCommit / "model.safetensors");

  HubSettings settings;
  settings.endpoint = "http://127.0.0.1:9";  // discard port: any request would fail
  settings.cache_dir = dir.path();
  for (bool offline : {false, true}) {
    settings.offline = offline;
    EXPECT_EQ(hub_snapshot({"org/tiny", "main"}, settings), repo / "snapshots" / kCommit);
    EXPECT_EQ(resolve_model("org/tiny", kCommit, settings), repo / "snapshots" / kCommit);
    EXPECT_EQ(resolve_model("org/tiny@" + kCommit, "", settings), repo / "snapshots" / kCommit);
  }
}

}  // namespace
}  // namespace adallm::io
