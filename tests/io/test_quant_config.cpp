// Tests of io/quant_config: ModelOpt (hf_quant_config.json, config.json quantization_config, both) and
// compressed-tensors checkpoint configs from tests/data/configs/quant, the exclusion rules for module
// names (fnmatch, "re:" regexes, Gemma3 multimodal prefixes), and one test per refused config.
#include "io/quant_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "test_util.h"

namespace adallm::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

const std::string kSource = "mem/config.json";
constexpr const char* kNvfp4Hint = "AdaLLM runs NVFP4 checkpoints";
constexpr const char* kKvHint = "AdaLLM's KV cache is FP8 (E4M3) or unquantized";

fs::path quant_dir(const std::string& name) { return fs::path(ADALLM_TEST_DIR) / "data" / "configs" / "quant" / name; }

json read(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << "missing test data " << path;
  return json::parse(in);
}

QuantConfig load(const std::string& name) {
  const fs::path dir = quant_dir(name);
  const json config = fs::exists(dir / "config.json") ? read(dir / "config.json") : json::object();
  return load_quant_config(dir, config);
}

// The quantization_config of a test checkpoint's config.json, for variations.
json quantization_config_of(const std::string& name) { return read(quant_dir(name) / "config.json")["quantization_config"]; }

template <typename Fn>
std::string expect_error(Fn&& fn, const std::string& substring, const std::string& file = kSource,
                         const std::string& hint = "") {
  return test::expect_error_in(std::forward<Fn>(fn), substring, file, hint);
}

void expect_config_error(const json& quantization_config, const std::string& substring, const std::string& hint = "") {
  expect_error([&] { parse_quantization_config(quantization_config, kSource); }, substring, kSource, hint);
}

void expect_hf_error(const json& hf_quant_config, const std::string& substring, const std::string& hint = "") {
  expect_error([&] { parse_modelopt_hf_quant_config(hf_quant_config, kSource); }, substring, kSource, hint);
}

// ---- ModelOpt -----------------------------------------------------------------------------------------------

TEST(QuantConfig, ModelOpt023OnlyHfQuantConfig) {
  const QuantConfig q = load("modelopt-0.23");
  EXPECT_EQ(q.format, QuantFormat::modelopt);
  EXPECT_TRUE(q.quantized());
  EXPECT_EQ(q.quant_algo, "NVFP4");
  EXPECT_TRUE(q.activations_quantized);
  EXPECT_EQ(q.group_size, 16);
  EXPECT_EQ(q.kv_cache, KvCacheQuant::none);
  EXPECT_EQ(q.producer, "modelopt 0.23.0");
  EXPECT_EQ(q.source, (quant_dir("modelopt-0.23") / "hf_quant_config.json").string());
  EXPECT_EQ(q.exclude_modules.size(), 7u);
  EXPECT_EQ(q.exclude_modules[1], "model.layers.0.self_attn*");
}

