// Tests of io/safetensors: a hand-built golden file, writer round trips, sharded checkpoints, and one test
// per malformed input, each pinning the message and that the file (and tensor, where there is one) is named.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "io/safetensors_test_util.h"

namespace adallm::io {
namespace {

namespace fs = std::filesystem;
using test::expect_error;
using test::iota_bytes;
using test::make_safetensors;
using test::TempDir;

const std::string kLabel = "mem.safetensors";

SafetensorsHeader parse(const std::vector<uint8_t>& bytes) {
  return parse_safetensors_header(bytes, kLabel);
}

// Expects parsing `header` (+ `data`) to fail with `substring`, naming kLabel and `tensor`.
void expect_header_error(const std::string& header, const std::vector<uint8_t>& data, std::string_view substring,
                         std::string_view tensor = "") {
  const auto bytes = make_safetensors(header, data);
  expect_error([&] { parse(bytes); }, substring, kLabel, tensor);
}

std::string entry(const std::string& dtype, const std::string& shape, uint64_t begin, uint64_t end) {
  return R"({"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":[)" + std::to_string(begin) + "," +
         std::to_string(end) + "]}";
}

// ---- golden file and round trips ----

// Built byte for byte from the format definition: u64 LE header length, JSON, data section.
std::vector<uint8_t> golden_bytes() {
  const std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}})"
                             "     ";  // 139 bytes of JSON + 5 spaces = 144 = 0x90
  const std::string length("\x90\0\0\0\0\0\0\0", 8);
  const std::string data("\x00\x00\x80\x3F"   // 1.0f
                         "\x00\x00\x20\xC0"   // -2.5f
                         "\x00\x3F",            // bf16 0.5
                         10);
  const std::string file = length + header + data;
  return std::vector<uint8_t>(file.begin(), file.end());
}

TEST(SafetensorsGolden, HandBuiltFileParses) {
  const auto bytes = golden_bytes();
  ASSERT_EQ(bytes.size(), 162u);
  const SafetensorsHeader header = parse(bytes);
  EXPECT_EQ(header.data_start, 152u);
  ASSERT_EQ(header.tensors.size(), 2u);
  const TensorInfo& w = header.tensors[0];  // data-offset order
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.dtype, DType::F32);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(w.offset, 0u);
  EXPECT_EQ(w.nbytes, 8u);
  EXPECT_EQ(w.data, nullptr);
  EXPECT_EQ(w.file, kLabel);
  const TensorInfo& b = header.tensors[1];
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.describe(), "BF16 []");
  EXPECT_EQ(b.numel(), 1);
  EXPECT_EQ(b.offset, 8u);
  EXPECT_EQ(b.nbytes, 2u);
  EXPECT_EQ(header.metadata, (std::map<std::string, std::string>{{"format", "pt"}}));

  float values[2];
  std::memcpy(values, bytes.data() + header.data_start + w.offset, sizeof(values));
  EXPECT_EQ(values[0], 1.0f);
  EXPECT_EQ(values[1], -2.5f);
}

TEST(SafetensorsGolden, WriterProducesTheSameBytes) {
  TempDir dir;
  SafetensorsWriter writer;
  writer.set_metadata("format", "pt");
  writer.add("w", DType::F32, {2}, {0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x20, 0xC0});
  writer.add("b", DType::BF16, {}, {0x00, 0x3F});
  writer.write(dir / "g.safetensors");
  EXPECT_EQ(test::read_bytes(dir / "g.safetensors"), golden_bytes());
}

