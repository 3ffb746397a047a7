// Tests of io/model_config: the published config.json of each supported family (tests/data/configs) with
// every derived field asserted, the transformers 5 re-saved forms and variations built from those files.
// Refused configs: test_model_config_errors.cpp.
#include "io/model_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config_test_util.h"

namespace adallm::io {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using namespace test_config;

// Indices of the full_attention layers.
std::vector<int64_t> full_layers(const ModelConfig& c) {
  std::vector<int64_t> out;
  for (size_t i = 0; i < c.layer_types.size(); ++i) {
    if (c.layer_types[i] == LayerType::full_attention) out.push_back(int64_t(i));
  }
  return out;
}

void expect_default_rope(const RopeConfig& rope, double theta) {
  EXPECT_EQ(rope.rope_type, "default");
  EXPECT_EQ(rope.theta, theta);
  EXPECT_EQ(rope.factor, 1.0);
  EXPECT_EQ(rope.partial_rotary_factor, 1.0);
}

// The sizes every family has, asserted together: hidden, intermediate, layers, heads, kv heads, head_dim,
// vocab, max_position_embeddings.
struct Shape {
  int64_t hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, head_dim,
      vocab_size, max_position_embeddings;
};

void expect_shape(const ModelConfig& c, const Shape& s) {
  EXPECT_EQ(c.hidden_size, s.hidden_size);
  EXPECT_EQ(c.intermediate_size, s.intermediate_size);
  EXPECT_EQ(c.num_hidden_layers, s.num_hidden_layers);
  EXPECT_EQ(c.num_attention_heads, s.num_attention_heads);
  EXPECT_EQ(c.num_key_value_heads, s.num_key_value_heads);
  EXPECT_EQ(c.head_dim, s.head_dim);
  EXPECT_EQ(c.vocab_size, s.vocab_size);
  EXPECT_EQ(c.max_position_embeddings, s.max_position_embeddings);
}

// ---- published configs ----------------------------------------------------------------------------------

TEST(ModelConfig, Qwen3_8B) {
  const ModelConfig c = load_model_config(configs_dir() / "qwen3-8b.json");
  EXPECT_EQ(c.model_type, "qwen3");
  EXPECT_EQ(c.arch, Architecture::qwen3);
  EXPECT_FALSE(c.multimodal_wrapper);
  expect_shape(c, {4096, 12288, 36, 32, 8, 128, 151936, 40960});
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.hidden_act, Activation::silu);
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / std::sqrt(128.0));
  EXPECT_FALSE(c.query_pre_attn_scalar.has_value());
  EXPECT_EQ(c.layer_types, std::vector<LayerType>(36, LayerType::full_attention));
  EXPECT_FALSE(c.sliding_window.has_value());
  expect_default_rope(c.rope_full, 1e6);
  expect_default_rope(c.rope_sliding, 1e6);
  expect_default_rope(c.rope_for_layer(35), 1e6);
  EXPECT_EQ(c.num_experts, 0);
  EXPECT_FALSE(c.is_moe_layer(0));
  EXPECT_FALSE(c.scale_embeddings);
  EXPECT_FALSE(c.gemma_norm);
  EXPECT_EQ(c.torch_dtype, "bfloat16");
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{151643});
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
}

TEST(ModelConfig, Qwen3_30B_A3B) {
  const ModelConfig c = load_model_config(configs_dir() / "qwen3-30b-a3b.json");
  EXPECT_EQ(c.arch, Architecture::qwen3_moe);
  expect_shape(c, {2048, 6144, 48, 32, 4, 128, 151936, 40960});  // head_dim explicit: hidden / heads is 64
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / std::sqrt(128.0));
  EXPECT_EQ(c.num_experts, 128);
  EXPECT_EQ(c.num_experts_per_tok, 8);
  EXPECT_EQ(c.moe_intermediate_size, 768);
  EXPECT_EQ(c.decoder_sparse_step, 1);
  EXPECT_TRUE(c.mlp_only_layers.empty());
  EXPECT_TRUE(c.norm_topk_prob);
  for (int64_t layer = 0; layer < 48; ++layer) EXPECT_TRUE(c.is_moe_layer(layer)) << layer;
  EXPECT_EQ(c.layer_types, std::vector<LayerType>(48, LayerType::full_attention));
  expect_default_rope(c.rope_full, 1e6);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{151645});
}

