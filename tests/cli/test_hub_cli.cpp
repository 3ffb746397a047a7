// A Hugging Face repo id as MODEL, end to end through the adallm binary: the mock hub of tests/mock_hub.h
// serves the committed fixtures, HF_ENDPOINT points the binary at it and HF_HUB_CACHE at a temporary
// cache. `inspect`, `tokenize` and `run` on a repo id give what they give on the local directory; a second
// run works offline from the cache; failures are one error line.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "mock_hub.h"
#include "test_util.h"

namespace adallm {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using test::MockHub;
using test::quote;
using test::Result;
using test::run;
using test::ScopedEnv;
using test::TempDir;

const std::string kCommit = "5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f";

// A repo of every file in `dir` (safetensors as LFS files), plus a README the download must skip.
std::map<std::string, MockHub::File> repo_of(const fs::path& dir) {
  std::map<std::string, MockHub::File> files = {{"README.md", {"# fixture"}}};
  for (const fs::directory_entry& e : fs::directory_iterator(dir)) {
    files[e.path().filename().string()] = {test::read_text(e.path()), e.path().extension() == ".safetensors"};
  }
  return files;
}

// Everything the binary reads of the hub's settings, pointed at the mock and a temporary cache.
struct HubEnvironment {
  HubEnvironment(const MockHub& hub, const TempDir& dir)
      : env({{"HF_ENDPOINT", hub.endpoint()},
             {"HF_HUB_CACHE", (dir / "hub").string()},
             {"HF_HOME", (dir / "hf-home").string()},  // no token file
             {"HF_TOKEN", std::nullopt},
             {"HF_HUB_OFFLINE", std::nullopt},
             {"HF_HUB_DISABLE_PROGRESS_BARS", std::nullopt}}) {}
  ScopedEnv env;
};

// The last line of stderr: a failure's one error line.
std::string last_line(const std::string& text) {
  const std::string trimmed = text.substr(0, text.find_last_not_of('\n') + 1);
  return trimmed.substr(trimmed.find_last_of('\n') + 1);
}

TEST(CliHub, InspectARepoIdThenOfflineFromTheCache) {
  MockHub hub;
  const fs::path fixture = test::fixtures_dir() / "qwen3" / "nvfp4-modelopt";
  hub.add_repo("tiny/qwen3-nvfp4", kCommit, repo_of(fixture));
  TempDir dir;
  const HubEnvironment env(hub, dir);

  const Result r = run("inspect --json tiny/qwen3-nvfp4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json from_hub = json::parse(r.out);
  EXPECT_EQ(from_hub["path"], (dir / "hub" / "models--tiny--qwen3-nvfp4" / "snapshots" / kCommit).string());
  EXPECT_NE(r.err.find("download tiny/qwen3-nvfp4: 100%"), std::string::npos) << r.err;  // the progress line
  const Result local = run("inspect --json " + quote(fixture));
  ASSERT_EQ(local.exit_code, 0) << local.err;
  json from_dir = json::parse(local.out);
  for (json* j : {&from_hub, &from_dir}) {  // the same but for where the files are
    j->erase("path");
    (*j)["quantization"].erase("source");
  }
  EXPECT_EQ(from_hub, from_dir);
  for (const std::string& path : hub.paths()) EXPECT_EQ(path.find("README"), std::string::npos) << path;

  const size_t requests = hub.requests().size();
  const ScopedEnv offline({{"HF_HUB_OFFLINE", "1"}});
  const Result again = run("inspect tiny/qwen3-nvfp4@" + kCommit);
  EXPECT_EQ(again.exit_code, 0) << again.err;
  EXPECT_NE(again.out.find("decode reads"), std::string::npos);
  EXPECT_EQ(hub.requests().size(), requests);

  const Result missing = run("inspect tiny/other");
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_EQ(last_line(missing.err).rfind("error: HF_HUB_OFFLINE is set and tiny/other (revision main) is not in the "
                                         "Hugging Face cache ", 0),
            0u)
      << missing.err;
}

// The text commands and the engine read the same snapshot: tokenizer, chat template, generation config.
TEST(CliHub, TokenizeAndRunARepoIdAsTheLocalDirectory) {
  MockHub hub;
  const fs::path demo = test::demo_model_dir() / "nvfp4";
  hub.add_repo("tiny/demo", kCommit, repo_of(demo), {"main", "v1"});
  TempDir dir;
  const HubEnvironment env(hub, dir);

  const std::string tokenize = " --text 'def fibonacci(n):' --json";
  const Result from_hub = run("tokenize tiny/demo --revision v1" + tokenize);
  ASSERT_EQ(from_hub.exit_code, 0) << from_hub.err;
  EXPECT_EQ(from_hub.out, run("tokenize " + quote(demo) + tokenize).out);

  const std::string prompt = " 'def read_config(path):' --max-tokens 12 --seed 7 --temperature 0.8";
  const Result generated = run("run tiny/demo@v1" + prompt);
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  EXPECT_EQ(generated.out, run("run " + quote(demo) + prompt).out);

  const Result conflict = run("run tiny/demo@v1 --revision main" + prompt);
  EXPECT_EQ(conflict.exit_code, 1);
  EXPECT_EQ(last_line(conflict.err), "error: tiny/demo@v1 names revision v1 and --revision names main; give the revision once");
  const Result unknown = run("tokenize tiny/nothere --text x");
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_EQ(last_line(unknown.err).rfind("error: tiny/nothere (revision main): repository not found (HTTP 404", 0), 0u)
      << unknown.err;
}

}  // namespace
}  // namespace adallm
