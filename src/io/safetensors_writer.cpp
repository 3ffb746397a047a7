// safetensors writing: single files in the layout the Python library writes (insertion order,
// contiguous offsets, header padded with spaces to 8 bytes) and the shard index. Files appear atomically:
// written to a temporary name in the same directory, then renamed.
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"
#include "io/safetensors.h"
#include "io/safetensors_detail.h"

namespace adallm::io {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace safetensors_detail;

// Writes `pieces` to `path` through a temporary file in the same directory, renamed into place.
void write_file_atomically(const fs::path& path, const std::vector<std::span<const uint8_t>>& pieces) {
  static std::atomic<uint64_t> counter{0};
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  const fs::path temp = directory / ("." + path.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
                                     std::to_string(counter++));
  const std::string label = path.string();
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) {
    throw Error("cannot create temporary file " + temp.string() + ": " + errno_text(errno)).file(label);
  }
  auto fail = [&](const std::string& what, int err) {
    if (fd >= 0) ::close(fd);
    ::unlink(temp.c_str());
    throw Error(what + ": " + errno_text(err)).file(label);
  };
  for (std::span<const uint8_t> piece : pieces) {
    const uint8_t* p = piece.data();
    size_t left = piece.size();
    while (left > 0) {
      ssize_t n = ::write(fd, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) fail("cannot write", n < 0 ? errno : EIO);
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
  if (::fsync(fd) != 0) fail("cannot fsync", errno);
  int closed = ::close(fd);
  fd = -1;
  if (closed != 0) fail("cannot close", errno);
  if (::rename(temp.c_str(), path.c_str()) != 0) fail("cannot rename " + temp.string() + " into place", errno);
}

std::span<const uint8_t> as_bytes(const std::string& text) {
  return {reinterpret_cast<const uint8_t*>(text.data()), text.size()};
}

}  // namespace

// ---- writing ----

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
  if (name == kMetadataKey) throw Error("\"__metadata__\" is reserved, not a tensor name").tensor(name);
  try {
    (void)json(name).dump();
  } catch (const json::type_error&) {
    throw Error("tensor name is not valid UTF-8").tensor(name);
  }
  for (const Pending& p : tensors_) {
    if (p.name == name) throw Error("added twice to the same safetensors file").tensor(name);
  }
  uint64_t numel = 1;
  for (int64_t dim : shape) {
    if (dim < 0 || !checked_mul(numel, static_cast<uint64_t>(dim), std::numeric_limits<int64_t>::max(), numel)) {
      throw Error("invalid shape: dimension " + std::to_string(dim)).tensor(name);
    }
  }
  uint64_t nbytes = 0;
  if (!checked_mul(numel, dtype_size(dtype), std::numeric_limits<uint64_t>::max(), nbytes) || nbytes != bytes.size()) {
    TensorInfo info{.name = name, .dtype = dtype, .shape = shape};
    throw Error(info.describe() + " needs " + std::to_string(numel) + " x " + std::to_string(dtype_size(dtype)) +
                " bytes, got " + std::to_string(bytes.size()))
        .tensor(name);
  }
  tensors_.push_back(Pending{std::move(name), dtype, std::move(shape), std::move(bytes)});
}

void SafetensorsWriter::set_metadata(std::string key, std::string value) {
  try {
    (void)json(key).dump();
    (void)json(value).dump();
  } catch (const json::type_error&) {
    throw Error("metadata key or value is not valid UTF-8: " + json_excerpt(json(key)));
  }
  metadata_[std::move(key)] = std::move(value);
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t total = 0;
  for (const Pending& p : tensors_) total += p.bytes.size();
  return total;
}

std::vector<std::string> SafetensorsWriter::names() const {
  std::vector<std::string> out;
  out.reserve(tensors_.size());
  for (const Pending& p : tensors_) out.push_back(p.name);
  return out;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  // Built by hand rather than as one json object so that entries keep insertion order (as the Python
  // library writes them: __metadata__ first, fields dtype, shape, data_offsets) without O(n^2) lookups.
  std::string header = "{";
  auto append = [&header](const std::string& key, const std::string& value_json) {
    if (header.size() > 1) header += ',';
    header += json(key).dump();
    header += ':';
    header += value_json;
  };
  if (!metadata_.empty()) append(std::string(kMetadataKey), json(metadata_).dump());
  uint64_t offset = 0;
  for (const Pending& p : tensors_) {
    nlohmann::ordered_json entry;
    entry["dtype"] = dtype_name(p.dtype);
    entry["shape"] = p.shape;
    entry["data_offsets"] = {offset, offset + p.bytes.size()};
    offset += p.bytes.size();
    append(p.name, entry.dump());
  }
  header += '}';
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kMaxHeaderBytes) {
    throw Error("header would be " + std::to_string(header.size()) + " bytes, over the " +
                std::to_string(kMaxHeaderBytes) + "-byte limit of safetensors readers")
        .file(path.string())
        .hint("split the tensors over more shards");
  }

  std::vector<uint8_t> length(8);
  for (size_t i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
  std::vector<std::span<const uint8_t>> pieces{length, as_bytes(header)};
  for (const Pending& p : tensors_) pieces.emplace_back(p.bytes);
  write_file_atomically(path, pieces);
}

void write_safetensors_index(const std::filesystem::path& directory,
                             const std::vector<std::pair<std::string, std::vector<std::string>>>& shard_tensors,
                             uint64_t total_size) {
  const fs::path path = directory / kIndexName;
  json weight_map = json::object();  // std::map-backed: keys come out sorted
  for (const auto& [shard, names] : shard_tensors) {
    for (const std::string& name : names) {
      auto it = weight_map.find(name);
      if (it != weight_map.end()) {
        throw Error("listed in two shards: " + it->get<std::string>() + " and " + shard)
            .tensor(name)
            .file(path.string());
      }
      weight_map[name] = shard;
    }
  }
  json index = {{"metadata", {{"total_size", total_size}}}, {"weight_map", std::move(weight_map)}};
  std::string text;
  try {
    text = index.dump(2) + "\n";
  } catch (const json::type_error&) {
    throw Error("a tensor or shard name is not valid UTF-8").file(path.string());
  }
  write_file_atomically(path, {as_bytes(text)});
}

}  // namespace adallm::io
