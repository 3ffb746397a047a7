// Helpers every test folder shares: a temporary directory per test that cleans up after itself, scoped
// environment variables, error expectations, and the committed model fixtures' location.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"

namespace adallm::test {

// A fresh directory under the system temp dir, named after the running test, removed on destruction.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = "adallm-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    if (info != nullptr) name += std::string("-") + info->test_suite_name() + "-" + info->name();
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// Sets (or, with nullopt, unsets) environment variables for the life of the object, then restores them.
// Child processes (the adallm binary run by a test) inherit them.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, std::optional<std::string>>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.emplace_back(name, old != nullptr ? std::optional<std::string>(old) : std::nullopt);
      if (value) ::setenv(name, value->c_str(), 1);
      else ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    for (auto it = saved_.rbegin(); it != saved_.rend(); ++it) {
      if (it->second) ::setenv(it->first.c_str(), it->second->c_str(), 1);
      else ::unsetenv(it->first.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<std::string, std::optional<std::string>>> saved_;
};

// Runs `fn` and expects an adallm::Error whose message contains `substring`.
template <typename Fn>
void expect_error(Fn&& fn, const std::string& substring) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << substring;
    return;
  }
  ADD_FAILURE() << "no adallm::Error thrown; expected one containing: " << substring;
}

// Runs `fn` and expects an adallm::Error whose message contains `substring`, naming `file` (and whose hint
// contains `hint`, when given); returns the message.
template <typename Fn>
std::string expect_error_in(Fn&& fn, const std::string& substring, const std::string& file,
                            const std::string& hint = "") {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << substring;
    EXPECT_EQ(e.file_path(), file) << e.what();
    if (!hint.empty()) {
      EXPECT_NE(e.hint_text().find(hint), std::string::npos) << e.what();
    }
    return e.what();
  }
  ADD_FAILURE() << "no adallm::Error thrown; expected one containing: " << substring;
  return "";
}

// A whole file as a string ("" when it cannot be read).
inline std::string read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// tests/fixtures: tiny transformers checkpoints of every architecture (see tests/fixtures/README.md).
// tests/ of the source tree: ADALLM_TEST_DIR from the environment when set (a build carried to another
// machine, whose checkout lies elsewhere), else the path compiled in.
inline std::filesystem::path tests_dir() {
  const char* env = std::getenv("ADALLM_TEST_DIR");
  return std::filesystem::path(env != nullptr && *env != '\0' ? env : ADALLM_TEST_DIR);
}

inline std::filesystem::path fixtures_dir() { return tests_dir() / "fixtures"; }

// models/demo: the trained demo model (bf16/, nvfp4/), its held-out text and training record (demo_train.json).
inline std::filesystem::path demo_model_dir() {
  return tests_dir() / ".." / "models" / "demo";
}

}  // namespace adallm::test