TEST(ModelConfig, Llama31_8B_Instruct) {
  const ModelConfig c = load_model_config(configs_dir() / "llama-3.1-8b-instruct.json");
  EXPECT_EQ(c.arch, Architecture::llama);
  expect_shape(c, {4096, 14336, 32, 32, 8, 128, 128256, 131072});
  EXPECT_EQ(c.rms_norm_eps, 1e-5);
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / std::sqrt(128.0));
  EXPECT_EQ(c.rope_full.rope_type, "llama3");
  EXPECT_EQ(c.rope_full.theta, 500000.0);
  EXPECT_EQ(c.rope_full.factor, 8.0);
  EXPECT_EQ(c.rope_full.low_freq_factor, 1.0);
  EXPECT_EQ(c.rope_full.high_freq_factor, 4.0);
  EXPECT_EQ(c.rope_full.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.rope_sliding.rope_type, "llama3");
  EXPECT_EQ(c.rope_for_layer(31).factor, 8.0);
  EXPECT_EQ(c.layer_types, std::vector<LayerType>(32, LayerType::full_attention));
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{128000});
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128008, 128009}));
}

TEST(ModelConfig, Llama32_1B_Tied) {
  const ModelConfig c = load_model_config(configs_dir() / "llama-3.2-1b.json");
  expect_shape(c, {2048, 8192, 16, 32, 8, 64, 128256, 131072});
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.125);
  EXPECT_EQ(c.rope_full.rope_type, "llama3");
  EXPECT_EQ(c.rope_full.factor, 32.0);
  EXPECT_EQ(c.rope_full.original_max_position_embeddings, 8192);
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{128001});
}

TEST(ModelConfig, Gemma3_1B_Text) {
  const ModelConfig c = load_model_config(configs_dir() / "gemma-3-1b-it.json");
  EXPECT_EQ(c.model_type, "gemma3_text");
  EXPECT_EQ(c.arch, Architecture::gemma3);
  EXPECT_FALSE(c.multimodal_wrapper);
  expect_shape(c, {1152, 6912, 26, 4, 1, 256, 262144, 32768});
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.query_pre_attn_scalar, 256.0);
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.0625);
  EXPECT_EQ(c.hidden_act, Activation::gelu_tanh);
  EXPECT_TRUE(c.scale_embeddings);
  EXPECT_TRUE(c.gemma_norm);
  EXPECT_TRUE(c.tie_word_embeddings);  // class default
  EXPECT_EQ(c.sliding_window, 512);
  EXPECT_EQ(full_layers(c), (std::vector<int64_t>{5, 11, 17, 23}));
  expect_default_rope(c.rope_full, 1e6);
  expect_default_rope(c.rope_sliding, 1e4);
  EXPECT_EQ(c.rope_for_layer(5).theta, 1e6);
  EXPECT_EQ(c.rope_for_layer(4).theta, 1e4);
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 106}));
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(ModelConfig, Gemma3_27B_MinimalTextConfig) {
  const ModelConfig c = load_model_config(configs_dir() / "gemma-3-27b-it.json");
  EXPECT_EQ(c.model_type, "gemma3");
  EXPECT_EQ(c.arch, Architecture::gemma3);
  EXPECT_TRUE(c.multimodal_wrapper);
  // vocab_size, max_position_embeddings, rms_norm_eps, tie and activation are Gemma3TextConfig defaults.
  expect_shape(c, {5376, 21504, 62, 32, 16, 128, 262208, 131072});
  EXPECT_EQ(c.rms_norm_eps, 1e-6);
  EXPECT_EQ(c.query_pre_attn_scalar, 168.0);
  EXPECT_DOUBLE_EQ(c.attention_scale, 1.0 / std::sqrt(168.0));
  EXPECT_NE(c.attention_scale, 1.0 / std::sqrt(128.0));
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(c.hidden_act, Activation::gelu_tanh);
  EXPECT_EQ(c.sliding_window, 1024);
  std::vector<int64_t> expected_full;
  for (int64_t i = 5; i < 62; i += 6) expected_full.push_back(i);
  EXPECT_EQ(full_layers(c), expected_full);
  EXPECT_EQ(expected_full.size(), 10u);
  EXPECT_EQ(c.layer_types[60], LayerType::sliding_attention);
  EXPECT_EQ(c.layer_types[61], LayerType::sliding_attention);
  EXPECT_EQ(c.rope_full.rope_type, "linear");
  EXPECT_EQ(c.rope_full.factor, 8.0);
  EXPECT_EQ(c.rope_full.theta, 1e6);
  expect_default_rope(c.rope_sliding, 1e4);  // local layers are never scaled
  EXPECT_EQ(c.rope_for_layer(59).rope_type, "linear");
  EXPECT_EQ(c.rope_for_layer(58).rope_type, "default");
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 106}));  // top level of the wrapper
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{2});         // class default
  EXPECT_EQ(c.torch_dtype, "bfloat16");
}

