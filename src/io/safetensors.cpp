// safetensors: header parsing and validation, read-only mmap of files, sharded checkpoints. Writing is
// io/safetensors_writer.cpp.
// Validation follows the official Rust crate (huggingface/safetensors, safetensors/src/tensor.rs:
// SafeTensors::read_metadata and Metadata::validate), so a file AdaLLM accepts is one the Python library
// loads and vice versa; where this file is stricter (duplicate JSON keys) the comment says so. What the
// tensor bytes mean is left to core/float_codecs.h and quant/.
#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <system_error>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "io/json_util.h"
#include "io/safetensors_detail.h"

namespace adallm::io {
namespace {

using namespace safetensors_detail;

namespace fs = std::filesystem;
using nlohmann::json;


std::string span_text(uint64_t begin, uint64_t end) {
  return "[" + std::to_string(begin) + ", " + std::to_string(end) + "]";
}

std::string known_dtypes() {
  std::string names;
  for (int i = 0; i <= static_cast<int>(DType::F8_E8M0); ++i) {
    if (!names.empty()) names += ", ";
    names += dtype_name(static_cast<DType>(i));
  }
  return names;
}

// Where a header problem is: one tensor entry of one file. fail() throws naming both.
struct EntryAt {
  const std::string& name;
  const std::string& label;
  [[noreturn]] void fail(const std::string& message) const { throw Error(message).tensor(name).file(label); }
};

const json& require_field(const json& entry, const char* key, const EntryAt& at) {
  auto it = entry.find(key);
  if (it == entry.end())
    at.fail(std::string("header entry has no \"") + key + "\"; expected dtype, shape and data_offsets");
  return *it;
}

// A JSON number that is a non-negative integer fitting in u64 (what the Rust crate's usize accepts).
bool as_unsigned(const json& value, uint64_t& out) {
  if (value.is_number_unsigned()) {
    out = value.get<uint64_t>();
    return true;
  }
  if (value.is_number_integer() && value.get<int64_t>() == 0) {  // "-0"
    out = 0;
    return true;
  }
  return false;
}

std::vector<int64_t> parse_shape(const json& shape, const EntryAt& at) {
  if (!shape.is_array())
    at.fail("\"shape\" is a JSON " + std::string(shape.type_name()) + ", expected an array of integers");
  std::vector<int64_t> dims;
  dims.reserve(shape.size());
  for (size_t i = 0; i < shape.size(); ++i) {
    uint64_t dim = 0;
    const std::string which = "shape[" + std::to_string(i) + "] is ";
    if (!as_unsigned(shape[i], dim)) at.fail(which + json_excerpt(shape[i]) + ", expected a non-negative integer");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      at.fail(which + std::to_string(dim) + ": shape product overflows 64-bit element count");
    }
    dims.push_back(static_cast<int64_t>(dim));
  }
  return dims;
}

// One tensor entry, checked on its own: types, dtype name, shape product, span vs. byte size and file.
// Other keys in the entry are ignored, as serde does for the Rust crate's TensorInfo.
TensorInfo parse_entry(const std::string& name, const json& entry, uint64_t data_bytes, uint64_t file_bytes,
                       const std::string& label) {
  const EntryAt at{name, label};
  if (!entry.is_object()) {
    at.fail("header entry is a JSON " + std::string(entry.type_name()) +
            ", expected an object with dtype, shape and data_offsets");
  }
  TensorInfo info{.name = name, .file = label};
  const json& dtype = require_field(entry, "dtype", at);
  if (!dtype.is_string())
    at.fail("\"dtype\" is a JSON " + std::string(dtype.type_name()) + ", expected a string such as \"BF16\"");
  std::optional<DType> parsed = parse_dtype(dtype.get_ref<const std::string&>());
  if (!parsed) at.fail("unknown dtype " + json_excerpt(dtype) + "; known: " + known_dtypes());
  info.dtype = *parsed;
  info.shape = parse_shape(require_field(entry, "shape", at), at);
  const json& offsets = require_field(entry, "data_offsets", at);
  uint64_t begin = 0, end = 0;
  if (!offsets.is_array() || offsets.size() != 2 || !as_unsigned(offsets[0], begin) || !as_unsigned(offsets[1], end)) {
    at.fail("\"data_offsets\" is " + json_excerpt(offsets) + ", expected [begin, end] with non-negative integers");
  }

  // Same order of overflow checks as the Rust crate: element count, then bytes (ValidationOverflow).
  uint64_t numel = 1, nbytes = 0;
  for (int64_t dim : info.shape) {
    if (!checked_mul(numel, static_cast<uint64_t>(dim), std::numeric_limits<int64_t>::max(), numel)) {
      at.fail("shape " + info.shape_string() + ": shape product overflows 64-bit element count");
    }
  }
  if (!checked_mul(numel, dtype_size(info.dtype), std::numeric_limits<uint64_t>::max(), nbytes)) {
    at.fail(info.describe() + ": shape product overflows 64-bit byte count");
  }
  const std::string span = "data_offsets " + span_text(begin, end);
  if (begin > end) at.fail(span + ": begin is after end");
  if (end > data_bytes) {
    at.fail(span + " end beyond the " + std::to_string(data_bytes) +
            "-byte data section: file truncated? expected at least " + std::to_string(file_bytes - data_bytes + end) +
            " bytes, file has " + std::to_string(file_bytes));
  }
  if (end - begin != nbytes) {
    at.fail("dtype/shape/byte-size mismatch: " + info.describe() + " needs " + std::to_string(nbytes) + " bytes, " +
            span + " span " + std::to_string(end - begin));
  }
  info.offset = begin;
  info.nbytes = nbytes;
  return info;
}

std::map<std::string, std::string> parse_metadata(const json& value, const std::string& label) {
  std::map<std::string, std::string> metadata;
  if (value.is_null()) return metadata;  // the Rust crate reads __metadata__ as Option<HashMap>
  if (!value.is_object()) {
    throw Error("\"__metadata__\" is a JSON " + std::string(value.type_name()) +
                ", expected an object of string to string")
        .file(label);
  }
  for (const auto& [key, item] : value.items()) {
    if (!item.is_string()) {
      throw Error("\"__metadata__\" value for key " + json_excerpt(json(key)) + " is a JSON " +
                  std::string(item.type_name()) + ", expected a string")
          .file(label);
    }
    metadata.emplace(key, item.get<std::string>());
  }
  return metadata;
}

// The data section must be exactly tiled by the tensors: sorted by offset, each begins where the previous
// ended, and the last ends at the end of the file. This is Metadata::validate (InvalidOffset for a gap or
// an overlap) plus read_metadata's MetadataIncompleteBuffer for trailing bytes. Zero-byte tensors are
// allowed anywhere on a boundary, as there.
void check_layout(std::vector<TensorInfo>& tensors, uint64_t data_bytes, const std::string& label) {
  std::sort(tensors.begin(), tensors.end(), [](const TensorInfo& a, const TensorInfo& b) {
    return std::tie(a.offset, a.nbytes, a.name) < std::tie(b.offset, b.nbytes, b.name);
  });
  uint64_t cursor = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo& t : tensors) {
    const std::string span = span_text(t.offset, t.offset + t.nbytes);
    const EntryAt at{t.name, label};
    if (t.offset < cursor) {
      at.fail("data_offsets " + span + " overlap tensor " + previous->name + "'s " +
              span_text(previous->offset, cursor));
    }
    if (t.offset > cursor) {
      std::string after = previous ? "after tensor " + previous->name + "'s " + span_text(previous->offset, cursor)
                                   : "at the start of the data section";
      at.fail("data_offsets " + span + " leave a gap of " + std::to_string(t.offset - cursor) + " bytes " + after +
              "; safetensors requires contiguous tensor data");
    }
    cursor = t.offset + t.nbytes;
    previous = &t;
  }
  if (cursor != data_bytes) {
    throw Error("data section is " + std::to_string(data_bytes) + " bytes but the tensors cover only " +
                std::to_string(cursor) + "; " + std::to_string(data_bytes - cursor) +
                " trailing bytes (safetensors requires the tensors to cover the data section exactly)")
        .file(label);
  }
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open: " + errno_text(errno)).file(path.string());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw Error("cannot read: " + errno_text(errno)).file(path.string());
  return text;
}