// The layout the reference writer (the Rust crate behind the Python library) produces for one F32
// tensor [1, 2, 3] named attn.0: a 64-byte header, so no padding, then the data.
TEST(SafetensorsGolden, WriterMatchesReferenceLayout) {
  TempDir dir;
  const float values[6] = {0.0f, 1.0f, 2.0f, 3.0f, 4.0f, 5.0f};
  std::vector<uint8_t> data(sizeof values);
  std::memcpy(data.data(), values, sizeof values);
  SafetensorsWriter writer;
  writer.add("attn.0", DType::F32, {1, 2, 3}, data);
  writer.write(dir / "a.safetensors");
  const std::string header = R"({"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}})";
  ASSERT_EQ(header.size(), 64u);
  EXPECT_EQ(test::read_bytes(dir / "a.safetensors"), make_safetensors(header, data));

  SafetensorsWriter metadata_only;
  metadata_only.set_metadata("framework", "pt");
  metadata_only.write(dir / "m.safetensors");
  EXPECT_EQ(test::read_bytes(dir / "m.safetensors"), make_safetensors(R"({"__metadata__":{"framework":"pt"}}     )"));
}

// The fuzzer's seeds must stay valid files, or the fuzzer starts from rejections only.
TEST(SafetensorsGolden, FuzzSeedsAreValid) {
  const fs::path seeds = fs::path(ADALLM_TEST_DIR) / ".." / "fuzz" / "corpus" / "safetensors";
  int opened = 0;
  for (const fs::directory_entry& e : fs::directory_iterator(seeds)) {
    if (e.path().extension() != ".safetensors") continue;
    EXPECT_NO_THROW(SafetensorsFile::open(e.path())) << e.path();
    ++opened;
  }
  EXPECT_GE(opened, 4);
  auto all = SafetensorsFile::open(seeds / "all_dtypes.safetensors");
  EXPECT_EQ(all->tensors().size(), 16u);
  EXPECT_EQ(all->find("t_f8_e4m3")->dtype, DType::F8_E4M3);
}

TEST(SafetensorsRoundTrip, WriterThenOpen) {
  TempDir dir;
  const auto w_bytes = iota_bytes(2 * 3 * 2, 1);
  const auto s_bytes = std::vector<uint8_t>{0x00, 0x00, 0xC0, 0x3F};  // 1.5f
  const auto q_bytes = iota_bytes(5, 100);
  SafetensorsWriter writer;
  writer.add("model.layers.0.weight", DType::BF16, {2, 3}, w_bytes);
  writer.add("scale", DType::F32, {}, s_bytes);
  writer.add("empty", DType::I64, {0, 4}, {});
  writer.add("q", DType::F8_E4M3, {5}, q_bytes);
  writer.set_metadata("format", "pt");
  writer.set_metadata("quant", "nvfp4");
  EXPECT_EQ(writer.data_bytes(), 12u + 4u + 0u + 5u);
  EXPECT_EQ(writer.names(), (std::vector<std::string>{"model.layers.0.weight", "scale", "empty", "q"}));
  EXPECT_FALSE(writer.empty());
  writer.write(dir / "rt.safetensors");

  auto file = SafetensorsFile::open(dir / "rt.safetensors");
  EXPECT_EQ(file->path(), dir / "rt.safetensors");
  EXPECT_EQ(file->metadata(), (std::map<std::string, std::string>{{"format", "pt"}, {"quant", "nvfp4"}}));
  ASSERT_EQ(file->tensors().size(), 4u);

  const TensorInfo* w = file->find("model.layers.0.weight");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->describe(), "BF16 [2, 3]");
  EXPECT_EQ(w->offset, 0u);  // insertion order, contiguous
  EXPECT_EQ(std::vector<uint8_t>(w->data, w->data + w->nbytes), w_bytes);
  EXPECT_EQ(w->file, (dir / "rt.safetensors").string());

  const TensorInfo* s = file->find("scale");
  ASSERT_NE(s, nullptr);
  EXPECT_TRUE(s->shape.empty());
  EXPECT_EQ(s->shape_string(), "[]");
  EXPECT_EQ(s->offset, 12u);
  float scale = 0;
  std::memcpy(&scale, s->data, 4);
  EXPECT_EQ(scale, 1.5f);

  const TensorInfo* e = file->find("empty");
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->numel(), 0);
  EXPECT_EQ(e->offset, 16u);
  EXPECT_EQ(e->nbytes, 0u);

  const TensorInfo* q = file->find("q");
  ASSERT_NE(q, nullptr);
  EXPECT_EQ(q->dtype, DType::F8_E4M3);
  EXPECT_EQ(std::vector<uint8_t>(q->data, q->data + q->nbytes), q_bytes);
  EXPECT_EQ(file->find("missing"), nullptr);

  // Header padded with spaces to a multiple of 8; data section ends the file.
  const auto raw = test::read_bytes(dir / "rt.safetensors");
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw[8 + n - 1], ' ');
  EXPECT_EQ(file->file_size(), raw.size());
  EXPECT_EQ(raw.size(), 8 + n + 21);
}