TEST(ModelConfig, Gemma3_4B_Transformers5Resave) {
  const ModelConfig c = load_model_config(configs_dir() / "gemma-3-4b-it-transformers5.json");
  EXPECT_TRUE(c.multimodal_wrapper);
  expect_shape(c, {2560, 10240, 34, 8, 4, 256, 262208, 131072});
  EXPECT_DOUBLE_EQ(c.attention_scale, 0.0625);
  EXPECT_EQ(full_layers(c), (std::vector<int64_t>{5, 11, 17, 23, 29}));
  EXPECT_EQ(c.sliding_window, 1024);
  EXPECT_EQ(c.rope_full.rope_type, "linear");
  EXPECT_EQ(c.rope_full.factor, 8.0);
  EXPECT_EQ(c.rope_full.theta, 1e6);
  expect_default_rope(c.rope_sliding, 1e4);
  EXPECT_EQ(c.torch_dtype, "bfloat16");  // "dtype" in transformers 5
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{1, 106}));
}

// ---- Gemma3 defaults, layer patterns and RoPE forms -------------------------------------------------------

TEST(ModelConfig, Gemma3_4B_TextConfigReliesOnClassDefaults) {
  // google/gemma-3-4b-it's text_config: heads, kv heads, head_dim, vocab, RoPE bases all left to the class.
  const ModelConfig c = parse(json::parse(R"({"model_type": "gemma3", "text_config": {"hidden_size": 2560,
      "intermediate_size": 10240, "model_type": "gemma3_text", "num_hidden_layers": 34,
      "rope_scaling": {"factor": 8.0, "rope_type": "linear"}, "sliding_window": 1024}})"));
  expect_shape(c, {2560, 10240, 34, 8, 4, 256, 262208, 131072});
  EXPECT_EQ(c.query_pre_attn_scalar, 256.0);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_EQ(full_layers(c), (std::vector<int64_t>{5, 11, 17, 23, 29}));
  EXPECT_EQ(c.rope_full.theta, 1e6);
  EXPECT_EQ(c.rope_sliding.theta, 1e4);
  EXPECT_EQ(c.bos_token_ids, std::vector<int64_t>{2});
  EXPECT_EQ(c.eos_token_ids, std::vector<int64_t>{1});
  EXPECT_EQ(c.torch_dtype, "");
}

TEST(ModelConfig, Gemma3_SlidingWindowDefaultIs4096) {
  json config = read("gemma-3-1b-it.json");
  config.erase("sliding_window");
  EXPECT_EQ(parse(config).sliding_window, 4096);
}