// A shard name from an index: a relative path that stays inside the checkpoint directory.
void check_shard_name(const std::string& shard, const std::string& name, const std::string& label) {
  const fs::path p(shard);
  bool escapes = shard.empty() || p.is_absolute();
  for (const fs::path& part : p) escapes = escapes || part == "..";
  if (escapes) {
    throw Error("weight_map names shard " + json_excerpt(json(shard)) +
                ", expected a file name inside the checkpoint directory")
        .tensor(name)
        .file(label);
  }
}

}  // namespace

// ---- TensorInfo ----

int64_t TensorInfo::numel() const {
  uint64_t n = 1;  // unsigned: wraps instead of UB for a hand-built absurd shape; parsed shapes never do
  for (int64_t dim : shape) n *= static_cast<uint64_t>(dim);
  return static_cast<int64_t>(n);
}

std::string TensorInfo::shape_string() const {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

std::string TensorInfo::describe() const {
  return std::string(dtype_name(dtype)) + " " + shape_string();
}

// ---- parsing ----

SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> bytes, const std::string& label) {
  const uint64_t size = bytes.size();
  if (size < 8) {
    throw Error("file is " + std::to_string(size) + " bytes, shorter than the 8-byte header length field")
        .file(label)
        .hint("not a safetensors file, or truncated");
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = (header_len << 8) | bytes[static_cast<size_t>(i)];
  if (header_len > kMaxHeaderBytes) {
    throw Error("header length " + std::to_string(header_len) + " is absurd (limit " + std::to_string(kMaxHeaderBytes) +
                " bytes)")
        .file(label)
        .hint("not a safetensors file?");
  }
  if (header_len > size - 8) {
    throw Error("header length " + std::to_string(header_len) + " is larger than the file: expected at least " +
                std::to_string(8 + header_len) + " bytes, file has " + std::to_string(size))
        .file(label)
        .hint("file truncated?");
  }
  SafetensorsHeader header;
  header.data_start = 8 + header_len;
  const uint64_t data_bytes = size - header.data_start;

  // Stricter than the Rust crate: serde keeps the last of two equal keys, which can shadow a tensor.
  const json root = parse_json_strict(bytes.data() + 8, bytes.data() + header.data_start, "header", label);
  if (!root.is_object()) {
    throw Error("header is a JSON " + std::string(root.type_name()) +
                ", expected an object of tensor name -> {dtype, shape, data_offsets}")
        .file(label);
  }
  header.tensors.reserve(root.size());
  for (const auto& [name, entry] : root.items()) {
    if (name == kMetadataKey) {
      header.metadata = parse_metadata(entry, label);
    } else {
      header.tensors.push_back(parse_entry(name, entry, data_bytes, size, label));
    }
  }
  check_layout(header.tensors, data_bytes, label);
  return header;
}

// ---- SafetensorsFile ----

std::unique_ptr<SafetensorsFile> SafetensorsFile::open(const std::filesystem::path& path) {
  const std::string label = path.string();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open safetensors file: " + errno_text(errno)).file(label);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw Error("cannot stat: " + errno_text(err)).file(label);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("not a regular file").file(label);
  }
  // Owned before the mapping exists, so the destructor unmaps on every later throw.
  std::unique_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->size_ = static_cast<uint64_t>(st.st_size);
  if (file->size_ > 0) {
    void* mapping = ::mmap(nullptr, file->size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    ::close(fd);  // the mapping keeps the file referenced
    if (mapping == MAP_FAILED) {
      throw Error("cannot mmap " + std::to_string(file->size_) + " bytes: " + errno_text(err)).file(label);
    }
    file->mapping_ = mapping;
  } else {
    ::close(fd);
  }
  const auto* base = static_cast<const uint8_t*>(file->mapping_);
  file->header_ = parse_safetensors_header({base, base ? file->size_ : 0}, label);
  for (size_t i = 0; i < file->header_.tensors.size(); ++i) {
    TensorInfo& t = file->header_.tensors[i];
    t.data = base + file->header_.data_start + t.offset;
    file->index_.emplace(t.name, i);
  }
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (mapping_ != nullptr) ::munmap(mapping_, size_);
}

const TensorInfo* SafetensorsFile::find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &header_.tensors[it->second];
}

