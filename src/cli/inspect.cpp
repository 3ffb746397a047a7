// `adallm inspect MODEL [--json]`: what a checkpoint is, as AdaLLM will load it: architecture, quantization,
// parameters and bytes per storage type, KV bytes per token and the bytes a decode step reads. It runs the
// same validation as loading (config, quant config, ledger), so a checkpoint that inspects cleanly loads.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "core/log.h"
#include "io/model_config.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "model/footprint.h"
#include "model/ledger.h"

namespace adallm::cli {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

struct InspectArgs {
  std::string model, revision;
  bool as_json = false;
};

std::string human_bytes(double bytes) {
  char buf[32];
  if (bytes >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", bytes / 1e9);
  else if (bytes >= 1e6) std::snprintf(buf, sizeof buf, "%.2f MB", bytes / 1e6);
  else if (bytes >= 1e3) std::snprintf(buf, sizeof buf, "%.1f kB", bytes / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  return buf;
}

std::string human_count(double n) {
  char buf[32];
  if (n >= 1e9) std::snprintf(buf, sizeof buf, "%.2f B", n / 1e9);
  else if (n >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M", n / 1e6);
  else if (n >= 1e3) std::snprintf(buf, sizeof buf, "%.1f K", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%.0f", n);
  return buf;
}

json rope_json(const io::RopeConfig& r) {
  json j = {{"rope_type", r.rope_type}, {"theta", r.theta}};
  if (r.rope_type != "default") j["factor"] = r.factor;
  if (r.rope_type == "llama3") {
    j["low_freq_factor"] = r.low_freq_factor;
    j["high_freq_factor"] = r.high_freq_factor;
  }
  if (r.original_max_position_embeddings) j["original_max_position_embeddings"] = r.original_max_position_embeddings;
  return j;
}

json architecture_json(const io::ModelConfig& c) {
  json layer_types = json::array();
  for (io::LayerType t : c.layer_types) layer_types.push_back(io::layer_type_name(t));
  json j = {{"model_type", c.model_type},
            {"architecture", io::architecture_name(c.arch)},
            {"hidden_size", c.hidden_size},
            {"intermediate_size", c.intermediate_size},
            {"num_hidden_layers", c.num_hidden_layers},
            {"num_attention_heads", c.num_attention_heads},
            {"num_key_value_heads", c.num_key_value_heads},
            {"head_dim", c.head_dim},
            {"vocab_size", c.vocab_size},
            {"max_position_embeddings", c.max_position_embeddings},
            {"rms_norm_eps", c.rms_norm_eps},
            {"tie_word_embeddings", c.tie_word_embeddings},
            {"attention_scale", c.attention_scale},
            {"layer_types", layer_types},
            {"rope_full_attention", rope_json(c.rope_full)}};
  if (c.sliding_window) {
    j["sliding_window"] = *c.sliding_window;
    j["rope_sliding_attention"] = rope_json(c.rope_sliding);
  }
  if (c.arch == io::Architecture::qwen3_moe) {
    j["moe"] = {{"num_experts", c.num_experts}, {"num_experts_per_tok", c.num_experts_per_tok},
                {"moe_intermediate_size", c.moe_intermediate_size}, {"decoder_sparse_step", c.decoder_sparse_step},
                {"mlp_only_layers", c.mlp_only_layers}, {"norm_topk_prob", c.norm_topk_prob}};
  }
  return j;
}

// Modules that stay dense: unquantized Linears by name, the rest by kind.
json dense_modules_json(const model::ModelTensors& m) {
  json linears = json::array();
  for (const model::LinearTensors* lin : m.linears()) {
    if (!lin->nvfp4) linears.push_back(lin->module);
  }
  int64_t norms = 1;
  int64_t routers = 0;
  for (const model::LayerTensors& l : m.layers) {
    for (const io::TensorInfo* t : {l.input_layernorm, l.post_attention_layernorm, l.pre_feedforward_layernorm,
                                    l.post_feedforward_layernorm, l.attn.q_norm, l.attn.k_norm}) {
      norms += t ? 1 : 0;
    }
    routers += l.moe ? 1 : 0;
  }
  return {{"linears", linears}, {"embed_tokens", m.embed_tokens->describe()}, {"norm_tensors", norms},
          {"routers", routers}};
}

json quant_json(const io::QuantConfig& q, const model::ModelTensors& m) {
  int64_t kv_layers = 0;
  int64_t fused_scale_mismatch = 0;
  for (const model::LayerTensors& l : m.layers) {
    kv_layers += l.attn.has_kv_scales ? 1 : 0;
    const auto& a = l.attn;
    if (a.q_proj.nvfp4 && (a.q_proj.weight_scale_2 != a.k_proj.weight_scale_2 ||
                           a.q_proj.weight_scale_2 != a.v_proj.weight_scale_2)) {
      ++fused_scale_mismatch;
    }
  }
  json j = {{"format", io::quant_format_name(q.format)},
            {"quant_algo", q.quant_algo},
            {"execution", q.quantized() ? "W4A16 (4-bit weights, 16-bit activations)" : "dense"},
            {"group_size", q.group_size},
            {"exclude_modules", q.exclude_modules},
            {"kv_cache", q.kv_cache == io::KvCacheQuant::fp8_e4m3 ? "fp8_e4m3" : "none"},
            {"kv_scale_layers", kv_layers},
            {"qkv_layers_with_unequal_weight_scale_2", fused_scale_mismatch},
            {"producer", q.producer},
            {"source", q.source},
            {"dense_modules", dense_modules_json(m)}};
  return j;
}

json footprint_json(const model::Footprint& f, const io::Checkpoint& ckpt) {
  json storage = json::object();
  for (const auto& [key, s] : f.storage) {
    storage[key] = {{"tensors", s.tensors}, {"parameters", s.parameters}, {"bytes", s.bytes}};
  }
  return {{"storage", storage},
          {"total_parameters", f.total_parameters},
          {"tensor_bytes", f.tensor_bytes},
          {"checkpoint_bytes", ckpt.file_bytes()},
          {"checkpoint_files", ckpt.files().size()},
          {"nvfp4_linears", f.nvfp4_linears},
          {"dense_linears", f.dense_linears},
          {"kv_bytes_per_token", {{"fp8", f.kv_bytes_per_token_fp8}, {"bf16", f.kv_bytes_per_token_bf16}}},
          {"decode_bytes_per_token", f.decode_bytes_per_token},
          {"decode_active_parameters", f.active_parameters}};
}

void print_text(const json& j) {
  const json& a = j["architecture"];
  const json& q = j["quantization"];
  const json& f = j["footprint"];
  std::printf("model         %s\n", j["path"].get<std::string>().c_str());
  std::printf("architecture  %s (model_type %s): %lld layers, hidden %lld, intermediate %lld, heads %lld/%lld kv, "
              "head_dim %lld, vocab %lld%s\n",
              a["architecture"].get<std::string>().c_str(), a["model_type"].get<std::string>().c_str(),
              a["num_hidden_layers"].get<long long>(), a["hidden_size"].get<long long>(),
              a["intermediate_size"].get<long long>(), a["num_attention_heads"].get<long long>(),
              a["num_key_value_heads"].get<long long>(), a["head_dim"].get<long long>(),
              a["vocab_size"].get<long long>(), a["tie_word_embeddings"].get<bool>() ? ", tied embeddings" : "");
  if (a.contains("moe")) {
    std::printf("moe           %lld experts, top %lld, moe_intermediate %lld, norm_topk_prob %s\n",
                a["moe"]["num_experts"].get<long long>(), a["moe"]["num_experts_per_tok"].get<long long>(),
                a["moe"]["moe_intermediate_size"].get<long long>(),
                a["moe"]["norm_topk_prob"].get<bool>() ? "true" : "false");
  }
  long long sliding = 0;
  for (const auto& t : a["layer_types"]) sliding += t == "sliding_attention" ? 1 : 0;
  const json& rf = a["rope_full_attention"];
  std::printf("attention     scale %.6g; rope %s theta %g", a["attention_scale"].get<double>(),
              rf["rope_type"].get<std::string>().c_str(), rf["theta"].get<double>());
  if (sliding > 0) {
    const json& rs = a["rope_sliding_attention"];
    std::printf("; sliding window %lld on %lld of %lld layers (rope %s theta %g)", a["sliding_window"].get<long long>(),
                sliding, a["num_hidden_layers"].get<long long>(), rs["rope_type"].get<std::string>().c_str(),
                rs["theta"].get<double>());
  }
  std::printf("\n");
  if (q["format"] == "none") {
    std::printf("quantization  none (dense checkpoint)\n");
  } else {
    std::printf("quantization  %s %s, group %lld, runs as %s; kv cache %s (scales on %lld layers)\n",
                q["format"].get<std::string>().c_str(), q["quant_algo"].get<std::string>().c_str(),
                q["group_size"].get<long long>(), q["execution"].get<std::string>().c_str(),
                q["kv_cache"].get<std::string>().c_str(), q["kv_scale_layers"].get<long long>());
    std::printf("              from %s, producer %s\n", q["source"].get<std::string>().c_str(),
                q["producer"].get<std::string>().c_str());
  }
  const json& d = q["dense_modules"];
  std::string dense;
  for (const auto& m : d["linears"]) dense += (dense.empty() ? "" : ", ") + m.get<std::string>();
  std::printf("dense         embed_tokens %s; %lld norm tensors; %lld routers; linears: %s\n",
              d["embed_tokens"].get<std::string>().c_str(), d["norm_tensors"].get<long long>(),
              d["routers"].get<long long>(), dense.empty() ? "none" : dense.c_str());
  std::printf("parameters    %s total\n", human_count(f["total_parameters"].get<double>()).c_str());
  for (const auto& [key, s] : f["storage"].items()) {
    std::printf("  %-20s %6lld tensors %12s params %12s\n", key.c_str(), s["tensors"].get<long long>(),
                human_count(s["parameters"].get<double>()).c_str(), human_bytes(s["bytes"].get<double>()).c_str());
  }
  std::printf("checkpoint    %s in %lld file(s)\n", human_bytes(f["checkpoint_bytes"].get<double>()).c_str(),
              f["checkpoint_files"].get<long long>());
  std::printf("kv cache      %s per token in FP8, %s in BF16\n",
              human_bytes(f["kv_bytes_per_token"]["fp8"].get<double>()).c_str(),
              human_bytes(f["kv_bytes_per_token"]["bf16"].get<double>()).c_str());
  std::printf("decode reads  %s per token at batch 1 (%s parameters)\n",
              human_bytes(f["decode_bytes_per_token"].get<double>()).c_str(),
              human_count(f["decode_active_parameters"].get<double>()).c_str());
}

int run_inspect(const InspectArgs& args) {
  const fs::path dir(model_directory(args.model, args.revision));
  if (!fs::is_directory(dir)) {
    throw Error("model directory not found").file(args.model).hint("give a directory holding config.json and *.safetensors");
  }
  const fs::path config_path = dir / "config.json";
  const io::ModelConfig config = io::load_model_config(config_path);
  nlohmann::json raw;
  {
    std::ifstream in(config_path);
    raw = nlohmann::json::parse(in, nullptr, false);
  }
  const io::QuantConfig quant = io::load_quant_config(dir, raw);
  const io::Checkpoint checkpoint = io::Checkpoint::open(dir);
  const model::ModelTensors tensors = model::bind_checkpoint(checkpoint, config, quant);
  for (const std::string& w : tensors.warnings) log::warn(w);
  const model::Footprint footprint = model::compute_footprint(tensors, config);

  json j = {{"path", fs::absolute(dir).lexically_normal().string()},
            {"architecture", architecture_json(config)},
            {"quantization", quant_json(quant, tensors)},
            {"footprint", footprint_json(footprint, checkpoint)},
            {"ignored_tensors", tensors.ignored.size()},
            {"warnings", tensors.warnings}};
  if (args.as_json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    print_text(j);
  }
  return 0;
}

}  // namespace

Command add_inspect(CLI::App& app) {
  auto args = std::make_shared<InspectArgs>();
  CLI::App* sub = app.add_subcommand("inspect", "Describe a checkpoint: architecture, quantization, sizes, bytes per token");
  sub->add_option("model", args->model, kModelHelp)->required();
  add_revision_option(*sub, args->revision);
  sub->add_flag("--json", args->as_json, "print JSON instead of text");
  return [args] { return run_inspect(*args); };
}

}  // namespace adallm::cli