TEST(ModelConfig, Gemma3_ExplicitLayerTypesWinOverPattern) {
  json config = read("gemma-3-1b-it.json");
  json types = json::array();
  for (int i = 0; i < 26; ++i) types.push_back(i % 2 ? "full_attention" : "sliding_attention");
  config["layer_types"] = types;  // sliding_window_pattern 6 stays in the file
  const ModelConfig c = parse(config);
  EXPECT_EQ(full_layers(c).size(), 13u);
  EXPECT_EQ(c.layer_types[0], LayerType::sliding_attention);
  EXPECT_EQ(c.layer_types[1], LayerType::full_attention);
  EXPECT_EQ(c.rope_for_layer(1).theta, 1e6);
}

TEST(ModelConfig, Gemma3_UnderscoredSlidingWindowPattern) {
  json config = read("gemma-3-1b-it.json");
  config.erase("sliding_window_pattern");
  config["_sliding_window_pattern"] = 4;
  EXPECT_EQ(full_layers(parse(config)), (std::vector<int64_t>{3, 7, 11, 15, 19, 23}));
  config.erase("_sliding_window_pattern");
  EXPECT_EQ(full_layers(parse(config)), (std::vector<int64_t>{5, 11, 17, 23}));  // class default 6
}

TEST(ModelConfig, Gemma3_LocalBaseFreqAndFlatRopeParameters) {
  json config = read("gemma-3-1b-it.json");
  config["rope_local_base_freq"] = 20000.0;
  config.erase("rope_theta");
  config["rope_parameters"] = {{"rope_type", "linear"}, {"factor", 4.0}, {"rope_theta", 500000.0}};
  const ModelConfig c = parse(config);
  EXPECT_EQ(c.rope_full.rope_type, "linear");  // a flat rope_parameters is the full layers' RoPE
  EXPECT_EQ(c.rope_full.factor, 4.0);
  EXPECT_EQ(c.rope_full.theta, 500000.0);
  expect_default_rope(c.rope_sliding, 20000.0);
}

TEST(ModelConfig, Gemma3_KeyedRopeParametersWithoutSlidingEntry) {
  json config = read("gemma-3-1b-it.json");
  config["rope_local_base_freq"] = 20000.0;
  config["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 2e6}}}};
  const ModelConfig c = parse(config);
  expect_default_rope(c.rope_full, 2e6);
  expect_default_rope(c.rope_sliding, 20000.0);
}

// ---- Qwen3 sliding window, RoPE variants, head_dim and token ids --------------------------------------------

TEST(ModelConfig, Qwen3_UseSlidingWindowFromMaxWindowLayers) {
  json config = read("qwen3-8b.json");
  config["use_sliding_window"] = true;
  config["sliding_window"] = 4096;
  config["max_window_layers"] = 28;
  const ModelConfig c = parse(config);
  for (int64_t i = 0; i < 36; ++i) {
    EXPECT_EQ(c.layer_types[size_t(i)], i >= 28 ? LayerType::sliding_attention : LayerType::full_attention) << i;
  }
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.rope_for_layer(30).theta, 1e6);  // one RoPE for both layer types

  config.erase("sliding_window");  // absent: Qwen3Config's default 4096
  config["max_window_layers"] = 34;
  const ModelConfig d = parse(config);
  EXPECT_EQ(d.sliding_window, 4096);
  EXPECT_EQ(full_layers(d).size(), 34u);

  config["sliding_window"] = nullptr;  // explicit null: no window, every layer full
  const ModelConfig e = parse(config);
  EXPECT_FALSE(e.sliding_window.has_value());
  EXPECT_EQ(full_layers(e).size(), 36u);
}

TEST(ModelConfig, Qwen3_SlidingWindowIgnoredWhenDisabled) {
  json config = read("qwen3-8b.json");
  config["sliding_window"] = 4096;  // use_sliding_window stays false
  const ModelConfig c = parse(config);
  EXPECT_FALSE(c.sliding_window.has_value());
  EXPECT_EQ(full_layers(c).size(), 36u);
}

