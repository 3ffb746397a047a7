// .npy reading and writing (see npy.h). The header is a Python dict literal padded with spaces so that
// the data starts 64-byte aligned, as numpy writes it.
#include "io/npy.h"

#include <bit>
#include <cstring>
#include <fstream>
#include <iterator>
#include <regex>
#include <string>

#include "core/error.h"

namespace adallm::io {
namespace {

constexpr char kMagic[] = "\x93NUMPY";

}  // namespace

void write_npy_f32(const std::filesystem::path& path, std::span<const int64_t> shape, std::span<const float> data) {
  static_assert(std::endian::native == std::endian::little, "npy writer assumes a little-endian host");
  int64_t count = 1;
  std::string dims;
  for (int64_t d : shape) {
    count *= d;
    dims += std::to_string(d) + ", ";
  }
  if (shape.size() > 1) dims.resize(dims.size() - 2);  // "(3, 4)"
  if (shape.size() == 1) dims.resize(dims.size() - 1);  // "(3,)", a Python 1-tuple
  if (count != static_cast<int64_t>(data.size())) {
    throw Error("npy: " + std::to_string(data.size()) + " values do not fill the shape").file(path.string());
  }
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + dims + "), }";
  const size_t unpadded = 6 + 2 + 2 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  const std::filesystem::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error("cannot write the .npy file").file(path.string());
    out.write(kMagic, 6);
    const char version[2] = {1, 0};
    out.write(version, 2);
    const auto len = static_cast<uint16_t>(header.size());
    const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(len_bytes, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size_bytes()));
    if (!out.flush()) throw Error("write failed").file(tmp.string());
  }
  std::filesystem::rename(tmp, path);
}

NpyArray read_npy_f32(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open the .npy file").file(path.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto fail = [&](const std::string& what) { throw Error("npy: " + what).file(path.string()); };
  if (bytes.size() < 10 || bytes.compare(0, 6, kMagic, 6) != 0) fail("not a .npy file (bad magic)");
  if (bytes[6] != 1) fail("only format version 1.0 is read");
  const size_t len = static_cast<uint8_t>(bytes[8]) | (static_cast<size_t>(static_cast<uint8_t>(bytes[9])) << 8);
  if (10 + len > bytes.size()) fail("truncated header");
  const std::string header = bytes.substr(10, len);
  if (header.find("'descr': '<f4'") == std::string::npos) fail("dtype is not little-endian float32: " + header);
  if (header.find("'fortran_order': False") == std::string::npos) fail("Fortran order is not supported");
  std::smatch m;
  if (!std::regex_search(header, m, std::regex(R"('shape': \(([0-9, ]*)\))"))) fail("no shape in " + header);
  NpyArray a;
  int64_t count = 1;
  const std::string dims = m[1];
  const std::regex number("[0-9]+");
  for (std::sregex_iterator it(dims.begin(), dims.end(), number), end; it != end; ++it) {
    a.shape.push_back(std::stoll(it->str()));
    count *= a.shape.back();
  }
  const size_t data_bytes = static_cast<size_t>(count) * sizeof(float);
  if (bytes.size() - 10 - len != data_bytes) fail("data size does not match the shape");
  a.data.resize(static_cast<size_t>(count));
  std::memcpy(a.data.data(), bytes.data() + 10 + len, data_bytes);
  return a;
}

}  // namespace adallm::io
