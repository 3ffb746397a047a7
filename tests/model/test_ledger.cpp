// The checkpoint ledger on synthetic published shapes (sparse files), hand-made broken checkpoints and the
// committed transformers fixtures.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/model_config.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "model/footprint.h"
#include "model/ledger.h"
#include "model/synthetic.h"
#include "quant/nvfp4.h"
#include "test_util.h"

namespace adallm::model {
namespace {
using adallm::test::TempDir;
using json = nlohmann::json;
namespace fs = std::filesystem;

struct Loaded {
  io::ModelConfig config;
  io::QuantConfig quant;
  io::Checkpoint checkpoint;
};

Loaded load(const fs::path& dir) {
  std::ifstream in(dir / "config.json");
  const json raw = json::parse(in);
  return {io::load_model_config(dir / "config.json"), io::load_quant_config(dir, raw), io::Checkpoint::open(dir)};
}

std::string bind_error(const fs::path& dir) {
  Loaded l = load(dir);
  try {
    bind_checkpoint(l.checkpoint, l.config, l.quant);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Ledger, Qwen3_8B_NvfpModelOptFootprintMatchesTheRoofline) {
  TempDir dir;
  write_synthetic_checkpoint(dir.path(), preset_config("qwen3-8b"), SyntheticLayout::nvfp4_modelopt);
  Loaded l = load(dir.path());
  const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
  ASSERT_EQ(m.layers.size(), 36u);
  EXPECT_FALSE(m.lm_head_tied);
  EXPECT_FALSE(m.lm_head.nvfp4);
  EXPECT_TRUE(m.layers[0].attn.q_proj.nvfp4);
  EXPECT_EQ(m.layers[35].mlp->down_proj.in_features, 12288);
  EXPECT_FLOAT_EQ(m.layers[3].attn.k_proj.weight_scale_2, 1.0f / 2688.0f);

  const Footprint f = compute_footprint(m, l.config);
  // Per layer: q, o 4096x4096; k, v 1024x4096; gate, up 12288x4096; down 4096x12288.
  const int64_t linear_params = 36LL * (2 * 4096 * 4096 + 2 * 1024 * 4096 + 3 * 12288 * 4096);
  EXPECT_EQ(linear_params, 6945767424LL);  // the 6.95 B of docs/targets.md
  EXPECT_EQ(f.storage.at("NVFP4").parameters, linear_params);
  EXPECT_EQ(f.storage.at("NVFP4").bytes, static_cast<uint64_t>(linear_params / 2));
  EXPECT_EQ(f.storage.at("NVFP4 block scales").bytes, static_cast<uint64_t>(linear_params / 16));
  EXPECT_EQ(f.nvfp4_linears, 36 * 7);
  EXPECT_EQ(f.dense_linears, 1);
  const uint64_t lm_head = 151936ULL * 4096 * 2;
  const uint64_t norms = 36ULL * (2 * 4096 + 2 * 128) * 2 + 4096 * 2;
  const uint64_t expected = static_cast<uint64_t>(linear_params) * 9 / 16 + 36 * 7 * 4 + lm_head + norms + 4096 * 2;
  EXPECT_EQ(f.decode_bytes_per_token, expected);
  EXPECT_NEAR(static_cast<double>(f.decode_bytes_per_token) / 1e9, 5.15, 0.01);
  EXPECT_EQ(f.kv_bytes_per_token_fp8, 2ULL * 36 * 8 * 128);
  EXPECT_EQ(f.kv_bytes_per_token_bf16, 2 * f.kv_bytes_per_token_fp8);
}

TEST(Ledger, EveryPresetInEveryLayoutBinds) {
  for (const std::string& preset : preset_names()) {
    for (SyntheticLayout layout :
         {SyntheticLayout::bf16, SyntheticLayout::nvfp4_modelopt, SyntheticLayout::nvfp4_compressed_tensors}) {
      SCOPED_TRACE(preset + " layout " + std::to_string(static_cast<int>(layout)));
      TempDir dir;
      write_synthetic_checkpoint(dir.path(), preset_config(preset), layout);
      Loaded l = load(dir.path());
      const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
      EXPECT_EQ(static_cast<int64_t>(m.layers.size()), l.config.num_hidden_layers);
      for (const LinearTensors* lin : m.linears()) {
        EXPECT_EQ(lin->nvfp4, layout != SyntheticLayout::bf16 && lin != &m.lm_head) << lin->module;
        if (lin->nvfp4) {
          EXPECT_FLOAT_EQ(lin->weight_scale_2, 1.0f / 2688.0f) << lin->module;
        }
      }
      EXPECT_TRUE(m.warnings.empty()) << m.warnings.front();
    }
  }
}

TEST(Ledger, MoeActiveBytesCountTopKExperts) {
  TempDir dir;
  write_synthetic_checkpoint(dir.path(), preset_config("qwen3-30b-a3b"), SyntheticLayout::nvfp4_modelopt);
  Loaded l = load(dir.path());
  const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
  ASSERT_TRUE(m.layers[0].moe.has_value());
  EXPECT_EQ(m.layers[0].moe->experts.size(), 128u);
  const Footprint f = compute_footprint(m, l.config);
  const int64_t expert = 3LL * 768 * 2048;
  const int64_t attention = 2LL * 4096 * 2048 + 2LL * 512 * 2048;
  EXPECT_EQ(f.storage.at("NVFP4").parameters, 48 * (128 * expert + attention));
  EXPECT_EQ(f.active_parameters,
            2048 + 48 * (8 * expert + attention + 128 * 2048) + 151936LL * 2048);  // + routers, lm_head
}

std::vector<TensorSpec> qwen3_8b_specs(SyntheticLayout layout) {
  return checkpoint_layout(io::parse_model_config(preset_config("qwen3-8b"), "preset"), layout);
}

void write_dir(const fs::path& dir, const std::vector<TensorSpec>& specs, SyntheticLayout layout) {
  write_synthetic_checkpoint(dir, preset_config("qwen3-8b"), layout);  // configs
  write_sparse_safetensors(dir / "model.safetensors", specs);         // then the tensors under test
}

TEST(Ledger, ReportsEveryMissingTensorAtOnce) {
  TempDir dir;
  auto specs = qwen3_8b_specs(SyntheticLayout::nvfp4_modelopt);
  std::erase_if(specs, [](const TensorSpec& s) {
    return s.name == "model.layers.3.mlp.down_proj.weight_scale" || s.name == "model.layers.7.self_attn.k_norm.weight" ||
           s.name == "lm_head.weight";
  });
  write_dir(dir.path(), specs, SyntheticLayout::nvfp4_modelopt);
  const std::string e = bind_error(dir.path());
  EXPECT_NE(e.find("3 problem(s)"), std::string::npos) << e;
  EXPECT_NE(e.find("missing model.layers.3.mlp.down_proj.weight_scale (F8_E4M3 [4096, 768])"), std::string::npos) << e;
  EXPECT_NE(e.find("missing model.layers.7.self_attn.k_norm.weight"), std::string::npos) << e;
  EXPECT_NE(e.find("missing lm_head.weight: config.json has tie_word_embeddings false"), std::string::npos) << e;
  EXPECT_NE(e.find(dir.path().string()), std::string::npos) << e;
}

TEST(Ledger, WrongDtypeAndShapeNameExpectedFoundAndFile) {
  TempDir dir;
  auto specs = qwen3_8b_specs(SyntheticLayout::nvfp4_modelopt);
  for (TensorSpec& s : specs) {
    if (s.name == "model.layers.3.mlp.down_proj.weight_scale") s.dtype = DType::BF16;
    if (s.name == "model.layers.0.self_attn.q_proj.weight") s.shape = {4096, 4096};
  }
  write_dir(dir.path(), specs, SyntheticLayout::nvfp4_modelopt);
  const std::string e = bind_error(dir.path());
  EXPECT_NE(e.find("tensor model.layers.3.mlp.down_proj.weight_scale: expected F8_E4M3 [4096, 768], got BF16 [4096, "
                   "768] in "),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("model.safetensors"), std::string::npos) << e;
  EXPECT_NE(e.find("tensor model.layers.0.self_attn.q_proj.weight: expected U8 [4096, 2048], got U8 [4096, 4096]"),
            std::string::npos)
      << e;
}

TEST(Ledger, UnconsumedTensorIsAnErrorButInvFreqIsIgnored) {
  TempDir dir;
  auto specs = qwen3_8b_specs(SyntheticLayout::bf16);
  specs.push_back({"model.layers.0.self_attn.rotary_emb.inv_freq", DType::F32, {64}});
  write_dir(dir.path(), specs, SyntheticLayout::bf16);
  {
    Loaded l = load(dir.path());
    const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
    ASSERT_EQ(m.ignored.size(), 1u);
    EXPECT_EQ(m.ignored[0], "model.layers.0.self_attn.rotary_emb.inv_freq");
  }
  specs.push_back({"model.layers.0.mlp.gate_proj.bias", DType::BF16, {12288}});
  write_dir(dir.path(), specs, SyntheticLayout::bf16);
  const std::string e = bind_error(dir.path());
  EXPECT_NE(e.find("1 tensor(s) not used by the qwen3 architecture: model.layers.0.mlp.gate_proj.bias (BF16 [12288]"),
            std::string::npos)
      << e;
}

TEST(Ledger, NvfpTensorsWithoutQuantConfigAreRefused) {
  TempDir dir;
  write_dir(dir.path(), qwen3_8b_specs(SyntheticLayout::nvfp4_modelopt), SyntheticLayout::bf16);
  const std::string e = bind_error(dir.path());
  EXPECT_NE(e.find("model.layers.0.self_attn.q_proj holds NVFP4 tensors but the checkpoint has no quantization config"),
            std::string::npos)
      << e;
}

TEST(Ledger, FusedExpertLayoutIsNamed) {
  TempDir dir;
  auto config = preset_config("qwen3-30b-a3b");
  config["num_hidden_layers"] = 1;
  config["num_experts"] = 2;
  config["num_experts_per_tok"] = 2;
  write_synthetic_checkpoint(dir.path(), config, SyntheticLayout::bf16);
  auto specs = checkpoint_layout(io::parse_model_config(config, "c"), SyntheticLayout::bf16);
  std::erase_if(specs, [](const TensorSpec& s) { return s.name.find(".experts.") != std::string::npos; });
  specs.push_back({"model.layers.0.mlp.experts.gate_up_proj", DType::BF16, {2, 1536, 2048}});
  specs.push_back({"model.layers.0.mlp.experts.down_proj", DType::BF16, {2, 2048, 768}});
  write_sparse_safetensors(dir / "model.safetensors", specs);
  const std::string e = bind_error(dir.path());
  EXPECT_NE(e.find("layer 0 stores its experts fused (mlp.experts.gate_up_proj)"), std::string::npos) << e;
}

// A varied synthetic checkpoint (what `adallm bench --synthetic` loads): embeddings, lm_head and routers
// random and distinct, norms ones, the NVFP4 linear layers random (codes any byte, block scales valid e4m3
// in [0.5, 2)), and it still binds.
TEST(Synthetic, VariedCheckpointHasRandomEmbeddingsAndRoutersAndUnitNorms) {
  TempDir dir;
  json config = preset_config("qwen3-30b-a3b");
  config.update(json{{"hidden_size", 64}, {"intermediate_size", 64}, {"moe_intermediate_size", 32},
                     {"num_hidden_layers", 2}, {"num_attention_heads", 2}, {"num_key_value_heads", 1},
                     {"head_dim", 32}, {"vocab_size", 100}, {"num_experts", 8}, {"num_experts_per_tok", 2}});
  write_synthetic_checkpoint(dir.path(), config, SyntheticLayout::nvfp4_modelopt, /*varied=*/true);
  const io::Checkpoint c = io::Checkpoint::open(dir.path());
  const auto values = [&](const std::string& name) { return io::tensor_to_f32(c.get(name)); };
  const auto spread = [](const std::vector<float>& v) {
    const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    return *hi - *lo;
  };
  const std::vector<float> embed = values("model.embed_tokens.weight"), router = values("model.layers.1.mlp.gate.weight");
  EXPECT_GT(spread(embed), 0.1f);
  EXPECT_LE(*std::max_element(embed.begin(), embed.end()), 0.0625f);
  EXPECT_GT(spread(router), 0.1f);
  EXPECT_GT(spread(values("lm_head.weight")), 0.1f);
  for (float v : values("model.layers.0.input_layernorm.weight")) ASSERT_EQ(v, 1.0f);
  for (float v : values("model.norm.weight")) ASSERT_EQ(v, 1.0f);
  const io::TensorInfo& q = c.get("model.layers.0.self_attn.q_proj.weight");
  EXPECT_GT(std::count_if(q.data, q.data + q.nbytes, [](uint8_t b) { return b != 0; }),
            static_cast<std::ptrdiff_t>(q.nbytes * 9 / 10));  // random bytes: 1 in 256 is zero
  const io::TensorInfo& q_scale = c.get("model.layers.0.self_attn.q_proj.weight_scale");
  EXPECT_TRUE(std::all_of(q_scale.data, q_scale.data + q_scale.nbytes, [](uint8_t b) { return b >= 0x30 && b <= 0x3F; }));
  EXPECT_EQ(bind_error(dir.path()), "");
}

// A producer that gave q, k and v different weight_scale_2 (vLLM takes the max and is off by the ratio):
// each shard keeps its own scale, and dequantizes exactly.
TEST(Ledger, FusedGroupWithUnequalScalesKeepsEachShardExact) {
  TempDir dir;
  json config = preset_config("qwen3-8b");
  config.update(json{{"hidden_size", 32}, {"intermediate_size", 32}, {"num_hidden_layers", 1},
                     {"num_attention_heads", 2}, {"num_key_value_heads", 1}, {"head_dim", 16}, {"vocab_size", 8}});
  write_synthetic_checkpoint(dir.path(), config, SyntheticLayout::nvfp4_modelopt);
  const auto specs = checkpoint_layout(io::parse_model_config(config, "c"), SyntheticLayout::nvfp4_modelopt);
  const std::map<std::string, float> scales = {{"model.layers.0.self_attn.q_proj.weight_scale_2", 0.5f},
                                               {"model.layers.0.self_attn.k_proj.weight_scale_2", 0.25f},
                                               {"model.layers.0.self_attn.v_proj.weight_scale_2", 0.125f}};
  io::SafetensorsWriter writer;
  for (const TensorSpec& s : specs) {
    size_t n = dtype_size(s.dtype);
    for (int64_t d : s.shape) n *= static_cast<size_t>(d);
    std::vector<uint8_t> bytes(n, 0);
    if (s.dtype == DType::U8) std::fill(bytes.begin(), bytes.end(), 0x21);        // codes 1 (0.5), 2 (1.0)
    if (s.dtype == DType::F8_E4M3) std::fill(bytes.begin(), bytes.end(), 0x38);   // 1.0
    if (s.dtype == DType::F32) {
      const auto it = scales.find(s.name);
      const float v = it == scales.end() ? 1.0f : it->second;
      std::memcpy(bytes.data(), &v, sizeof v);
    }
    writer.add(s.name, s.dtype, s.shape, std::move(bytes));
  }
  writer.write(dir / "model.safetensors");
  Loaded l = load(dir.path());
  const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
  const AttentionTensors& a = m.layers[0].attn;
  EXPECT_EQ(a.q_proj.weight_scale_2, 0.5f);
  EXPECT_EQ(a.k_proj.weight_scale_2, 0.25f);
  EXPECT_EQ(a.v_proj.weight_scale_2, 0.125f);
  for (const LinearTensors* lin : {&a.q_proj, &a.k_proj, &a.v_proj}) {
    const quant::Nvfp4View view{lin->weight->data, lin->weight_scale->data, lin->weight_scale_2, lin->out_features,
                                lin->in_features};
    std::vector<float> row(static_cast<size_t>(lin->in_features));
    quant::nvfp4_dequantize_row(view, 0, row.data());
    EXPECT_EQ(row[0], 0.5f * lin->weight_scale_2) << lin->module;
    EXPECT_EQ(row[1], 1.0f * lin->weight_scale_2) << lin->module;
  }
}

// ---- the committed transformers fixtures ----

TEST(LedgerFixtures, EveryFixtureBinds) {
  const fs::path root = adallm::test::fixtures_dir();
  ASSERT_TRUE(fs::exists(root / "fixtures.json")) << "fixtures missing under " << root;
  int bound = 0;
  for (const char* arch : {"llama", "qwen3", "qwen3_moe", "gemma3_text", "gemma3"}) {
    for (const char* variant : {"bf16", "nvfp4-modelopt", "nvfp4-ct"}) {
      SCOPED_TRACE(std::string(arch) + "/" + variant);
      Loaded l = load(root / arch / variant);
      const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
      EXPECT_TRUE(m.warnings.empty()) << m.warnings.front();
      const bool quantized = std::string(variant) != "bf16";
      for (const LinearTensors* lin : m.linears()) {
        const bool head = lin == &m.lm_head;
        EXPECT_EQ(lin->nvfp4, quantized && !head) << lin->module;
        if (lin->nvfp4) {
          EXPECT_TRUE(lin->input_scale.has_value()) << lin->module;
        }
      }
      if (quantized) {
        EXPECT_TRUE(m.layers[0].attn.has_kv_scales);
        // ModelOpt fused q/k/v: one weight_scale_2 for the group.
        EXPECT_EQ(m.layers[0].attn.q_proj.weight_scale_2, m.layers[0].attn.v_proj.weight_scale_2);
      }
      if (std::string(arch) == "gemma3") {
        EXPECT_EQ(m.prefix, "language_model.model.");  // what transformers 5.17 writes
        EXPECT_FALSE(m.ignored.empty());  // the vision tower
      }
      ++bound;
    }
  }
  EXPECT_EQ(bound, 15);
}

// Newer exports of Gemma3 multimodal checkpoints put the text model under model.language_model. and the
// vision tower under model.vision_tower.: the same fixture renamed that way binds the same.
TEST(LedgerFixtures, Gemma3NewerPrefixBinds) {
  TempDir dir;
  const fs::path src = adallm::test::fixtures_dir() / "gemma3" / "nvfp4-modelopt";
  for (const char* f : {"config.json", "hf_quant_config.json"}) fs::copy_file(src / f, dir / f);
  const io::Checkpoint original = io::Checkpoint::open(src);
  io::SafetensorsWriter writer;
  for (const io::TensorInfo* t : original.tensors()) {
    std::string name = t->name;
    if (name.starts_with("language_model.model.")) {
      name = "model.language_model." + name.substr(std::string("language_model.model.").size());
    } else {
      name = "model." + name;
    }
    writer.add(name, t->dtype, t->shape, std::vector<uint8_t>(t->data, t->data + t->nbytes));
  }
  writer.write(dir / "model.safetensors");
  Loaded l = load(dir.path());
  const ModelTensors m = bind_checkpoint(l.checkpoint, l.config, l.quant);
  EXPECT_EQ(m.prefix, "model.language_model.");
  EXPECT_TRUE(m.lm_head_tied);
  EXPECT_TRUE(m.layers[2].attn.q_proj.nvfp4);
  EXPECT_TRUE(m.warnings.empty()) << m.warnings.front();
  EXPECT_TRUE(std::all_of(m.ignored.begin(), m.ignored.end(), [](const std::string& n) {
    return n.starts_with("model.vision_tower.") || n.starts_with("model.multi_modal_projector.");
  }));
  EXPECT_FALSE(m.ignored.empty());
}

}  // namespace
}  // namespace adallm::model
