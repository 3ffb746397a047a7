// Downloads from a mock Hugging Face hub on 127.0.0.1 (tests/mock_hub.h): the exact cache layout
// huggingface_hub writes, only the files AdaLLM reads (a sharded index: exactly its shards), a second
// resolve served by the cache with no request, resuming a cut transfer and an earlier run's .incomplete
// file, a server without range support, sizes checked, HF_TOKEN as a bearer token, 401/403/404 and
// offline errors, and MODEL's resolution rules (a local directory wins, --revision).
#include "io/hf_hub.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <vector>

#include "mock_hub.h"
#include "test_util.h"

namespace adallm::io {
namespace {
namespace fs = std::filesystem;
using test::MockHub;
using test::TempDir;

const std::string kCommit = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

std::string bytes(size_t n, char seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + i * 7 % 251);
  return s;
}

// A repo as real ones look: what AdaLLM reads, and what it must leave alone (README, .bin weights, the
// original/ checkpoint, .gitattributes).
std::map<std::string, MockHub::File> tiny_repo() {
  return {{"config.json", {R"({"model_type": "qwen3"})"}},
          {"generation_config.json", {R"({"temperature": 0.6})"}},
          {"tokenizer.json", {R"({"model": {}})"}},
          {"tokenizer_config.json", {R"({"eos_token": "<e>"})"}},
          {"model.safetensors", {bytes(300000, 'a'), true}},
          {"README.md", {"# tiny"}},
          {".gitattributes", {"*.safetensors filter=lfs"}},
          {"pytorch_model.bin", {bytes(5000, 'b'), true}},
          {"original/consolidated.00.pth", {bytes(5000, 'c'), true}}};
}

class HfHub : public ::testing::Test {
 protected:
  HfHub() {
    settings.endpoint = hub.endpoint();
    settings.cache_dir = cache.path();
    settings.progress = Progress::Mode::silent;
  }
  fs::path repo_dir(const std::string& folder = "models--org--tiny") const { return cache.path() / folder; }
  fs::path snapshot() const { return repo_dir() / "snapshots" / kCommit; }
  std::vector<std::string> file_requests() const {
    std::vector<std::string> out;
    for (const std::string& p : hub.paths()) {
      if (p.rfind("/api/", 0) != 0 && p.rfind("/cdn/", 0) != 0) out.push_back(p.substr(p.rfind('/') + 1));
    }
    std::sort(out.begin(), out.end());
    return out;
  }

  MockHub hub;
  TempDir cache;
  HubSettings settings;
};

TEST_F(HfHub, FreshDownloadLaysOutTheHuggingfaceHubCache) {
  const std::map<std::string, MockHub::File> files = tiny_repo();
  hub.add_repo("org/tiny", kCommit, files);
  EXPECT_EQ(resolve_model("org/tiny", "", settings), snapshot());

  EXPECT_EQ(test::read_text(repo_dir() / "refs" / "main"), kCommit);
  for (const char* name : {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
                           "model.safetensors"}) {
    SCOPED_TRACE(name);
    const std::string blob = hub.blob_id("org/tiny", name);  // the LFS sha256, or the git blob id
    EXPECT_EQ(fs::read_symlink(snapshot() / name), fs::path("../../blobs/" + blob));
    EXPECT_EQ(test::read_text(repo_dir() / "blobs" / blob), files.at(name).content);
    EXPECT_TRUE(fs::exists(cache.path() / ".locks" / "models--org--tiny" / (blob + ".lock")));
  }
  // Only what AdaLLM reads: no README, .gitattributes, .bin or original/ file was asked for.
  EXPECT_EQ(file_requests(), (std::vector<std::string>{"config.json", "generation_config.json", "model.safetensors",
                                                        "tokenizer.json", "tokenizer_config.json"}));
  EXPECT_EQ(hub.paths().front(), "/api/models/org/tiny/revision/main");
  for (const char* absent : {"README.md", ".gitattributes", "pytorch_model.bin", "original"}) {
    EXPECT_FALSE(fs::exists(snapshot() / absent)) << absent;
  }
  std::vector<std::string> blobs;
  for (const auto& e : fs::directory_iterator(repo_dir() / "blobs")) blobs.push_back(e.path().filename().string());
  EXPECT_EQ(blobs.size(), 5u);  // no .incomplete left behind
}

TEST_F(HfHub, SecondResolveUsesTheCacheWithoutARequest) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  ASSERT_EQ(hub_snapshot({"org/tiny", "main"}, settings), snapshot());
  const size_t requests = hub.requests().size();
  EXPECT_EQ(hub_snapshot({"org/tiny", "main"}, settings), snapshot());
  settings.offline = true;
  EXPECT_EQ(hub_snapshot({"org/tiny", "main"}, settings), snapshot());
  EXPECT_EQ(resolve_model("org/tiny@" + kCommit, "", settings), snapshot());
  EXPECT_EQ(hub.requests().size(), requests);
}