// ---- Checkpoint ----

void Checkpoint::add_file(std::unique_ptr<SafetensorsFile> file) {
  for (const TensorInfo& t : file->tensors()) {
    auto [it, inserted] = by_name_.emplace(t.name, &t);
    if (!inserted) {
      throw Error("present in two files: " + it->second->file + " and " + t.file)
          .tensor(t.name)
          .file(directory_.string())
          .hint("each tensor must live in exactly one shard");
    }
  }
  files_.push_back(std::move(file));
}

std::map<std::string, std::string> read_safetensors_index(const std::filesystem::path& index_path) {
  const std::string label = index_path.string();
  const std::string text = read_text_file(index_path);
  const auto* begin = reinterpret_cast<const uint8_t*>(text.data());
  const json index = parse_json_strict(begin, begin + text.size(), "index", label);
  auto weight_map = index.is_object() ? index.find("weight_map") : index.end();
  if (!index.is_object() || weight_map == index.end() || !weight_map->is_object()) {
    throw Error("expected an object with a \"weight_map\" object of tensor name -> shard file").file(label);
  }
  if (weight_map->empty()) throw Error("\"weight_map\" is empty").file(label);
  std::map<std::string, std::string> shard_of;
  for (const auto& [name, shard] : weight_map->items()) {
    if (!shard.is_string()) {
      throw Error("weight_map value is a JSON " + std::string(shard.type_name()) + ", expected a shard file name")
          .tensor(name)
          .file(label);
    }
    check_shard_name(shard.get<std::string>(), name, label);
    shard_of.emplace(name, shard.get<std::string>());
  }
  return shard_of;
}

