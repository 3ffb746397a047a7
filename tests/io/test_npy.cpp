// .npy round trip and the exact bytes numpy writes for a small array (header padded to 64 bytes).
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/npy.h"
#include "test_util.h"

namespace adallm::io {
namespace {

TEST(Npy, WritesNumpysLayoutAndReadsItBack) {
  test::TempDir dir;
  const auto path = dir.path() / "a.npy";
  const std::vector<int64_t> shape = {2, 3};
  const std::vector<float> data = {1, 2, 3, 4, 5, -6.5f};
  write_npy_f32(path, shape, data);
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // numpy.save(np.array(..., dtype='<f4')) writes exactly this 128-byte preamble + header.
  std::string expected_header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  expected_header.append(128 - 10 - expected_header.size() - 1, ' ');
  expected_header += '\n';
  ASSERT_EQ(bytes.size(), 128u + 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_EQ(bytes.substr(10, 118), expected_header);
  const NpyArray a = read_npy_f32(path);
  EXPECT_EQ(a.shape, shape);
  EXPECT_EQ(a.data, data);
}

TEST(Npy, OneDimensionalShapeHasTrailingComma) {
  test::TempDir dir;
  const std::vector<int64_t> shape = {3};
  write_npy_f32(dir.path() / "v.npy", shape, std::vector<float>{1, 2, 3});
  std::ifstream in(dir.path() / "v.npy", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(bytes.find("'shape': (3,), }"), std::string::npos);
  EXPECT_EQ(read_npy_f32(dir.path() / "v.npy").shape, shape);
}

TEST(Npy, RefusesMismatchAndForeignFiles) {
  test::TempDir dir;
  const std::vector<int64_t> shape = {2, 2};
  EXPECT_THROW(write_npy_f32(dir.path() / "x.npy", shape, std::vector<float>{1, 2, 3}), Error);
  std::ofstream(dir.path() / "bad.npy") << "not numpy";
  EXPECT_THROW(read_npy_f32(dir.path() / "bad.npy"), Error);
}

}  // namespace
}  // namespace adallm::io