TEST(SafetensorsRoundTrip, EmptyFileAndOffsetOrder) {
  EXPECT_TRUE(parse(make_safetensors("{}      ")).tensors.empty());
  // Listed in reverse; tensors() comes back in data-offset order (zero-byte tensor first on a tie).
  const std::string header = R"({"b":)" + entry("U8", "[2]", 2, 4) + R"(,"a":)" + entry("U8", "[2]", 0, 2) +
                             R"(,"z":)" + entry("U8", "[0]", 2, 2) + "}";
  const auto h = parse(make_safetensors(header, iota_bytes(4)));
  ASSERT_EQ(h.tensors.size(), 3u);
  EXPECT_EQ(h.tensors[0].name, "a");
  EXPECT_EQ(h.tensors[1].name, "z");
  EXPECT_EQ(h.tensors[2].name, "b");
}

TEST(SafetensorsRoundTrip, OverwritesAtomicallyAndLeavesNoTempFiles) {
  TempDir dir;
  SafetensorsWriter first;
  first.add("a", DType::U8, {1}, {7});
  first.write(dir / "x.safetensors");
  SafetensorsWriter second;
  second.add("b", DType::U8, {2}, {8, 9});
  second.write(dir / "x.safetensors");
  auto file = SafetensorsFile::open(dir / "x.safetensors");
  EXPECT_EQ(file->find("a"), nullptr);
  ASSERT_NE(file->find("b"), nullptr);
  EXPECT_EQ(file->find("b")->data[1], 9);
  EXPECT_EQ(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()), 1);
}

// ---- malformed headers ----

TEST(SafetensorsMalformed, ShorterThanEightBytes) {
  expect_error([] { parse({1, 2, 3}); }, "file is 3 bytes, shorter than the 8-byte header length field", kLabel);
}

TEST(SafetensorsMalformed, HeaderLongerThanFile) {
  std::vector<uint8_t> bytes;
  test::append_u64_le(bytes, 100);
  bytes.resize(18, '{');
  expect_error([&] { parse(bytes); },
               "header length 100 is larger than the file: expected at least 108 bytes, file has 18 in "
               "mem.safetensors; file truncated?",
               kLabel);
}

TEST(SafetensorsMalformed, HeaderLengthAbsurd) {
  std::vector<uint8_t> bytes;
  test::append_u64_le(bytes, 100'000'001);
  bytes.resize(64, ' ');
  expect_error([&] { parse(bytes); }, "header length 100000001 is absurd (limit 100000000 bytes)", kLabel);
  std::vector<uint8_t> max(8, 0xFF);  // must not wrap around when adding 8
  expect_error([&] { parse(max); }, "header length 18446744073709551615 is absurd", kLabel);
}