TEST(ModelConfig, Qwen3_YarnRopeScaling) {
  json config = read("qwen3-8b.json");
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}, {"original_max_position_embeddings", 32768}};
  const RopeConfig& rope = parse(config).rope_full;
  EXPECT_EQ(rope.rope_type, "yarn");
  EXPECT_EQ(rope.theta, 1e6);
  EXPECT_EQ(rope.factor, 4.0);
  EXPECT_EQ(rope.original_max_position_embeddings, 32768);
  EXPECT_EQ(rope.beta_fast, 32.0);
  EXPECT_EQ(rope.beta_slow, 1.0);
  ASSERT_TRUE(rope.attention_factor.has_value());
  EXPECT_DOUBLE_EQ(*rope.attention_factor, 0.1 * std::log(4.0) + 1.0);
}

TEST(ModelConfig, YarnMscaleAndDerivedFactor) {
  json config = read("qwen3-8b.json");
  config["rope_scaling"] = {{"type", "yarn"},
                            {"factor", 40},
                            {"mscale", 0.707},
                            {"mscale_all_dim", 0.707},
                            {"beta_fast", 16},
                            {"original_max_position_embeddings", 4096}};
  const RopeConfig rope = parse(config).rope_full;
  EXPECT_EQ(rope.factor, 40.0);
  EXPECT_EQ(rope.beta_fast, 16.0);
  EXPECT_DOUBLE_EQ(*rope.attention_factor, 1.0);  // equal mscales cancel

  config["rope_scaling"] = {{"rope_type", "yarn"}, {"original_max_position_embeddings", 10240}};
  const RopeConfig derived = parse(config).rope_full;
  EXPECT_EQ(derived.factor, 4.0);  // max_position_embeddings 40960 / 10240
  EXPECT_DOUBLE_EQ(*derived.attention_factor, 0.1 * std::log(4.0) + 1.0);

  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 2.0}, {"attention_factor", 1.5}};
  const RopeConfig explicit_af = parse(config).rope_full;
  EXPECT_EQ(*explicit_af.attention_factor, 1.5);
  EXPECT_EQ(explicit_af.original_max_position_embeddings, 40960);
}

TEST(ModelConfig, Transformers5FlatRopeParameters) {
  json config = read("llama-3.1-8b-instruct.json");
  const json legacy_scaling = config["rope_scaling"];
  config.erase("rope_scaling");
  config.erase("rope_theta");
  config["rope_parameters"] = legacy_scaling;
  config["rope_parameters"]["rope_theta"] = 500000.0;
  config["rope_parameters"].erase("original_max_position_embeddings");  // standardize: max_position_embeddings
  config.erase("torch_dtype");
  config["dtype"] = "float16";
  const ModelConfig c = parse(config);
  EXPECT_EQ(c.rope_full.rope_type, "llama3");
  EXPECT_EQ(c.rope_full.theta, 500000.0);
  EXPECT_EQ(c.rope_full.factor, 8.0);
  EXPECT_EQ(c.rope_full.original_max_position_embeddings, 131072);
  EXPECT_EQ(c.torch_dtype, "float16");
}

TEST(ModelConfig, LegacyTypeKeyAndClassDefaultTheta) {
  json config = read("llama-3.2-1b.json");
  config["rope_scaling"] = {{"type", "linear"}, {"factor", 2.0}};
  config.erase("rope_theta");
  const ModelConfig c = parse(config);
  EXPECT_EQ(c.rope_full.rope_type, "linear");
  EXPECT_EQ(c.rope_full.factor, 2.0);
  EXPECT_EQ(c.rope_full.theta, 10000.0);  // LlamaConfig default
}

TEST(ModelConfig, Qwen3_LayerKeyedRopeParameters) {
  json config = read("qwen3-8b.json");
  config["use_sliding_window"] = true;
  config["sliding_window"] = 2048;
  config["max_window_layers"] = 28;
  config["rope_parameters"] = {{"full_attention", {{"rope_type", "default"}, {"rope_theta", 1e6}}},
                               {"sliding_attention", {{"rope_type", "default"}, {"rope_theta", 1e4}}}};
  const ModelConfig c = parse(config);
  EXPECT_EQ(c.rope_for_layer(0).theta, 1e6);
  EXPECT_EQ(c.rope_for_layer(35).theta, 1e4);
  config["rope_parameters"].erase("sliding_attention");
  expect_parse_error(config, "rope_parameters has no \"sliding_attention\" entry but layer_types uses it");
}