// A missing blob is downloaded; a missing link to a blob the cache holds is only linked again.
TEST_F(HfHub, APartialSnapshotGetsOnlyWhatItLacks) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  hub_snapshot({"org/tiny", "main"}, settings);
  fs::remove(repo_dir() / "blobs" / hub.blob_id("org/tiny", "model.safetensors"));
  fs::remove(snapshot() / "tokenizer.json");
  hub.clear_requests();
  hub_snapshot({"org/tiny", "main"}, settings);
  EXPECT_EQ(file_requests(), std::vector<std::string>{"model.safetensors"});
  EXPECT_EQ(fs::read_symlink(snapshot() / "tokenizer.json"),
            fs::path("../../blobs/" + hub.blob_id("org/tiny", "tokenizer.json")));
  EXPECT_TRUE(snapshot_complete(snapshot()));
}

TEST_F(HfHub, ASecondRevisionOfTheSameCommitReusesTheBlobs) {
  hub.add_repo("org/tiny", kCommit, tiny_repo(), {"main", "v1.0"});
  hub_snapshot({"org/tiny", "main"}, settings);
  hub.clear_requests();
  EXPECT_EQ(resolve_model("org/tiny", "v1.0", settings), snapshot());
  EXPECT_EQ(test::read_text(repo_dir() / "refs" / "v1.0"), kCommit);
  EXPECT_EQ(hub.paths(), std::vector<std::string>{"/api/models/org/tiny/revision/v1.0"});
}

TEST_F(HfHub, ShardedIndexFetchesExactlyItsShards) {
  std::map<std::string, MockHub::File> files = {
      {"config.json", {"{}"}},
      {"model.safetensors.index.json",
       {R"({"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                            "b": "model-00002-of-00002.safetensors",
                                            "c": "model-00002-of-00002.safetensors"}})"}},
      {"model-00001-of-00002.safetensors", {bytes(1000, 'd'), true}},
      {"model-00002-of-00002.safetensors", {bytes(2000, 'e'), true}},
      {"consolidated.safetensors", {bytes(3000, 'f'), true}},  // not in the index: not read, not fetched
      {"model-00001-of-00003.safetensors", {bytes(10, 'g'), true}}};
  hub.add_repo("org/sharded", kCommit, files);
  const fs::path dir = hub_snapshot({"org/sharded", "main"}, settings);
  EXPECT_TRUE(snapshot_complete(dir));
  EXPECT_EQ(file_requests(), (std::vector<std::string>{"config.json", "model-00001-of-00002.safetensors",
                                                        "model-00002-of-00002.safetensors",
                                                        "model.safetensors.index.json"}));
  EXPECT_EQ(test::read_text(dir / "model-00002-of-00002.safetensors"), files.at("model-00002-of-00002.safetensors").content);
}

TEST_F(HfHub, ResumesATransferCutOffMidway) {
  const std::map<std::string, MockHub::File> files = tiny_repo();
  hub.add_repo("org/tiny", kCommit, files);
  hub.cut_next("model.safetensors", 100000);
  hub_snapshot({"org/tiny", "main"}, settings);
  EXPECT_EQ(test::read_text(snapshot() / "model.safetensors"), files.at("model.safetensors").content);
  std::vector<std::string> ranges;
  for (const MockHub::Request& r : hub.requests()) {
    if (r.path.rfind("/cdn/", 0) == 0) ranges.push_back(r.range);
  }
  EXPECT_EQ(ranges, (std::vector<std::string>{"", "bytes=100000-"}));
}

