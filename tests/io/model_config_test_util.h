// Helpers for the io/model_config tests: the test data folder and error expectations.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"
#include "io/model_config.h"

namespace adallm::io::test_config {

namespace fs = std::filesystem;
using json = nlohmann::json;

inline const std::string kSource = "mem/config.json";

inline fs::path configs_dir() { return fs::path(ADALLM_TEST_DIR) / "data" / "configs"; }

inline json read(const std::string& name) {
  std::ifstream in(configs_dir() / name);
  EXPECT_TRUE(in.good()) << "missing test data " << name;
  return json::parse(in);
}

inline ModelConfig parse(const json& config) { return parse_model_config(config, kSource); }

// Runs `fn`, expects an adallm::Error containing `substring` that names `file`; returns the message.
template <typename Fn>
std::string expect_error(Fn&& fn, const std::string& substring, const std::string& file = kSource) {
  return test::expect_error_in(std::forward<Fn>(fn), substring, file);
}

inline void expect_parse_error(const json& config, const std::string& substring) {
  expect_error([&] { parse(config); }, substring);
}

}  // namespace adallm::io::test_config
