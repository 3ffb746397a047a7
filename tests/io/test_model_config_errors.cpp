// Tests of io/model_config: one test per refused config, pinning the message and the file it names.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "io/model_config_test_util.h"

namespace adallm::io {
namespace {

using namespace test_config;

// ---- refused configs: files ---------------------------------------------------------------------------------

TEST(ModelConfigErrors, UnsupportedModelType) {
  const fs::path path = configs_dir() / "bad-model-type-mistral.json";
  expect_error([&] { load_model_config(path); },
               "unsupported model_type \"mistral\"; supported: llama, qwen3, qwen3_moe, gemma3_text, gemma3",
               path.string());
}

TEST(ModelConfigErrors, MissingRequiredField) {
  const fs::path path = configs_dir() / "bad-missing-hidden-size.json";
  expect_error([&] { load_model_config(path); }, "missing required field \"hidden_size\"", path.string());
}

TEST(ModelConfigErrors, WrongJsonType) {
  const fs::path path = configs_dir() / "bad-hidden-size-string.json";
  expect_error([&] { load_model_config(path); }, "field \"hidden_size\": expected an integer, got \"4096\"",
               path.string());
}

TEST(ModelConfigErrors, InvalidJsonAndMissingFile) {
  const fs::path path = configs_dir() / "bad-invalid-json.json";
  const std::string message = expect_error([&] { load_model_config(path); }, "invalid JSON in config at byte ", path.string());
  EXPECT_NE(message.find("line 5"), std::string::npos) << message;
  const fs::path missing = configs_dir() / "no-such-config.json";
  expect_error([&] { load_model_config(missing); }, "config not found", missing.string());
}

TEST(ModelConfigErrors, DynamicRopeScaling) {
  const fs::path path = configs_dir() / "bad-rope-dynamic.json";
  expect_error([&] { load_model_config(path); },
               "rope_scaling.type \"dynamic\" is not supported; supported: default, linear, llama3, yarn", path.string());
}

TEST(ModelConfigErrors, AttentionBias) {
  const fs::path path = configs_dir() / "bad-attention-bias.json";
  expect_error([&] { load_model_config(path); }, "attention_bias true is not supported", path.string());
}

TEST(ModelConfigErrors, Gemma3Softcapping) {
  const fs::path path = configs_dir() / "bad-gemma3-softcapping.json";
  expect_error([&] { load_model_config(path); }, "attn_logit_softcapping 50.0 is not supported yet for gemma3",
               path.string());
  json config = read("gemma-3-1b-it.json");
  config["final_logit_softcapping"] = 30.0;
  expect_parse_error(config, "final_logit_softcapping 30.0 is not supported yet for gemma3");
}

// ---- refused configs: variations ----------------------------------------------------------------------------

TEST(ModelConfigErrors, RopeFields) {
  json config = read("llama-3.1-8b-instruct.json");
  config["rope_scaling"] = nullptr;
  config["rope_parameters"] = {{"rope_type", "longrope"}, {"short_factor", json::array()}};
  expect_parse_error(config, "rope_parameters.rope_type \"longrope\" is not supported");
  config["rope_parameters"] = {{"rope_type", "default"}, {"partial_rotary_factor", 0.5}};
  expect_parse_error(config, "rope_parameters.partial_rotary_factor 0.5 is not supported; only 1.0");
  config.erase("rope_parameters");
  config["partial_rotary_factor"] = 0.5;
  expect_parse_error(config, "partial_rotary_factor 0.5 is not supported; only 1.0");
  config.erase("partial_rotary_factor");
  config["rope_scaling"] = {{"rope_type", "linear"}};
  expect_parse_error(config, "missing required field \"rope_scaling.factor\" for linear RoPE");
  config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 4.0}, {"high_freq_factor", 1.0}};
  expect_parse_error(config, "rope_scaling.low_freq_factor must be below high_freq_factor, got 4.0 and 1.0");
  config["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 32.0}, {"truncate", false}};
  expect_parse_error(config, "rope_scaling.truncate false is not supported");
  config["rope_scaling"] = "llama3";
  expect_parse_error(config, "field \"rope_scaling\": expected an object, got \"llama3\"");
  config["rope_scaling"] = nullptr;
  config["rope_theta"] = "500000";
  expect_parse_error(config, "field \"rope_theta\": expected a number, got \"500000\"");
  config["rope_theta"] = -1;
  expect_parse_error(config, "rope_theta must be a positive number, got -1");
}

TEST(ModelConfigErrors, UnsupportedMathFields) {
  json llama = read("llama-3.1-8b-instruct.json");
  llama["mlp_bias"] = true;
  expect_parse_error(llama, "mlp_bias true is not supported");
  json qwen = read("qwen3-8b.json");
  qwen["hidden_act"] = "gelu";
  expect_parse_error(qwen, "hidden_act \"gelu\" is not supported for qwen3; expected \"silu\"");
  json moe = read("qwen3-30b-a3b.json");
  moe["use_sliding_window"] = true;
  expect_parse_error(moe, "use_sliding_window true is not supported for qwen3_moe");
  json gemma = read("gemma-3-27b-it.json");
  gemma["text_config"]["hidden_activation"] = "gelu";
  expect_parse_error(gemma, "text_config.hidden_activation \"gelu\" is not supported for gemma3; expected "
                            "\"gelu_pytorch_tanh\" or \"gelu_tanh\"");
  gemma["text_config"]["hidden_activation"] = "gelu_tanh";
  EXPECT_EQ(parse(gemma).hidden_act, Activation::gelu_tanh);
  gemma["text_config"]["use_bidirectional_attention"] = true;
  expect_parse_error(gemma, "text_config.use_bidirectional_attention true is not supported");
  json keyed = read("gemma-3-4b-it-transformers5.json");
  keyed["text_config"]["rope_parameters"]["sliding_attention"]["rope_type"] = "dynamic";
  expect_parse_error(keyed, "text_config.rope_parameters.sliding_attention.rope_type \"dynamic\" is not supported");
}

TEST(ModelConfigErrors, ShapeFields) {
  json config = read("qwen3-8b.json");
  config["num_key_value_heads"] = 5;
  expect_parse_error(config, "num_attention_heads 32 is not a multiple of num_key_value_heads 5");
  config["num_key_value_heads"] = 8;
  config["hidden_size"] = 0;
  expect_parse_error(config, "hidden_size must be positive, got 0");
  config["hidden_size"] = 4096.5;
  expect_parse_error(config, "field \"hidden_size\": expected an integer, got 4096.5");
  config["hidden_size"] = 4096;
  config["tie_word_embeddings"] = "yes";
  expect_parse_error(config, "field \"tie_word_embeddings\": expected true or false, got \"yes\"");
  config["tie_word_embeddings"] = false;
  config.erase("model_type");
  expect_parse_error(config, "missing required field \"model_type\"; supported: llama, qwen3");
  expect_parse_error(json::array({1, 2}), "config must be a JSON object");
}

TEST(ModelConfigErrors, LayerTypes) {
  json config = read("qwen3-8b.json");
  config["layer_types"] = json::array({"full_attention"});
  expect_parse_error(config, "layer_types has 1 entries, expected num_hidden_layers = 36");
  json types = json(std::vector<std::string>(36, "full_attention"));
  types[3] = "chunked_attention";
  config["layer_types"] = types;
  expect_parse_error(config, "layer_types[3] \"chunked_attention\" is not supported; expected \"full_attention\" or "
                             "\"sliding_attention\"");
  types[3] = "sliding_attention";
  config["layer_types"] = types;  // sliding_window is null in Qwen3-8B
  expect_parse_error(config, "layer_types lists sliding_attention layers but sliding_window is null");
}

TEST(ModelConfigErrors, GemmaWrapperFields) {
  json config = read("gemma-3-27b-it.json");
  config["text_config"]["num_hidden_layers"] = "62";
  expect_parse_error(config, "field \"text_config.num_hidden_layers\": expected an integer, got \"62\"");
  config.erase("text_config");
  expect_parse_error(config, "missing required field \"text_config.hidden_size\"");
}

TEST(ModelConfigErrors, MoeFields) {
  json config = read("qwen3-30b-a3b.json");
  config["decoder_sparse_step"] = 0;
  expect_parse_error(config, "decoder_sparse_step must be >= 1, got 0");
  config["decoder_sparse_step"] = 1;
  config["mlp_only_layers"] = json::array({48});
  expect_parse_error(config, "mlp_only_layers entry 48 is not a layer index in [0, 48)");
  config["mlp_only_layers"] = json::array();
  config["num_experts_per_tok"] = 129;
  expect_parse_error(config, "num_experts_per_tok must be between 1 and num_experts 128, got 129");
}

}  // namespace
}  // namespace adallm::io