// A process killed mid-download leaves blobs/<etag>.incomplete: the next run asks only for the rest.
TEST_F(HfHub, ContinuesTheIncompleteFileOfAnEarlierRun) {
  const std::map<std::string, MockHub::File> files = tiny_repo();
  hub.add_repo("org/tiny", kCommit, files);
  const std::string blob = hub.blob_id("org/tiny", "model.safetensors");
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(repo_dir() / "blobs" / (blob + ".incomplete"), std::ios::binary)
      << files.at("model.safetensors").content.substr(0, 123456);
  hub_snapshot({"org/tiny", "main"}, settings);
  EXPECT_EQ(test::read_text(snapshot() / "model.safetensors"), files.at("model.safetensors").content);
  std::vector<std::string> ranges;
  for (const MockHub::Request& r : hub.requests()) {
    if (r.path.find("model.safetensors") != std::string::npos || r.path.rfind("/cdn/", 0) == 0) ranges.push_back(r.range);
  }
  EXPECT_EQ(ranges, (std::vector<std::string>{"bytes=123456-", "bytes=123456-"}));  // /resolve/, then the CDN
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (blob + ".incomplete")));
}

TEST_F(HfHub, AServerWithoutRangesStartsTheFileOver) {
  const std::map<std::string, MockHub::File> files = tiny_repo();
  hub.add_repo("org/tiny", kCommit, files);
  hub.set_ignore_ranges(true);
  const std::string blob = hub.blob_id("org/tiny", "model.safetensors");
  fs::create_directories(repo_dir() / "blobs");
  std::ofstream(repo_dir() / "blobs" / (blob + ".incomplete"), std::ios::binary) << std::string(5000, 'z');
  hub_snapshot({"org/tiny", "main"}, settings);
  EXPECT_EQ(test::read_text(snapshot() / "model.safetensors"), files.at("model.safetensors").content);
}

TEST_F(HfHub, ATransferThatMovesNothingFailsAndSaysItResumes) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  hub.cut_next("model.safetensors", 0);
  try {
    hub_snapshot({"org/tiny", "main"}, settings);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("downloading model.safetensors of org/tiny"), std::string::npos) << e.what();
    EXPECT_NE(e.message().find("stopped after 0 of 300000 bytes"), std::string::npos) << e.what();
    EXPECT_NE(e.hint_text().find("resumes"), std::string::npos) << e.what();
  }
  hub_snapshot({"org/tiny", "main"}, settings);  // and it does
  EXPECT_TRUE(snapshot_complete(snapshot()));
}

TEST_F(HfHub, AFileOfAnotherSizeThanListedIsAnError) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  hub.edit_repo("org/tiny", [](MockHub::Repo& r) { r.listed_sizes["tokenizer.json"] = 4; });
  test::expect_error([&] { hub_snapshot({"org/tiny", "main"}, settings); },
                     "downloaded tokenizer.json of org/tiny has 13 bytes, the hub lists 4");
  EXPECT_FALSE(fs::exists(snapshot() / "tokenizer.json"));
  EXPECT_FALSE(fs::exists(repo_dir() / "blobs" / (hub.blob_id("org/tiny", "tokenizer.json") + ".incomplete")));
}

TEST_F(HfHub, SendsTheTokenAsABearer) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  hub.edit_repo("org/tiny", [](MockHub::Repo& r) { r.token = "hf_secret"; });
  settings.token = "hf_secret";
  hub_snapshot({"org/tiny", "main"}, settings);
  ASSERT_FALSE(hub.requests().empty());
  for (const MockHub::Request& r : hub.requests()) EXPECT_EQ(r.authorization, "Bearer hf_secret") << r.path;
}

