// safetensors reading (mmap, single file or sharded with model.safetensors.index.json) and writing.
// Every header is validated before any tensor is handed out: JSON syntax, header length, dtype names,
// shape × dtype size == byte span, spans inside the file, no overlaps, no gaps. Numeric decoding of the
// tensor bytes is left to core/float_codecs.h and quant/.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/dtype.h"

namespace adallm::io {

struct TensorInfo {
  std::string name;
  DType dtype = DType::U8;
  std::vector<int64_t> shape;  // [] for a 0-d scalar
  uint64_t offset = 0;         // from the start of the data section
  uint64_t nbytes = 0;
  // Into the file mapping; null for a parsed-only header. The data section starts 8-byte aligned in
  // files written as the reference writer does, but offsets are not padded: a tensor after an odd-sized
  // one is misaligned for its dtype, so read it with memcpy, not through a cast pointer.
  const uint8_t* data = nullptr;
  std::string file;  // path of the file holding it (for error messages)

  int64_t numel() const;
  std::string shape_string() const;  // "[4096, 768]"
  std::string describe() const;      // "BF16 [4096, 768]"
};

struct SafetensorsHeader {
  std::vector<TensorInfo> tensors;  // in data-offset order
  std::map<std::string, std::string> metadata;
  uint64_t data_start = 0;  // 8 + header length
};

// Parses and validates the header of a safetensors file held in `bytes` (the whole file). `label` names
// the file in errors. Throws adallm::Error on any malformed input; never reads outside `bytes`.
SafetensorsHeader parse_safetensors_header(std::span<const uint8_t> bytes, const std::string& label);

// One memory-mapped, validated safetensors file.
class SafetensorsFile {
 public:
  static std::unique_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::vector<TensorInfo>& tensors() const { return header_.tensors; }
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const TensorInfo* find(std::string_view name) const;
  const std::filesystem::path& path() const { return path_; }
  uint64_t file_size() const { return size_; }

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* mapping_ = nullptr;
  uint64_t size_ = 0;
  SafetensorsHeader header_;
  std::map<std::string, size_t, std::less<>> index_;  // name -> position in header_.tensors
};

// model.safetensors.index.json's weight_map: tensor name -> shard file (a relative path that stays inside
// the checkpoint directory), validated; throws adallm::Error naming the index on anything else.
std::map<std::string, std::string> read_safetensors_index(const std::filesystem::path& index_path);

// All tensors of a checkpoint: a directory with model.safetensors, or with model.safetensors.index.json
// and its shards, or a path to one .safetensors file. Every name in the index must be in the shard it
// names; a tensor in a shard but absent from the index, or present in two shards, is an error.
// Directory lookup order: the index if present (files it does not name, e.g. a stray
// consolidated.safetensors, are ignored), else model.safetensors alone, else every *.safetensors file in
// the directory (sorted; a name in two of them is an error), else an error listing what was looked for.
class Checkpoint {
 public:
  static Checkpoint open(const std::filesystem::path& path);

  const TensorInfo* find(std::string_view name) const;
  // Like find, but throws adallm::Error naming the tensor and the checkpoint when absent.
  const TensorInfo& get(std::string_view name) const;
  // Sorted by name.
  std::vector<const TensorInfo*> tensors() const;
  const std::vector<std::unique_ptr<SafetensorsFile>>& files() const { return files_; }
  const std::filesystem::path& directory() const { return directory_; }
  uint64_t file_bytes() const;  // sum of the files' sizes

 private:
  // Adds a file's tensors to by_name_; a name already held by another file is an error naming both.
  void add_file(std::unique_ptr<SafetensorsFile> file);
  // Sharded layout: opens the shards model.safetensors.index.json names and checks both directions.
  void open_indexed(const std::filesystem::path& index_path);

  std::filesystem::path directory_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const TensorInfo*, std::less<>> by_name_;
};

// Tensors to write. Bytes are owned; data is written in insertion order with contiguous offsets (no
// alignment padding between tensors: readers following the Rust safetensors crate reject gaps); the
// header is padded with spaces to a multiple of 8, so the data section starts 8-byte aligned.
// add() throws adallm::Error for a duplicate or reserved name, a name that is not UTF-8, a negative
// dimension, or a byte count that does not match dtype and shape.
class SafetensorsWriter {
 public:
  void add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes);
  void set_metadata(std::string key, std::string value);
  uint64_t data_bytes() const;
  bool empty() const { return tensors_.empty(); }
  std::vector<std::string> names() const;
  // Writes to `path` through a temporary file renamed into place, so a failed write leaves nothing behind.
  void write(const std::filesystem::path& path) const;

 private:
  struct Pending {
    std::string name;
    DType dtype;
    std::vector<int64_t> shape;
    std::vector<uint8_t> bytes;
  };
  std::vector<Pending> tensors_;
  std::map<std::string, std::string> metadata_;
};

// Writes `model.safetensors.index.json` for shards already written: weight_map from each shard's tensor
// names, metadata.total_size = the sum of tensor bytes.
void write_safetensors_index(const std::filesystem::path& directory,
                             const std::vector<std::pair<std::string, std::vector<std::string>>>& shard_tensors,
                             uint64_t total_size);

}  // namespace adallm::io
