// NCCL's run-time loader (backend/cuda/nccl.h) without a GPU: a library named by ADALLM_NCCL_LIBRARY is the
// one used or the error, which names the path and the variable (no fallback to another NCCL). The
// collectives themselves are tested on a GPU (tests/gpu/test_nccl.cpp).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "backend/cuda/nccl.h"
#include "core/error.h"

namespace adallm::cuda {
namespace {

TEST(NcclLoader, ANamedLibraryThatDoesNotLoadIsAnErrorNamingIt) {
  const char* before = std::getenv("ADALLM_NCCL_LIBRARY");
  const std::string saved = before ? before : "";
  setenv("ADALLM_NCCL_LIBRARY", "/nonexistent/libnccl.so.2", 1);
  try {
    nccl_version();
    ADD_FAILURE() << "a missing library loaded";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("/nonexistent/libnccl.so.2"), std::string::npos) << message;
    EXPECT_NE(message.find("ADALLM_NCCL_LIBRARY"), std::string::npos) << message;
  }
  // A file that is not a shared library: the loader's own reason comes with the path.
  setenv("ADALLM_NCCL_LIBRARY", __FILE__, 1);
  try {
    nccl_version();
    ADD_FAILURE() << "a source file loaded as NCCL";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(__FILE__), std::string::npos) << e.what();
  }
  if (before) {
    setenv("ADALLM_NCCL_LIBRARY", saved.c_str(), 1);
  } else {
    unsetenv("ADALLM_NCCL_LIBRARY");
  }
}

}  // namespace
}  // namespace adallm::cuda
