// Running the adallm binary from a test: exit code, stdout and stderr of one command line.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "test_util.h"

namespace adallm::test {

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// `args` is pasted into a shell command line after the binary: quote paths with quote().
inline Result run(const std::string& args) {
  TempDir tmp;
  const std::string cmd = std::string(ADALLM_BINARY) + " " + args + " >" + (tmp / "out").string() + " 2>" +
                          (tmp / "err").string();
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), slurp(tmp / "out"), slurp(tmp / "err")};
}

inline std::string quote(const std::filesystem::path& p) { return "'" + p.string() + "'"; }

}  // namespace adallm::test
