// The adallm binary end to end: inspect on every fixture and on a Qwen3-8B-shaped synthetic checkpoint,
// quantize bit-identical to the independent PyTorch reference of ModelOpt's algorithm (committed fixtures),
// and every malformed input ending in one clear line on stderr and exit code 1, never a crash.
#include <gtest/gtest.h>


#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/float_codecs.h"
#include "io/safetensors.h"
#include "model/synthetic.h"
#include "cli/cli_runner.h"
#include "test_util.h"

namespace adallm {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using adallm::test::TempDir;

using test::quote;
using test::Result;
using test::run;
using test::slurp;

// A failure is one line "error: ..." and exit code 1.
void expect_clean_failure(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

const fs::path kFixtures = adallm::test::fixtures_dir();

TEST(CliInspect, EveryFixture) {
  for (const char* arch : {"llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"}) {
    for (const char* variant : {"bf16", "nvfp4-modelopt", "nvfp4-ct"}) {
      SCOPED_TRACE(std::string(arch) + "/" + variant);
      const Result r = run("inspect --json " + quote(kFixtures / arch / variant));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const json j = json::parse(r.out);
      const std::string format = j["quantization"]["format"];
      EXPECT_EQ(format, std::string(variant) == "bf16" ? "none"
                        : std::string(variant) == "nvfp4-ct" ? "compressed-tensors" : "modelopt");
      EXPECT_EQ(j["architecture"]["hidden_size"], 64);
      EXPECT_GT(j["footprint"]["decode_bytes_per_token"].get<int64_t>(), 0);
      const Result text = run("inspect " + quote(kFixtures / arch / variant));
      ASSERT_EQ(text.exit_code, 0) << text.err;
      EXPECT_NE(text.out.find("decode reads"), std::string::npos);
    }
  }
}

TEST(CliInspect, Qwen3_8BShapedSyntheticCheckpoint) {
  TempDir dir;
  model::write_synthetic_checkpoint(dir.path(), model::preset_config("qwen3-8b"),
                                    model::SyntheticLayout::nvfp4_modelopt);
  const Result r = run("inspect --json " + quote(dir.path()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  EXPECT_EQ(j["architecture"]["num_hidden_layers"], 36);
  EXPECT_EQ(j["quantization"]["quant_algo"], "NVFP4");
  EXPECT_EQ(j["quantization"]["kv_cache"], "fp8_e4m3");
  EXPECT_EQ(j["footprint"]["storage"]["NVFP4"]["parameters"], 6945767424LL);
  EXPECT_EQ(j["footprint"]["kv_bytes_per_token"]["fp8"], 73728);
  const double gb = j["footprint"]["decode_bytes_per_token"].get<double>() / 1e9;
  EXPECT_NEAR(gb, 5.15, 0.01);
  const Result text = run("inspect " + quote(dir.path()));
  ASSERT_EQ(text.exit_code, 0) << text.err;
  EXPECT_NE(text.out.find("36 layers, hidden 4096"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("decode reads  5.15 GB per token"), std::string::npos) << text.out;
}

// Copies a fixture to a temporary directory for a test to break.
fs::path copy_fixture(const TempDir& tmp, const std::string& arch, const std::string& variant) {
  static int copies = 0;
  const fs::path dst = tmp / (arch + "-" + variant + "-" + std::to_string(copies++));
  fs::copy(kFixtures / arch / variant, dst, fs::copy_options::recursive);
  return dst;
}

TEST(CliInspect, MalformedInputsFailCleanly) {
  TempDir tmp;
  expect_clean_failure(run("inspect " + quote(tmp / "nope")), "model directory not found");

  const fs::path no_config = copy_fixture(tmp, "qwen3", "bf16");
  fs::remove(no_config / "config.json");
  expect_clean_failure(run("inspect " + quote(no_config)), "config.json");

  const fs::path bad_json = copy_fixture(tmp, "llama", "bf16");
  std::ofstream(bad_json / "config.json") << "{\"model_type\": \"llama\", ";
  expect_clean_failure(run("inspect " + quote(bad_json)), "config.json");

  const fs::path unknown = copy_fixture(tmp, "llama", "nvfp4-modelopt");
  json config = json::parse(slurp(unknown / "config.json"));
  config["model_type"] = "mamba";
  std::ofstream(unknown / "config.json") << config.dump();
  expect_clean_failure(run("inspect " + quote(unknown)), "mamba");

  const fs::path truncated = copy_fixture(tmp, "qwen3", "nvfp4-modelopt");
  fs::resize_file(truncated / "model.safetensors", fs::file_size(truncated / "model.safetensors") - 100);
  expect_clean_failure(run("inspect " + quote(truncated)), "model.safetensors");

  const fs::path garbage = copy_fixture(tmp, "gemma3_text", "bf16");
  std::ofstream(garbage / "model.safetensors", std::ios::binary) << "\xff\xff\xff\xff\xff\xff\xff\x7fnot json";
  expect_clean_failure(run("inspect " + quote(garbage)), "model.safetensors");

  const fs::path algo = copy_fixture(tmp, "qwen3", "nvfp4-modelopt");
  json hq = json::parse(slurp(algo / "hf_quant_config.json"));
  hq["quantization"]["quant_algo"] = "FP8";
  std::ofstream(algo / "hf_quant_config.json") << hq.dump();
  expect_clean_failure(run("inspect " + quote(algo)), "FP8");

  const fs::path wrong_arch = copy_fixture(tmp, "qwen3", "bf16");
  config = json::parse(slurp(wrong_arch / "config.json"));
  config["model_type"] = "llama";
  std::ofstream(wrong_arch / "config.json") << config.dump();
  expect_clean_failure(run("inspect " + quote(wrong_arch)), "not used by the llama architecture");
}

// Byte equality of every tensor present in `expected` (the PyTorch reference) with `actual`.
void expect_same_tensors(const fs::path& expected_dir, const fs::path& actual_dir, const std::vector<std::string>& suffixes) {
  const io::Checkpoint expected = io::Checkpoint::open(expected_dir);
  const io::Checkpoint actual = io::Checkpoint::open(actual_dir);
  int compared = 0;
  for (const io::TensorInfo* e : expected.tensors()) {
    const bool wanted = std::any_of(suffixes.begin(), suffixes.end(), [&](const std::string& s) { return e->name.ends_with(s); });
    if (!wanted) continue;
    const io::TensorInfo* a = actual.find(e->name);
    ASSERT_NE(a, nullptr) << e->name;
    ASSERT_EQ(a->dtype, e->dtype) << e->name;
    ASSERT_EQ(a->numel(), e->numel()) << e->name;
    ASSERT_EQ(a->nbytes, e->nbytes) << e->name;
    size_t mismatches = 0;
    for (uint64_t i = 0; i < e->nbytes; ++i) mismatches += a->data[i] != e->data[i];
    EXPECT_EQ(mismatches, 0u) << e->name << ": " << mismatches << " of " << e->nbytes << " bytes differ";
    ++compared;
  }
  EXPECT_GT(compared, 0);
}

TEST(CliQuantize, ModelOptBitIdenticalToTheReferenceOnEveryFixture) {
  for (const char* arch : {"llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"}) {
    SCOPED_TRACE(arch);
    TempDir tmp;
    const Result r = run("quantize -q " + quote(kFixtures / arch / "bf16") + " " + quote(tmp / "out"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_same_tensors(kFixtures / arch / "nvfp4-modelopt", tmp / "out", {".weight", ".weight_scale", ".weight_scale_2"});
    const Result back = run("inspect --json " + quote(tmp / "out"));
    ASSERT_EQ(back.exit_code, 0) << back.err;
    EXPECT_EQ(json::parse(back.out)["quantization"]["quant_algo"], "W4A16_NVFP4");
  }
}

TEST(CliQuantize, CompressedTensorsMatchesTheReferenceOnEveryFixture) {
  for (const char* arch : {"llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"}) {
    SCOPED_TRACE(arch);
    TempDir tmp;
    const Result r = run("quantize -q --format compressed-tensors " + quote(kFixtures / arch / "bf16") + " " +
                         quote(tmp / "out"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    expect_same_tensors(kFixtures / arch / "nvfp4-ct", tmp / "out",
                        {".weight_packed", ".weight_scale", ".weight_global_scale"});
    const Result back = run("inspect --json " + quote(tmp / "out"));
    ASSERT_EQ(back.exit_code, 0) << back.err;
    EXPECT_EQ(json::parse(back.out)["quantization"]["format"], "compressed-tensors");
  }
}

TEST(CliQuantize, ShardsExcludesAndCopiesFiles) {
  TempDir tmp;
  const fs::path src = copy_fixture(tmp, "qwen3", "bf16");
  std::ofstream(src / "tokenizer_config.json") << "{}";
  const Result r = run("quantize -q --max-shard-size 20kB --exclude 'model.layers.1.*' " + quote(src) + " " +
                       quote(tmp / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::exists(tmp / "out" / "model.safetensors.index.json"));
  EXPECT_TRUE(fs::exists(tmp / "out" / "tokenizer_config.json"));
  EXPECT_FALSE(fs::exists(tmp / "out.partial"));
  const io::Checkpoint out = io::Checkpoint::open(tmp / "out");
  EXPECT_GT(out.files().size(), 1u);
  EXPECT_EQ(out.get("model.layers.1.self_attn.q_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(out.get("model.layers.0.self_attn.q_proj.weight").dtype, DType::U8);
  const json hq = json::parse(slurp(tmp / "out" / "hf_quant_config.json"));
  EXPECT_EQ(hq["quantization"]["exclude_modules"], json({"lm_head", "model.layers.1.*"}));
}

// An all-zero Linear has no usable scale (amax 0): it stays BF16, is named in the exclude list, and the
// result loads back without warnings.
TEST(CliQuantize, AllZeroGroupStaysDense) {
  TempDir tmp;
  const fs::path src = copy_fixture(tmp, "qwen3", "bf16");
  {
    const io::Checkpoint original = io::Checkpoint::open(kFixtures / "qwen3" / "bf16");
    io::SafetensorsWriter writer;
    for (const io::TensorInfo* t : original.tensors()) {
      std::vector<uint8_t> bytes(t->data, t->data + t->nbytes);
      if (t->name.starts_with("model.layers.1.mlp.") && !t->name.ends_with("down_proj.weight")) {
        std::fill(bytes.begin(), bytes.end(), 0);  // gate_proj and up_proj: one fused group
      }
      writer.add(t->name, t->dtype, t->shape, std::move(bytes));
    }
    writer.write(src / "model.safetensors");
  }
  const Result r = run("quantize -q " + quote(src) + " " + quote(tmp / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("model.layers.1.mlp.gate_proj is all zeros: kept dense"), std::string::npos) << r.err;
  const io::Checkpoint out = io::Checkpoint::open(tmp / "out");
  EXPECT_EQ(out.get("model.layers.1.mlp.up_proj.weight").dtype, DType::BF16);
  EXPECT_EQ(out.get("model.layers.1.mlp.down_proj.weight").dtype, DType::U8);
  const Result back = run("inspect --json " + quote(tmp / "out"));
  ASSERT_EQ(back.exit_code, 0) << back.err;
  EXPECT_TRUE(json::parse(back.out)["warnings"].empty()) << back.out;
}

// An FP16 checkpoint quantizes like its BF16 twin holding the same values: the output bytes are equal.
// (Fixture values that fp16 cannot hold exactly, tiny ones, are zeroed in both twins.)
TEST(CliQuantize, Fp16CheckpointGivesTheSameBytesAsItsBf16Twin) {
  TempDir tmp;
  const fs::path bf16_dir = copy_fixture(tmp, "llama", "bf16");
  const fs::path f16_dir = copy_fixture(tmp, "llama", "bf16");
  {
    const io::Checkpoint original = io::Checkpoint::open(kFixtures / "llama" / "bf16");
    io::SafetensorsWriter bf16_writer;
    io::SafetensorsWriter f16_writer;
    for (const io::TensorInfo* t : original.tensors()) {
      ASSERT_EQ(t->dtype, DType::BF16) << t->name;
      std::vector<uint8_t> bf16_bytes(t->nbytes);
      std::vector<uint8_t> f16_bytes(t->nbytes);
      for (int64_t i = 0; i < t->numel(); ++i) {
        uint16_t h;
        std::memcpy(&h, t->data + 2 * i, 2);
        uint16_t f = f32_to_f16(bf16_to_f32(h));
        if (f16_to_f32(f) != bf16_to_f32(h)) h = f = 0;
        std::memcpy(bf16_bytes.data() + 2 * i, &h, 2);
        std::memcpy(f16_bytes.data() + 2 * i, &f, 2);
      }
      bf16_writer.add(t->name, DType::BF16, t->shape, std::move(bf16_bytes));
      f16_writer.add(t->name, DType::F16, t->shape, std::move(f16_bytes));
    }
    bf16_writer.write(bf16_dir / "model.safetensors");
    f16_writer.write(f16_dir / "model.safetensors");
  }
  for (const fs::path& dir : {bf16_dir, f16_dir}) {
    const Result r = run("quantize -q " + quote(dir) + " " + quote(dir.string() + "-nvfp4"));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  expect_same_tensors(bf16_dir.string() + "-nvfp4", f16_dir.string() + "-nvfp4",
                      {"_proj.weight", ".weight_scale", ".weight_scale_2"});
}

TEST(CliQuantize, RefusesWhatItCannotDoCleanly) {
  TempDir tmp;
  expect_clean_failure(run("quantize " + quote(kFixtures / "qwen3" / "nvfp4-modelopt") + " " + quote(tmp / "a")),
                       "already quantized");
  fs::create_directories(tmp / "full");
  std::ofstream(tmp / "full" / "x") << "x";
  expect_clean_failure(run("quantize " + quote(kFixtures / "qwen3" / "bf16") + " " + quote(tmp / "full")),
                       "destination exists and is not empty");
  expect_clean_failure(run("quantize --lm-head " + quote(kFixtures / "gemma3_text" / "bf16") + " " + quote(tmp / "b")),
                       "tied to the embedding table");
  expect_clean_failure(run("quantize --format gguf " + quote(kFixtures / "qwen3" / "bf16") + " " + quote(tmp / "c")),
                       "--format \"gguf\" is unknown");
  EXPECT_FALSE(fs::exists(tmp / "a"));
  EXPECT_FALSE(fs::exists(tmp / "b"));

  // Found only after the output directory exists: the partial output must not stay behind.
  json config = model::preset_config("qwen3-8b");
  config.update(json{{"hidden_size", 40}, {"intermediate_size", 48}, {"num_hidden_layers", 1},
                     {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 16}, {"vocab_size", 8}});
  model::write_synthetic_checkpoint(tmp / "odd", config, model::SyntheticLayout::bf16);
  expect_clean_failure(run("quantize " + quote(tmp / "odd") + " " + quote(tmp / "d")),
                       "model.layers.0.self_attn.q_proj: in_features 40 is not a multiple of 16");
  EXPECT_FALSE(fs::exists(tmp / "d"));
  EXPECT_FALSE(fs::exists(tmp / "d.partial"));
}

TEST(CliQuantize, LmHeadFlagQuantizesAnUntiedHead) {
  TempDir tmp;
  const Result r = run("quantize -q --lm-head " + quote(kFixtures / "llama" / "bf16") + " " + quote(tmp / "out"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const io::Checkpoint out = io::Checkpoint::open(tmp / "out");
  EXPECT_EQ(out.get("lm_head.weight").dtype, DType::U8);
  EXPECT_NE(out.find("lm_head.weight_scale_2"), nullptr);
}

}  // namespace
}  // namespace adallm