TEST(SafetensorsMalformed, InvalidJsonSaysWhere) {
  expect_header_error(R"({"a":})", {}, "invalid JSON in header at byte 6 of 6: parse error at line 1, column 6");
  expect_header_error("", {}, "invalid JSON in header at byte 1 of 0");
  // Raw input bytes in nlohmann's "last read" are escaped, so the message stays valid UTF-8.
  expect_header_error(std::string("{\"\xFF\":1}"), {},
                      "invalid JSON in header at byte 3 of 7: parse error at line 1, column 3: syntax error while "
                      "parsing object key - invalid string: ill-formed UTF-8 byte; last read: '\"\\xFF'");
  // nlohmann alone would stop at a NUL and accept this; the safetensors library rejects it.
  expect_header_error(std::string("{}\0\0{\"x", 7), {}, "invalid JSON in header at byte 3 of 7: NUL byte");
  expect_header_error("\xEF\xBB\xBF{}", {}, "invalid JSON in header at byte 1 of 5: UTF-8 byte-order mark");
  expect_header_error("{} x", {}, "invalid JSON in header at byte 4 of 4");
  // Found by the fuzzer: nlohmann reports this as out_of_range, not parse_error.
  expect_header_error(R"({"a":{"dtype":"U8","shape":[1E400],"data_offsets":[0,0]}})", {},
                      "invalid JSON in header: number overflow parsing '1E400'");
}

TEST(SafetensorsMalformed, HeaderNotAnObject) {
  expect_header_error("[1,2]", {}, "header is a JSON array, expected an object of tensor name");
  expect_header_error("\"x\"", {}, "header is a JSON string");
}

TEST(SafetensorsMalformed, EntryNotAnObject) {
  expect_header_error(R"({"t":5})", {}, "header entry is a JSON number, expected an object", "t");
  expect_header_error(R"({"t":[1]})", {}, "header entry is a JSON array", "t");
}

TEST(SafetensorsMalformed, MissingFields) {
  expect_header_error(R"({"t":{"shape":[1],"data_offsets":[0,1]}})", {1}, "header entry has no \"dtype\"", "t");
  expect_header_error(R"({"t":{"dtype":"U8","data_offsets":[0,1]}})", {1}, "header entry has no \"shape\"", "t");
  expect_header_error(R"({"t":{"dtype":"U8","shape":[1]}})", {1}, "header entry has no \"data_offsets\"", "t");
}

TEST(SafetensorsMalformed, WronglyTypedFields) {
  expect_header_error(R"({"t":{"dtype":3,"shape":[1],"data_offsets":[0,1]}})", {1},
                      "\"dtype\" is a JSON number, expected a string", "t");
  expect_header_error(R"({"t":{"dtype":"U8","shape":"1","data_offsets":[0,1]}})", {1},
                      "\"shape\" is a JSON string, expected an array of integers", "t");
  expect_header_error(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}})", {1},
                      "\"data_offsets\" is [0,1,2], expected [begin, end]", "t");
  expect_header_error(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":{"a":1}}})", {1},
                      "\"data_offsets\" is {\"a\":1}, expected [begin, end]", "t");
  expect_header_error(R"({"t":{"dtype":"U8","shape":[1],"data_offsets":[-1,0]}})", {1}, "\"data_offsets\" is [-1,0]",
                      "t");
}

TEST(SafetensorsMalformed, UnknownDtypeListsKnownOnes) {
  const auto bytes = make_safetensors(R"({"t":)" + entry("F4", "[2]", 0, 1) + "}", {0});
  const std::string message =
      expect_error([&] { parse(bytes); }, "unknown dtype \"F4\"; known: BOOL, U8, I8", kLabel, "t");
  EXPECT_NE(message.find("BF16"), std::string::npos);
  EXPECT_NE(message.find("F8_E4M3, F8_E5M2, F8_E8M0"), std::string::npos);
}

TEST(SafetensorsMalformed, BadShapeDims) {
  expect_header_error(R"({"t":)" + entry("U8", "[2,-1]", 0, 0) + "}", {},
                      "shape[1] is -1, expected a non-negative integer", "t");
  expect_header_error(R"({"t":)" + entry("U8", "[2.5]", 0, 0) + "}", {}, "shape[0] is 2.5, expected a non-negative",
                      "t");
  expect_header_error(R"({"t":)" + entry("U8", "[\"4\"]", 0, 0) + "}", {}, "shape[0] is \"4\"", "t");
  expect_header_error(R"({"t":)" + entry("U8", "[null]", 0, 0) + "}", {}, "shape[0] is null", "t");
}