TEST_F(HfHub, UnauthorizedAndGatedRepositoriesSayWhatToDo) {
  hub.add_repo("org/gated", kCommit, tiny_repo());
  hub.edit_repo("org/gated", [](MockHub::Repo& r) { r.token = "hf_secret"; });
  test::expect_error_in([&] { hub_snapshot({"org/gated", "main"}, settings); },
                        "org/gated (revision main): not authorized (HTTP 401 GatedRepo from " + hub.endpoint() +
                            "/api/models/org/gated/revision/main?blobs=true: Access to model org/gated is restricted",
                        "", "set HF_TOKEN");
  settings.token = "hf_other";
  test::expect_error_in([&] { hub_snapshot({"org/gated", "main"}, settings); },
                        "org/gated (revision main): access refused (HTTP 403 GatedRepo", "",
                        "accept its license on " + hub.endpoint() + "/org/gated");
  EXPECT_FALSE(fs::exists(repo_dir("models--org--gated") / "snapshots"));
}

TEST_F(HfHub, MissingRepositoryRevisionAndNetworkAreNamed) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  test::expect_error_in([&] { resolve_model("org/nothere", "", settings); },
                        "org/nothere (revision main): repository not found (HTTP 404 RepoNotFound", "",
                        "no local directory org/nothere exists either");
  test::expect_error([&] { resolve_model("org/tiny@v9", "", settings); },
                     "org/tiny (revision v9): revision v9 not found (HTTP 404 RevisionNotFound");
  settings.endpoint = "http://127.0.0.1:9";  // nothing listens there
  test::expect_error_in([&] { hub_snapshot({"org/tiny", "main"}, settings); },
                        "cannot reach the Hugging Face hub at http://127.0.0.1:9 for org/tiny (revision main)", "",
                        "HF_HUB_OFFLINE=1");
}

TEST_F(HfHub, ARepositoryWithoutSafetensorsIsRefused) {
  hub.add_repo("org/bin", kCommit, {{"config.json", {"{}"}}, {"pytorch_model.bin", {"x", true}}});
  test::expect_error_in([&] { hub_snapshot({"org/bin", "main"}, settings); },
                        "org/bin (revision main, commit " + kCommit + ") has no safetensors weights", "",
                        "AdaLLM loads *.safetensors checkpoints");
  hub.add_repo("org/noconfig", kCommit, {{"model.safetensors", {"x", true}}});
  test::expect_error([&] { hub_snapshot({"org/noconfig", "main"}, settings); }, "has no config.json");
}

TEST_F(HfHub, OfflineWithoutTheSnapshotSaysSoAndAsksNothing) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  settings.offline = true;
  test::expect_error_in([&] { resolve_model("org/tiny", "", settings); },
                        "HF_HUB_OFFLINE is set and org/tiny (revision main) is not in the Hugging Face cache " +
                            cache.path().string(),
                        "", "download it once without HF_HUB_OFFLINE");
  settings.offline = false;
  hub_snapshot({"org/tiny", "main"}, settings);
  fs::remove(snapshot() / "model.safetensors");
  settings.offline = true;
  test::expect_error([&] { resolve_model("org/tiny", "", settings); }, "(revision main) is not complete in the");
  EXPECT_EQ(hub.requests().size(), 7u);  // the one online resolve: listing, 5 files, the LFS one's CDN hop
}

TEST_F(HfHub, ALocalDirectoryWinsAndRevisionsMustAgree) {
  hub.add_repo("org/tiny", kCommit, tiny_repo());
  TempDir work;
  const fs::path cwd = fs::current_path();
  fs::create_directories(work / "org" / "tiny");
  fs::current_path(work.path());
  EXPECT_EQ(resolve_model("org/tiny", "", settings), fs::path("org/tiny"));  // the directory, not the repo
  test::expect_error([&] { resolve_model("org/tiny", "main", settings); }, "--revision main applies to a Hugging Face repo id");
  fs::current_path(cwd);
  EXPECT_TRUE(hub.requests().empty());
  EXPECT_EQ(resolve_model("no/such/dir", "", settings), fs::path("no/such/dir"));  // not a repo id: for the caller
  test::expect_error([&] { resolve_model("org/tiny@main", "v2", settings); },
                     "org/tiny@main names revision main and --revision names v2");
  EXPECT_TRUE(hub.requests().empty());
}

}  // namespace
}  // namespace adallm::io