void Checkpoint::open_indexed(const std::filesystem::path& index_path) {
  const std::string label = index_path.string();
  std::map<std::string, std::string> shard_of;  // tensor name -> shard path as opened
  std::set<std::string> shards;
  for (const auto& [name, shard] : read_safetensors_index(index_path)) {
    shards.insert(shard);
    shard_of.emplace(name, (directory_ / shard).string());
  }
  for (const std::string& shard : shards) {
    const fs::path shard_path = directory_ / shard;
    std::error_code ec;
    if (!fs::is_regular_file(shard_path, ec)) {
      throw Error("shard " + shard + " listed in the index does not exist").file(label).hint("incomplete download?");
    }
    add_file(SafetensorsFile::open(shard_path));
  }
  for (const auto& [name, shard_path] : shard_of) {
    auto it = by_name_.find(name);
    if (it == by_name_.end() || it->second->file != shard_path) {
      std::string found = it == by_name_.end() ? "no shard has it" : "it is in " + it->second->file;
      throw Error("listed in the index under " + shard_path + ", but that shard has no such tensor (" + found + ")")
          .tensor(name)
          .file(label);
    }
  }
  for (const auto& [name, info] : by_name_) {
    if (shard_of.find(name) == shard_of.end()) {
      throw Error("present in shard " + info->file + " but absent from the index").tensor(name).file(label);
    }
  }
}

Checkpoint Checkpoint::open(const std::filesystem::path& path) {
  Checkpoint checkpoint;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (fs::is_regular_file(status)) {
    checkpoint.directory_ = path.has_parent_path() ? path.parent_path() : fs::path(".");
    checkpoint.add_file(SafetensorsFile::open(path));
    return checkpoint;
  }
  if (!fs::is_directory(status)) {
    std::string why = "not a file or directory";
    if (status.type() == fs::file_type::not_found) {
      why = "no such file or directory";
    } else if (ec) {
      why = ec.message();  // e.g. permission denied on a parent directory
    }
    throw Error("cannot open checkpoint: " + why).file(path.string());
  }
  checkpoint.directory_ = path;
  if (fs::exists(path / kIndexName, ec)) {
    checkpoint.open_indexed(path / kIndexName);
    return checkpoint;
  }
  if (fs::exists(path / "model.safetensors", ec)) {
    checkpoint.add_file(SafetensorsFile::open(path / "model.safetensors"));
    return checkpoint;
  }
  // No index and no model.safetensors: take every *.safetensors file (hand-sharded uploads); add_file
  // rejects a name in two of them, and the model ledger rejects tensors nobody consumes.
  std::vector<fs::path> found;
  for (const fs::directory_entry& entry : fs::directory_iterator(path, ec)) {
    if (entry.path().extension() == ".safetensors" && entry.is_regular_file(ec)) found.push_back(entry.path());
  }
  if (ec) throw Error("cannot list directory: " + ec.message()).file(path.string());
  if (found.empty()) {
    throw Error("no " + std::string(kIndexName) + ", model.safetensors or *.safetensors file in the directory")
        .file(path.string())
        .hint("is this a Hugging Face model directory?");
  }
  std::sort(found.begin(), found.end());
  for (const fs::path& file : found) checkpoint.add_file(SafetensorsFile::open(file));
  return checkpoint;
}

const TensorInfo* Checkpoint::find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

const TensorInfo& Checkpoint::get(std::string_view name) const {
  const TensorInfo* info = find(name);
  if (info == nullptr) {
    throw Error("not found in the checkpoint (" + std::to_string(by_name_.size()) + " tensors)")
        .tensor(std::string(name))
        .file(directory_.string());
  }
  return *info;
}

std::vector<const TensorInfo*> Checkpoint::tensors() const {
  std::vector<const TensorInfo*> out;
  out.reserve(by_name_.size());
  for (const auto& [name, info] : by_name_) out.push_back(info);
  return out;
}

uint64_t Checkpoint::file_bytes() const {
  uint64_t total = 0;
  for (const auto& file : files_) total += file->file_size();
  return total;
}

}  // namespace adallm::io