TEST(SafetensorsMalformed, ShapeProductOverflow) {
  expect_header_error(R"({"t":)" + entry("U8", "[4294967296,4294967296]", 0, 0) + "}", {},
                      "shape [4294967296, 4294967296]: shape product overflows 64-bit element count", "t");
  expect_header_error(R"({"t":)" + entry("U8", "[18446744073709551615]", 0, 0) + "}", {},
                      "shape[0] is 18446744073709551615: shape product overflows", "t");
  // Fits as elements, not as bytes.
  expect_header_error(R"({"t":)" + entry("F64", "[4611686018427387904]", 0, 0) + "}", {},
                      "F64 [4611686018427387904]: shape product overflows 64-bit byte count", "t");
}

TEST(SafetensorsMalformed, BeginAfterEnd) {
  expect_header_error(R"({"t":)" + entry("U8", "[4]", 8, 4) + "}", iota_bytes(8),
                      "data_offsets [8, 4]: begin is after end", "t");
}

TEST(SafetensorsMalformed, EndBeyondDataSection) {
  const std::string header = R"({"t":)" + entry("F32", "[4]", 0, 16) + "}";
  expect_header_error(header, iota_bytes(8),
                      "data_offsets [0, 16] end beyond the 8-byte data section: file truncated? expected at least " +
                          std::to_string(8 + header.size() + 16) + " bytes, file has " +
                          std::to_string(8 + header.size() + 8),
                      "t");
}

TEST(SafetensorsMalformed, ByteSizeMismatch) {
  expect_header_error(R"({"t":)" + entry("F32", "[2]", 0, 6) + "}", iota_bytes(6),
                      "dtype/shape/byte-size mismatch: F32 [2] needs 8 bytes, data_offsets [0, 6] span 6", "t");
}

TEST(SafetensorsMalformed, OverlapNamesBothTensors) {
  const std::string header = R"({"a":)" + entry("U8", "[8]", 0, 8) + R"(,"b":)" + entry("U8", "[8]", 4, 12) + "}";
  expect_header_error(header, iota_bytes(12), "data_offsets [4, 12] overlap tensor a's [0, 8]", "b");
  // A zero-byte tensor inside another's span overlaps too (the Rust crate's InvalidOffset).
  const std::string inside = R"({"a":)" + entry("U8", "[8]", 0, 8) + R"(,"z":)" + entry("U8", "[0]", 4, 4) + "}";
  expect_header_error(inside, iota_bytes(8), "data_offsets [4, 4] overlap tensor a's [0, 8]", "z");
}

TEST(SafetensorsMalformed, GapsAreRejectedLikeTheRustCrate) {
  const std::string header = R"({"a":)" + entry("U8", "[4]", 0, 4) + R"(,"b":)" + entry("U8", "[4]", 8, 12) + "}";
  expect_header_error(header, iota_bytes(12),
                      "data_offsets [8, 12] leave a gap of 4 bytes after tensor a's [0, 4]; safetensors requires "
                      "contiguous tensor data",
                      "b");
  expect_header_error(R"({"a":)" + entry("U8", "[4]", 4, 8) + "}", iota_bytes(8),
                      "leave a gap of 4 bytes at the start of the data section", "a");
}

TEST(SafetensorsMalformed, TrailingBytesAreRejected) {
  expect_header_error(R"({"a":)" + entry("U8", "[4]", 0, 4) + "}", iota_bytes(6),
                      "data section is 6 bytes but the tensors cover only 4; 2 trailing bytes");
  expect_header_error("{}", {0}, "data section is 1 bytes but the tensors cover only 0");
}

TEST(SafetensorsMalformed, MetadataMustBeStrings) {
  expect_header_error(R"({"__metadata__":{"k":1}})", {}, "\"__metadata__\" value for key \"k\" is a JSON number");
  expect_header_error(R"({"__metadata__":[]})", {}, "\"__metadata__\" is a JSON array, expected an object");
  EXPECT_TRUE(parse(make_safetensors(R"({"__metadata__":null})")).metadata.empty());
}