TEST(ModelConfig, HeadDimDefaults) {
  json qwen = read("qwen3-8b.json");
  qwen.erase("head_dim");
  qwen["hidden_size"] = 2048;
  EXPECT_EQ(parse(qwen).head_dim, 128);  // Qwen3Config default, not 2048 / 32
  json moe = read("qwen3-30b-a3b.json");
  moe.erase("head_dim");
  EXPECT_EQ(parse(moe).head_dim, 64);  // Qwen3MoeConfig has none: hidden / heads
  json llama = read("llama-3.1-8b-instruct.json");
  llama["hidden_size"] = 4100;
  expect_parse_error(llama, "hidden_size 4100 is not a multiple of num_attention_heads 32 and head_dim is not given");
  llama["hidden_size"] = 4096.0;  // an integral float is an integer
  EXPECT_EQ(parse(llama).head_dim, 128);
}

TEST(ModelConfig, TokenIdsAndKvHeadDefault) {
  json config = read("llama-3.2-1b.json");
  config["eos_token_id"] = json::array({128001, 128009});
  config.erase("bos_token_id");
  config.erase("num_key_value_heads");
  const ModelConfig c = parse(config);
  EXPECT_EQ(c.eos_token_ids, (std::vector<int64_t>{128001, 128009}));
  EXPECT_TRUE(c.bos_token_ids.empty());  // Llama 2's class defaults are not applied
  EXPECT_EQ(c.num_key_value_heads, 32);
  config["eos_token_id"] = "</s>";
  expect_parse_error(config, "field \"eos_token_id\": expected a non-negative token id or a list of them");
}

// ---- Qwen3-MoE layers ---------------------------------------------------------------------------------------

TEST(ModelConfig, MoeLayerSelection) {
  json config = read("qwen3-30b-a3b.json");
  config["decoder_sparse_step"] = 2;
  config["mlp_only_layers"] = json::array({0, 5});
  ModelConfig c = parse(config);
  EXPECT_FALSE(c.is_moe_layer(0));  // (0 + 1) % 2 != 0
  EXPECT_TRUE(c.is_moe_layer(1));
  EXPECT_FALSE(c.is_moe_layer(2));
  EXPECT_TRUE(c.is_moe_layer(3));
  EXPECT_FALSE(c.is_moe_layer(5));  // listed in mlp_only_layers
  EXPECT_TRUE(c.is_moe_layer(47));
  expect_error([&] { c.is_moe_layer(48); }, "layer 48 is outside [0, 48)", "");
  expect_error([&] { c.rope_for_layer(-1); }, "layer -1 is outside [0, 48)", "");
  config["num_experts"] = 0;
  EXPECT_FALSE(parse(config).is_moe_layer(1));
  config.erase("num_experts");
  config["num_local_experts"] = 64;  // transformers 5 spelling
  EXPECT_EQ(parse(config).num_experts, 64);
  config.erase("num_local_experts");
  config.erase("norm_topk_prob");
  c = parse(config);
  EXPECT_EQ(c.num_experts, 128);  // Qwen3MoeConfig defaults
  EXPECT_FALSE(c.norm_topk_prob);
}

TEST(ModelConfig, NamesOfEnums) {
  EXPECT_STREQ(architecture_name(Architecture::qwen3_moe), "qwen3_moe");
  EXPECT_STREQ(architecture_name(Architecture::gemma3), "gemma3");
  EXPECT_STREQ(layer_type_name(LayerType::sliding_attention), "sliding_attention");
  EXPECT_STREQ(layer_type_name(LayerType::full_attention), "full_attention");
}

}  // namespace
}  // namespace adallm::io