TEST(QuantConfig, ModelOptWildcardExclusion) {
  const QuantConfig q = load("modelopt-0.23");
  EXPECT_TRUE(q.is_excluded("lm_head"));
  EXPECT_TRUE(q.is_excluded("model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(q.is_excluded("model.layers.0.self_attn"));  // "foo*" matches "foo"
  EXPECT_FALSE(q.is_excluded("model.layers.2.self_attn.q_proj"));
  EXPECT_TRUE(q.is_excluded("model.layers.1.mlp.experts.3.up_proj"));
  // fnmatch's '*' crosses the digit boundary; vLLM's substring fallback excludes layer 10 as well.
  EXPECT_TRUE(q.is_excluded("model.layers.10.self_attn.o_proj"));
  EXPECT_TRUE(q.is_excluded("model.layers.7.mlp.gate"));
  EXPECT_FALSE(q.is_excluded("model.layers.7.mlp.experts.0.gate_proj"));
  EXPECT_TRUE(q.is_excluded("model.layers.45.post_attention_layernorm"));  // '?' is one character
  EXPECT_FALSE(q.is_excluded("model.layers.4.post_attention_layernorm"));
  EXPECT_TRUE(q.is_excluded("model.layers.3.input_layernorm"));  // [23]
  EXPECT_FALSE(q.is_excluded("model.layers.4.input_layernorm"));
  EXPECT_TRUE(q.is_excluded("model.norm"));
  EXPECT_FALSE(q.is_excluded("model.embed_tokens"));
}

TEST(QuantConfig, GemmaMultimodalPrefixesMatchEitherWay) {
  const QuantConfig q = load("modelopt-0.23");  // patterns written for the text model
  EXPECT_TRUE(q.is_excluded("model.language_model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(q.is_excluded("language_model.model.layers.0.self_attn.q_proj"));
  EXPECT_TRUE(q.is_excluded("language_model.lm_head"));
  EXPECT_FALSE(q.is_excluded("model.language_model.layers.2.self_attn.o_proj"));
  QuantConfig mm;  // patterns written for the multimodal layouts, modules named for the text model
  mm.format = QuantFormat::modelopt;
  mm.exclude_modules = {"model.language_model.layers.*.mlp.down_proj", "language_model.lm_head",
                        "language_model.model.layers.1.self_attn*"};
  EXPECT_TRUE(mm.is_excluded("model.layers.4.mlp.down_proj"));
  EXPECT_TRUE(mm.is_excluded("language_model.model.layers.4.mlp.down_proj"));
  EXPECT_TRUE(mm.is_excluded("lm_head"));
  EXPECT_TRUE(mm.is_excluded("model.language_model.layers.1.self_attn.k_proj"));
  EXPECT_FALSE(mm.is_excluded("model.language_model.layers.4.mlp.up_proj"));
  EXPECT_FALSE(mm.is_excluded("model.vision_tower.vision_model.encoder.layers.0.mlp.fc1"));
}

TEST(QuantConfig, ModelOpt031BothFilesAgree) {
  const QuantConfig q = load("modelopt-0.31");
  EXPECT_EQ(q.source, (quant_dir("modelopt-0.31") / "hf_quant_config.json").string());  // preferred
  EXPECT_EQ(q.quant_algo, "NVFP4");
  EXPECT_EQ(q.kv_cache, KvCacheQuant::fp8_e4m3);
  EXPECT_EQ(q.producer, "modelopt 0.31.0");
  EXPECT_EQ(q.exclude_modules, std::vector<std::string>{"lm_head"});

  const QuantConfig c = parse_quantization_config(quantization_config_of("modelopt-0.31"), kSource);
  EXPECT_EQ(c.format, QuantFormat::modelopt);
  EXPECT_EQ(c.quant_algo, "NVFP4");
  EXPECT_TRUE(c.activations_quantized);
  EXPECT_EQ(c.kv_cache, KvCacheQuant::fp8_e4m3);  // kv_cache_scheme {num_bits 8, type float}
  EXPECT_EQ(c.exclude_modules, std::vector<std::string>{"lm_head"});
  EXPECT_EQ(c.producer, "modelopt 0.31.0");
  EXPECT_EQ(c.source, kSource);
  EXPECT_TRUE(c.is_excluded("lm_head"));
  EXPECT_FALSE(c.is_excluded("model.layers.0.mlp.down_proj"));
}

TEST(QuantConfig, ModelOptFilesDisagree) {
  const fs::path dir = quant_dir("modelopt-conflict");
  expect_error([&] { load("modelopt-conflict"); },
               "hf_quant_config.json gives quant_algo \"NVFP4\" but config.json quantization_config gives "
               "\"W4A16_NVFP4\"",
               dir.string());
}

TEST(QuantConfig, ModelOptW4A16ConfigJsonOnly) {
  const QuantConfig q = load("modelopt-w4a16-config-only");
  EXPECT_EQ(q.format, QuantFormat::modelopt);
  EXPECT_EQ(q.quant_algo, "W4A16_NVFP4");  // written "w4a16_nvfp4"; upper-cased as vLLM does
  EXPECT_FALSE(q.activations_quantized);
  EXPECT_EQ(q.kv_cache, KvCacheQuant::none);
  EXPECT_EQ(q.producer, "modelopt 0.35.0");
  EXPECT_EQ(q.source, (quant_dir("modelopt-w4a16-config-only") / "config.json").string());
  EXPECT_TRUE(q.is_excluded("model.layers.31.mlp.down_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.3.mlp.down_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.31.self_attn.q_proj"));
}

TEST(QuantConfig, ModelOptVariants) {
  json legacy = {{"producer", {{"name", "modelopt"}, {"version", "0.29.0"}}},
                 {"quantization", {{"quant_algo", "nvfp4"}, {"kv_cache_quant_algo", "fp8"}, {"group_size", 16},
                                   {"exclude_modules", json::array({"lm_head"})}}}};
  QuantConfig q = parse_modelopt_hf_quant_config(legacy, kSource);
  EXPECT_EQ(q.quant_algo, "NVFP4");
  EXPECT_EQ(q.kv_cache, KvCacheQuant::fp8_e4m3);
  EXPECT_EQ(q.source, kSource);
  legacy["quantization"].erase("group_size");
  legacy["quantization"]["kv_cache_quant_algo"] = nullptr;
  q = parse_modelopt_hf_quant_config(legacy, kSource);
  EXPECT_EQ(q.group_size, 16);
  EXPECT_EQ(q.kv_cache, KvCacheQuant::none);
  // quant_method "modelopt_fp4" and the legacy object nested in config.json are both ModelOpt.
  const json nested = {{"quant_method", "modelopt_fp4"}, {"quantization", legacy["quantization"]}};
  EXPECT_EQ(parse_quantization_config(nested, kSource).quant_algo, "NVFP4");
}

// ---- compressed-tensors --------------------------------------------------------------------------------------

TEST(QuantConfig, CompressedTensorsNvfp4) {
  const QuantConfig q = load("ct-nvfp4-qwen3-30b-a3b");
  EXPECT_EQ(q.format, QuantFormat::compressed_tensors);
  EXPECT_EQ(q.quant_algo, "NVFP4");
  EXPECT_TRUE(q.activations_quantized);
  EXPECT_EQ(q.group_size, 16);
  EXPECT_EQ(q.kv_cache, KvCacheQuant::none);
  EXPECT_EQ(q.producer, "compressed-tensors 0.12.2");
  EXPECT_EQ(q.source, (quant_dir("ct-nvfp4-qwen3-30b-a3b") / "config.json").string());
  EXPECT_EQ(q.exclude_modules, (std::vector<std::string>{"re:.*lm_head", "re:.*mlp.gate$"}));
  EXPECT_TRUE(q.is_excluded("lm_head"));
  EXPECT_TRUE(q.is_excluded("model.layers.3.mlp.gate"));
  EXPECT_FALSE(q.is_excluded("model.layers.3.mlp.gate_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.3.mlp.experts.0.gate_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.3.self_attn.q_proj"));
}

TEST(QuantConfig, CompressedTensorsNvfp4A16) {
  const QuantConfig q = load("ct-nvfp4a16-llama-3.1-8b");
  EXPECT_EQ(q.format, QuantFormat::compressed_tensors);
  EXPECT_EQ(q.quant_algo, "W4A16_NVFP4");
  EXPECT_FALSE(q.activations_quantized);
  EXPECT_EQ(q.kv_cache, KvCacheQuant::fp8_e4m3);
  EXPECT_TRUE(q.is_excluded("lm_head"));
  EXPECT_FALSE(q.is_excluded("model.layers.0.mlp.gate_proj"));
}

TEST(QuantConfig, CompressedTensorsIgnoreMatching) {
  json qc = quantization_config_of("ct-nvfp4-qwen3-30b-a3b");
  qc["ignore"] = json::array({"layers.0.mlp.down_proj", "re:layers\\.1\\.", "re:model\\.layers\\.2",
                              "language_model.lm_head", "re:model\\.layers\\.5\\..*"});
  const QuantConfig q = parse_quantization_config(qc, kSource);
  EXPECT_FALSE(q.is_excluded("model.layers.0.mlp.down_proj"));  // plain entries are exact names
  EXPECT_TRUE(q.is_excluded("layers.0.mlp.down_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.1.mlp.down_proj"));  // re.match anchors at the start...
  EXPECT_TRUE(q.is_excluded("layers.1.mlp.down_proj"));
  EXPECT_TRUE(q.is_excluded("model.layers.20.mlp.down_proj"));  // ...but not at the end
  EXPECT_TRUE(q.is_excluded("lm_head"));
  EXPECT_TRUE(q.is_excluded("model.language_model.layers.5.self_attn.q_proj"));
  EXPECT_TRUE(q.is_excluded("language_model.model.layers.5.self_attn.q_proj"));
  EXPECT_FALSE(q.is_excluded("model.language_model.layers.6.self_attn.q_proj"));
}

TEST(QuantConfig, CompressedTensorsRegexSyntax) {
  json qc = quantization_config_of("ct-nvfp4-qwen3-30b-a3b");
  qc["ignore"] = json::array({"re:.*mlp.gate$", "re:model\\.layers\\.(0|1)\\.mlp\\.down_proj$",
                              "re:.*experts\\.[0-9]+7\\.up_proj", "re:lm_hea+d"});
  const QuantConfig q = parse_quantization_config(qc, kSource);
  EXPECT_TRUE(q.is_excluded("model.layers.3.mlpXgate"));  // an unescaped '.' is any character
  EXPECT_FALSE(q.is_excluded("model.layers.3.mlp.gate.x"));
  EXPECT_TRUE(q.is_excluded("model.layers.1.mlp.down_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.2.mlp.down_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.1.mlp.down_proj_x"));
  EXPECT_TRUE(q.is_excluded("model.layers.9.mlp.experts.127.up_proj"));
  EXPECT_FALSE(q.is_excluded("model.layers.9.mlp.experts.126.up_proj"));
  EXPECT_TRUE(q.is_excluded("lm_heaad"));
  EXPECT_FALSE(q.is_excluded("lm_hed"));
}

TEST(QuantConfig, CompressedTensorsFormatPerGroup) {
  json qc = quantization_config_of("ct-nvfp4a16-llama-3.1-8b");
  qc.erase("format");  // the group's own format is enough
  EXPECT_EQ(parse_quantization_config(qc, kSource).quant_algo, "W4A16_NVFP4");
  qc["format"] = "mixed-precision";
  EXPECT_EQ(parse_quantization_config(qc, kSource).quant_algo, "W4A16_NVFP4");
  qc["config_groups"]["group_0"].erase("format");
  expect_config_error(qc, "compressed-tensors format \"mixed-precision\" is not supported", kNvfp4Hint);
  qc.erase("format");
  expect_config_error(qc, "missing required field \"quantization_config.format\"");
}

TEST(QuantConfig, NoQuantization) {
  const fs::path dir = fs::path(ADALLM_TEST_DIR) / "data" / "configs";
  const QuantConfig q = load_quant_config(dir, read(dir / "llama-3.1-8b-instruct.json"));
  EXPECT_EQ(q.format, QuantFormat::none);
  EXPECT_FALSE(q.quantized());
  EXPECT_EQ(q.source, "");
  EXPECT_FALSE(q.is_excluded("lm_head"));
  json with_null = read(dir / "llama-3.1-8b-instruct.json");
  with_null["quantization_config"] = nullptr;
  EXPECT_FALSE(load_quant_config(dir, with_null).quantized());
}

// ---- refused configs -----------------------------------------------------------------------------------------

TEST(QuantConfigErrors, UnsupportedModelOptAlgos) {
  const fs::path fp8 = quant_dir("bad-modelopt-fp8") / "hf_quant_config.json";
  expect_error([&] { load("bad-modelopt-fp8"); }, "quantization.quant_algo \"FP8\" is not supported", fp8.string(),
               kNvfp4Hint);
  for (const char* algo : {"NVFP4_AWQ", "W4A8_NVFP4_FP8", "W4A8_AWQ", "INT4_AWQ", "FP8_PB_WO"}) {
    expect_hf_error({{"quantization", {{"quant_algo", algo}}}},
                    "quantization.quant_algo \"" + std::string(algo) + "\" is not supported", kNvfp4Hint);
  }
  expect_hf_error({{"quantization", {{"quant_algo", "MIXED_PRECISION"}}}},
                  "quantization.quant_algo \"MIXED_PRECISION\" is not supported",
                  "per-layer mixed precision is not supported");
  expect_config_error({{"quant_method", "modelopt"}, {"quant_algo", "fp8"}},
                      "quantization_config.quant_algo \"FP8\" is not supported", kNvfp4Hint);
}

TEST(QuantConfigErrors, UnsupportedKvCache) {
  const fs::path path = quant_dir("bad-modelopt-nvfp4-kv") / "hf_quant_config.json";
  expect_error([&] { load("bad-modelopt-nvfp4-kv"); }, "quantization.kv_cache_quant_algo \"NVFP4\" is not supported",
               path.string(), kKvHint);
  expect_hf_error({{"quantization", {{"quant_algo", "NVFP4"}, {"kv_cache_quant_algo", "INT8"}}}},
                  "quantization.kv_cache_quant_algo \"INT8\" is not supported", kKvHint);
  json mo = quantization_config_of("modelopt-0.31");
  mo["kv_cache_scheme"] = "NVFP4";  // ModelOpt's converter writes non-FP8 algos as a plain string
  expect_config_error(mo, "quantization_config.kv_cache_scheme \"NVFP4\" is not supported", kKvHint);
  mo["kv_cache_scheme"] = {{"num_bits", 4}, {"type", "float"}};
  expect_config_error(mo, "quantization_config.kv_cache_scheme with num_bits 4, type \"float\" is not supported",
                      kKvHint);
  json ct = quantization_config_of("ct-nvfp4a16-llama-3.1-8b");
  ct["kv_cache_scheme"]["type"] = "int";
  expect_config_error(ct, "quantization_config.kv_cache_scheme with num_bits 8, type \"int\" is not supported");
  ct["kv_cache_scheme"]["type"] = "float";
  ct["kv_cache_scheme"]["strategy"] = "attn_head";
  expect_config_error(ct, "quantization_config.kv_cache_scheme.strategy \"attn_head\" is not supported");
}

TEST(QuantConfigErrors, UnsupportedCompressedTensorsFormats) {
  const fs::path int4 = quant_dir("bad-ct-int4") / "config.json";
  expect_error([&] { load("bad-ct-int4"); }, "compressed-tensors format \"pack-quantized\" is not supported",
               int4.string(), kNvfp4Hint);
  const fs::path fp8 = quant_dir("bad-ct-fp8") / "config.json";
  expect_error([&] { load("bad-ct-fp8"); }, "compressed-tensors format \"float-quantized\" is not supported",
               fp8.string(), kNvfp4Hint);
}

TEST(QuantConfigErrors, CompressedTensorsArgs) {
  const json base = quantization_config_of("ct-nvfp4-qwen3-30b-a3b");
  const std::string group = "quantization_config.config_groups.group_0.";
  json qc = base;
  qc["config_groups"]["group_0"]["weights"]["group_size"] = 32;
  expect_config_error(qc, group + "weights.group_size: expected 16, got 32", kNvfp4Hint);
  qc = base;
  qc["config_groups"]["group_0"]["weights"]["strategy"] = "group";
  expect_config_error(qc, group + "weights.strategy: expected \"tensor_group\", got \"group\"");
  qc = base;
  qc["config_groups"]["group_0"]["weights"]["symmetric"] = false;
  expect_config_error(qc, group + "weights.symmetric: expected true, got false");
  qc = base;
  qc["config_groups"]["group_0"]["input_activations"] = {{"num_bits", 8}, {"type", "float"}, {"strategy", "token"}};
  expect_config_error(qc, group + "input_activations.num_bits: expected 4, got 8");
  qc = base;
  qc["config_groups"]["group_0"].erase("weights");
  expect_config_error(qc, "missing required field \"" + group + "weights\"");
  qc = base;
  qc["config_groups"]["group_0"]["output_activations"] = base["config_groups"]["group_0"]["weights"];
  expect_config_error(qc, group + "output_activations");
  qc = base;
  qc["config_groups"]["group_1"] = base["config_groups"]["group_0"];
  qc["config_groups"]["group_1"]["input_activations"] = nullptr;
  expect_config_error(qc, "config groups mix weight-only (W4A16) and W4A4 NVFP4");
  qc = base;
  qc["transform_config"] = {{"config_groups", {{"u", {{"type", "hadamard"}}}}}};
  expect_config_error(qc, "quantization_config.transform_config is not supported");
  qc = base;
  qc["ignore"] = json::array({"lm_head", "re:(?P<name>.*mlp.gate)$"});
  expect_config_error(qc, "ignore entry \"re:(?P<name>.*mlp.gate)$\" is not a regular expression AdaLLM can evaluate");
  qc = base;
  qc["ignore"] = "lm_head";
  expect_config_error(qc, "field \"quantization_config.ignore\": expected a list of strings, got \"lm_head\"");
}

TEST(QuantConfigErrors, ModelOptFields) {
  expect_hf_error({{"quantization", {{"quant_algo", "NVFP4"}, {"group_size", 32}}}},
                  "quantization.group_size 32 is not supported; NVFP4 uses 16", kNvfp4Hint);
  expect_hf_error({{"producer", {{"name", "modelopt"}}}}, "missing required field \"quantization\"");
  expect_hf_error({{"quantization", {{"kv_cache_quant_algo", "FP8"}}}}, "missing required field \"quantization.quant_algo\"");
  expect_hf_error({{"quantization", {{"quant_algo", "NVFP4"}, {"exclude_modules", "lm_head"}}}},
                  "field \"quantization.exclude_modules\": expected a list of strings, got \"lm_head\"");
  expect_hf_error({{"quantization", {{"quant_algo", 4}}}}, "field \"quantization.quant_algo\": expected a string, got 4");
  expect_hf_error(json::array(), "quant config must be a JSON object");
  json mo = quantization_config_of("modelopt-0.31");
  mo["config_groups"]["group_0"]["weights"]["group_size"] = 32;
  expect_config_error(mo, "quantization_config.config_groups.group_0.weights.group_size 32 is not supported");
  const fs::path bad_json = quant_dir("bad-invalid-json") / "hf_quant_config.json";
  expect_error([&] { load("bad-invalid-json"); }, "invalid JSON in quant config at byte ", bad_json.string());
}

TEST(QuantConfigErrors, QuantMethods) {
  expect_config_error({{"quant_method", "gptq"}, {"bits", 4}}, "quantization_config.quant_method \"gptq\" is not supported",
                      kNvfp4Hint);
  expect_config_error({{"quant_method", "mxfp4"}}, "quantization_config.quant_method \"mxfp4\" is not supported");
  expect_config_error({{"bits", 4}}, "missing required field \"quantization_config.quant_method\"");
  expect_config_error(json("modelopt"), "field \"quantization_config\": expected an object");
}

// ---- wildcard_match ---------------------------------------------------------------------------------------------

TEST(WildcardMatch, FnmatchSemantics) {
  EXPECT_TRUE(wildcard_match("*", ""));
  EXPECT_TRUE(wildcard_match("", ""));
  EXPECT_FALSE(wildcard_match("", "a"));
  EXPECT_TRUE(wildcard_match("foo*", "foo"));
  EXPECT_TRUE(wildcard_match("a*c", "abbbc"));
  EXPECT_TRUE(wildcard_match("a*b*c", "axxbyyc"));
  EXPECT_FALSE(wildcard_match("a*b*c", "axxbyy"));
  EXPECT_TRUE(wildcard_match("a?c", "abc"));
  EXPECT_FALSE(wildcard_match("a?c", "ac"));
  EXPECT_TRUE(wildcard_match("[abc]x", "bx"));
  EXPECT_FALSE(wildcard_match("[!abc]x", "bx"));
  EXPECT_TRUE(wildcard_match("[!abc]x", "dx"));
  EXPECT_TRUE(wildcard_match("layer[0-3]", "layer2"));
  EXPECT_FALSE(wildcard_match("layer[0-3]", "layer7"));
  EXPECT_TRUE(wildcard_match("[]]", "]"));
  EXPECT_TRUE(wildcard_match("a[b", "a[b"));  // an unclosed '[' is literal
  EXPECT_TRUE(wildcard_match("model.layers.*.mlp.gate", "model.layers.12.mlp.gate"));
  EXPECT_FALSE(wildcard_match("model.layers.*.mlp.gate", "model.layers.12.mlp.gate_proj"));
  EXPECT_TRUE(wildcard_match("*lm_head*", "language_model.lm_head"));
  EXPECT_FALSE(wildcard_match("LM_HEAD", "lm_head"));  // case-sensitive, as on POSIX
}

TEST(QuantConfig, FormatNames) {
  EXPECT_STREQ(quant_format_name(QuantFormat::none), "none");
  EXPECT_STREQ(quant_format_name(QuantFormat::modelopt), "modelopt");
  EXPECT_STREQ(quant_format_name(QuantFormat::compressed_tensors), "compressed-tensors");
}

}  // namespace
}  // namespace adallm::io