TEST(SafetensorsMalformed, DuplicateKeysDoNotShadow) {
  const std::string dup = R"({"a":)" + entry("U8", "[2]", 0, 2) + R"(,"a":)" + entry("U8", "[2]", 0, 2) + "}";
  expect_header_error(dup, iota_bytes(2), "duplicate key \"a\" in the JSON header");
  expect_header_error(R"({"a":{"dtype":"U8","dtype":"I8","shape":[1],"data_offsets":[0,1]}})", {1},
                      "duplicate key \"dtype\" in the JSON header");
}

TEST(SafetensorsMalformed, DeepNestingIsRefused) {
  expect_header_error(R"({"__metadata__":)" + std::string(100, '[') + std::string(100, ']') + "}", {},
                      "JSON header nests deeper than 64 levels");
}

// ---- files ----

TEST(SafetensorsFileErrors, OpenFailuresNameThePath) {
  TempDir dir;
  const fs::path missing = dir / "missing.safetensors";
  expect_error([&] { SafetensorsFile::open(missing); }, "cannot open safetensors file: No such file or directory",
               missing.string());
  expect_error([&] { SafetensorsFile::open(dir.path()); }, "not a regular file", dir.path().string());
  const fs::path empty = dir / "empty.safetensors";
  test::write_bytes(empty, {});
  expect_error([&] { SafetensorsFile::open(empty); }, "file is 0 bytes, shorter than", empty.string());
  const fs::path bad = dir / "bad.safetensors";
  test::write_bytes(bad, make_safetensors(R"({"t":)" + entry("BF16", "[3]", 0, 6) + "}", iota_bytes(4)));
  expect_error([&] { SafetensorsFile::open(bad); }, "file truncated?", bad.string(), "t");
}

// ---- checkpoints ----

void write_shard(const fs::path& path, const std::vector<std::pair<std::string, uint8_t>>& tensors) {
  SafetensorsWriter writer;
  for (const auto& [name, value] : tensors) writer.add(name, DType::U8, {2}, {value, static_cast<uint8_t>(value + 1)});
  writer.write(path);
}

TEST(SafetensorsCheckpoint, ShardedViaIndex) {
  TempDir dir;
  write_shard(dir / "model-00001-of-00002.safetensors", {{"b", 10}, {"a", 20}});
  write_shard(dir / "model-00002-of-00002.safetensors", {{"c", 30}});
  write_shard(dir / "consolidated.safetensors", {{"a", 99}});  // not in the index: ignored
  write_safetensors_index(
      dir.path(), {{"model-00001-of-00002.safetensors", {"b", "a"}}, {"model-00002-of-00002.safetensors", {"c"}}}, 6);

  const auto index = nlohmann::json::parse(test::read_bytes(dir / "model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"], 6);
  EXPECT_EQ(index["weight_map"].dump(),
            R"({"a":"model-00001-of-00002.safetensors","b":"model-00001-of-00002.safetensors",)"
            R"("c":"model-00002-of-00002.safetensors"})");

  const Checkpoint ckpt = Checkpoint::open(dir.path());
  EXPECT_EQ(ckpt.directory(), dir.path());
  ASSERT_EQ(ckpt.files().size(), 2u);
  const auto tensors = ckpt.tensors();
  ASSERT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors[0]->name, "a");
  EXPECT_EQ(tensors[1]->name, "b");
  EXPECT_EQ(tensors[2]->name, "c");
  EXPECT_EQ(ckpt.get("a").data[0], 20);
  EXPECT_EQ(ckpt.get("c").data[1], 31);
  EXPECT_EQ(ckpt.get("c").file, (dir / "model-00002-of-00002.safetensors").string());
  EXPECT_EQ(ckpt.file_bytes(), fs::file_size(dir / "model-00001-of-00002.safetensors") +
                                   fs::file_size(dir / "model-00002-of-00002.safetensors"));
  EXPECT_EQ(ckpt.find("nope"), nullptr);
  expect_error([&] { ckpt.get("nope"); }, "tensor nope: not found in the checkpoint (3 tensors)", dir.path().string(),
               "nope");
}

TEST(SafetensorsCheckpoint, SingleFileAndPlainDirectory) {
  TempDir dir;
  write_shard(dir / "model.safetensors", {{"w", 1}});
  write_shard(dir / "other.safetensors", {{"x", 2}});  // model.safetensors wins; this one is ignored
  const Checkpoint by_dir = Checkpoint::open(dir.path());
  ASSERT_EQ(by_dir.tensors().size(), 1u);
  EXPECT_EQ(by_dir.get("w").data[0], 1);
  const Checkpoint by_file = Checkpoint::open(dir / "other.safetensors");
  EXPECT_EQ(by_file.directory(), dir.path());
  EXPECT_EQ(by_file.get("x").data[0], 2);
  EXPECT_EQ(by_file.find("w"), nullptr);
}

TEST(SafetensorsCheckpoint, AllFilesWhenNoIndexAndNoModelFile) {
  TempDir dir;
  write_shard(dir / "part-b.safetensors", {{"y", 5}});
  write_shard(dir / "part-a.safetensors", {{"x", 4}});
  const Checkpoint ckpt = Checkpoint::open(dir.path());
  ASSERT_EQ(ckpt.files().size(), 2u);
  EXPECT_EQ(ckpt.files()[0]->path(), dir / "part-a.safetensors");  // sorted
  EXPECT_EQ(ckpt.get("y").data[0], 5);
  write_shard(dir / "part-c.safetensors", {{"x", 6}});
  expect_error([&] { Checkpoint::open(dir.path()); },
               "tensor x: present in two files: " + (dir / "part-a.safetensors").string() + " and " +
                   (dir / "part-c.safetensors").string(),
               dir.path().string(), "x");
}

TEST(SafetensorsCheckpoint, MissingOrEmpty) {
  TempDir dir;
  expect_error([&] { Checkpoint::open(dir / "nope"); }, "cannot open checkpoint: no such file or directory",
               (dir / "nope").string());
  expect_error([&] { Checkpoint::open(dir.path()); },
               "no model.safetensors.index.json, model.safetensors or *.safetensors file in the directory",
               dir.path().string());
}

TEST(SafetensorsCheckpoint, IndexListsMissingShard) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {{"a", 1}});
  write_safetensors_index(dir.path(), {{"s1.safetensors", {"a"}}, {"s2.safetensors", {"b"}}}, 4);
  expect_error([&] { Checkpoint::open(dir.path()); }, "shard s2.safetensors listed in the index does not exist",
               (dir / "model.safetensors.index.json").string());
}

TEST(SafetensorsCheckpoint, IndexNameNotInItsShard) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {{"a", 1}});
  write_shard(dir / "s2.safetensors", {{"b", 2}});
  write_safetensors_index(dir.path(), {{"s1.safetensors", {"a", "b"}}, {"s2.safetensors", {}}}, 4);
  // s2 is not named by the index, so b is nowhere that was opened.
  expect_error([&] { Checkpoint::open(dir.path()); },
               "listed in the index under " + (dir / "s1.safetensors").string() +
                   ", but that shard has no such tensor (no shard has it)",
               (dir / "model.safetensors.index.json").string(), "b");
  write_safetensors_index(dir.path(), {{"s1.safetensors", {"a"}}, {"s2.safetensors", {"ghost"}}}, 4);
  expect_error([&] { Checkpoint::open(dir.path()); }, "but that shard has no such tensor",
               (dir / "model.safetensors.index.json").string(), "ghost");
}

TEST(SafetensorsCheckpoint, ShardTensorAbsentFromIndex) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {{"a", 1}, {"extra", 3}});
  write_safetensors_index(dir.path(), {{"s1.safetensors", {"a"}}}, 2);
  expect_error([&] { Checkpoint::open(dir.path()); },
               "present in shard " + (dir / "s1.safetensors").string() + " but absent from the index",
               (dir / "model.safetensors.index.json").string(), "extra");
}

TEST(SafetensorsCheckpoint, TensorInTwoShards) {
  TempDir dir;
  write_shard(dir / "s1.safetensors", {{"a", 1}});
  write_shard(dir / "s2.safetensors", {{"a", 2}, {"b", 3}});
  write_safetensors_index(dir.path(), {{"s1.safetensors", {"a"}}, {"s2.safetensors", {"b"}}}, 6);
  expect_error(
      [&] { Checkpoint::open(dir.path()); },
      "present in two files: " + (dir / "s1.safetensors").string() + " and " + (dir / "s2.safetensors").string(),
      dir.path().string(), "a");
}

TEST(SafetensorsCheckpoint, BadIndexFiles) {
  TempDir dir;
  const fs::path index = dir / "model.safetensors.index.json";
  const std::string label = index.string();
  auto write_index = [&](const std::string& text) { test::write_bytes(index, {text.begin(), text.end()}); };
  write_index(R"({"weight_map": {"a": "s1.safetensors",}})");
  expect_error([&] { Checkpoint::open(dir.path()); }, "invalid JSON in index at byte 39 of 40", label);
  write_index(R"({"metadata": {}})");
  expect_error([&] { Checkpoint::open(dir.path()); }, "expected an object with a \"weight_map\" object", label);
  write_index(R"({"weight_map": {}})");
  expect_error([&] { Checkpoint::open(dir.path()); }, "\"weight_map\" is empty", label);
  write_index(R"({"weight_map": {"a": 3}})");
  expect_error([&] { Checkpoint::open(dir.path()); }, "weight_map value is a JSON number", label, "a");
  write_index(R"({"weight_map": {"a": "../s1.safetensors"}})");
  expect_error([&] { Checkpoint::open(dir.path()); }, "expected a file name inside the checkpoint directory", label,
               "a");
  write_index(R"({"weight_map": {"a": "s1.safetensors", "a": "s2.safetensors"}})");
  expect_error([&] { Checkpoint::open(dir.path()); }, "duplicate key \"a\" in the JSON index", label);
}

// ---- writer misuse ----

TEST(SafetensorsWriterErrors, RejectsBadInput) {
  SafetensorsWriter writer;
  writer.add("a", DType::U8, {1}, {1});
  expect_error([&] { writer.add("a", DType::U8, {1}, {1}); }, "added twice to the same safetensors file", "", "a");
  expect_error(
      [&] {
        writer.add("b", DType::BF16, {2, 2}, iota_bytes(7));
      },
      "BF16 [2, 2] needs 4 x 2 bytes, got 7", "", "b");
  expect_error([&] { writer.add("c", DType::U8, {-1}, {}); }, "invalid shape: dimension -1", "", "c");
  expect_error([&] { writer.add("__metadata__", DType::U8, {1}, {1}); }, "\"__metadata__\" is reserved", "",
               "__metadata__");
  expect_error([&] { writer.add("\xFF", DType::U8, {1}, {1}); }, "tensor name is not valid UTF-8", "", "\xFF");
  EXPECT_EQ(writer.names(), std::vector<std::string>{"a"});
}

TEST(SafetensorsWriterErrors, UnwritableDirectoryNamesPathAndLeavesNothing) {
  TempDir dir;
  const fs::path target = dir / "no-such-dir" / "x.safetensors";
  SafetensorsWriter writer;
  writer.add("a", DType::U8, {1}, {1});
  expect_error([&] { writer.write(target); }, "No such file or directory", target.string());
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

TEST(SafetensorsWriterErrors, IndexNameInTwoShards) {
  TempDir dir;
  expect_error(
      [&] {
        write_safetensors_index(dir.path(), {{"s1", {"a"}}, {"s2", {"a"}}}, 2);
      },
      "listed in two shards: s1 and s2", (dir / "model.safetensors.index.json").string(), "a");
}

}  // namespace
}  // namespace adallm::io
