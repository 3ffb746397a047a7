// Synthetic checkpoint layouts and their sparse writer.
#include "model/synthetic.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "core/float_codecs.h"

namespace adallm::model {
namespace fs = std::filesystem;
using json = nlohmann::json;

json preset_config(std::string_view preset) {
  if (preset == "qwen3-8b") {
    return {{"architectures", {"Qwen3ForCausalLM"}}, {"model_type", "qwen3"}, {"hidden_size", 4096},
            {"intermediate_size", 12288}, {"num_hidden_layers", 36}, {"num_attention_heads", 32},
            {"num_key_value_heads", 8}, {"head_dim", 128}, {"vocab_size", 151936}, {"max_position_embeddings", 40960},
            {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", false},
            {"hidden_act", "silu"}, {"attention_bias", false}, {"torch_dtype", "bfloat16"}};
  }
  if (preset == "llama-3.1-8b") {
    return {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 4096},
            {"intermediate_size", 14336}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
            {"num_key_value_heads", 8}, {"head_dim", 128}, {"vocab_size", 128256},
            {"max_position_embeddings", 131072}, {"rms_norm_eps", 1e-5}, {"rope_theta", 500000.0},
            {"rope_scaling", {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                              {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}}},
            {"tie_word_embeddings", false}, {"hidden_act", "silu"}, {"torch_dtype", "bfloat16"}};
  }
  if (preset == "qwen3-30b-a3b") {
    return {{"architectures", {"Qwen3MoeForCausalLM"}}, {"model_type", "qwen3_moe"}, {"hidden_size", 2048},
            {"intermediate_size", 6144}, {"num_hidden_layers", 48}, {"num_attention_heads", 32},
            {"num_key_value_heads", 4}, {"head_dim", 128}, {"vocab_size", 151936}, {"max_position_embeddings", 40960},
            {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0}, {"tie_word_embeddings", false},
            {"num_experts", 128}, {"num_experts_per_tok", 8}, {"moe_intermediate_size", 768},
            {"decoder_sparse_step", 1}, {"mlp_only_layers", json::array()}, {"norm_topk_prob", true},
            {"hidden_act", "silu"}, {"torch_dtype", "bfloat16"}};
  }
  if (preset == "gemma3-27b") {
    return {{"architectures", {"Gemma3ForCausalLM"}}, {"model_type", "gemma3_text"}, {"hidden_size", 5376},
            {"intermediate_size", 21504}, {"num_hidden_layers", 62}, {"num_attention_heads", 32},
            {"num_key_value_heads", 16}, {"head_dim", 128}, {"query_pre_attn_scalar", 168}, {"vocab_size", 262208},
            {"max_position_embeddings", 131072}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
            {"rope_local_base_freq", 10000.0}, {"rope_scaling", {{"rope_type", "linear"}, {"factor", 8.0}}},
            {"sliding_window", 1024}, {"sliding_window_pattern", 6}, {"tie_word_embeddings", true},
            {"hidden_activation", "gelu_pytorch_tanh"}, {"torch_dtype", "bfloat16"}};
  }
  std::string names;
  for (const std::string& n : preset_names()) names += (names.empty() ? "" : ", ") + n;
  throw Error("unknown synthetic model \"" + std::string(preset) + "\"").hint("choose one of " + names);
}

std::vector<std::string> preset_names() { return {"qwen3-8b", "llama-3.1-8b", "qwen3-30b-a3b", "gemma3-27b"}; }

namespace {

void add_linear(std::vector<TensorSpec>& out, const std::string& module, int64_t rows, int64_t cols,
                SyntheticLayout layout) {
  switch (layout) {
    case SyntheticLayout::bf16:
      out.push_back({module + ".weight", DType::BF16, {rows, cols}});
      return;
    case SyntheticLayout::nvfp4_modelopt:
      out.push_back({module + ".weight", DType::U8, {rows, cols / 2}});
      out.push_back({module + ".weight_scale", DType::F8_E4M3, {rows, cols / 16}});
      out.push_back({module + ".weight_scale_2", DType::F32, {}});
      return;
    case SyntheticLayout::nvfp4_compressed_tensors:
      out.push_back({module + ".weight_packed", DType::U8, {rows, cols / 2}});
      out.push_back({module + ".weight_scale", DType::F8_E4M3, {rows, cols / 16}});
      out.push_back({module + ".weight_global_scale", DType::F32, {1}});
      return;
  }
}

void add_mlp(std::vector<TensorSpec>& out, const std::string& base, int64_t hidden, int64_t inter,
             SyntheticLayout layout) {
  add_linear(out, base + "gate_proj", inter, hidden, layout);
  add_linear(out, base + "up_proj", inter, hidden, layout);
  add_linear(out, base + "down_proj", hidden, inter, layout);
}

}  // namespace

std::vector<TensorSpec> checkpoint_layout(const io::ModelConfig& c, SyntheticLayout layout) {
  std::vector<TensorSpec> out;
  const int64_t h = c.hidden_size;
  out.push_back({"model.embed_tokens.weight", DType::BF16, {c.vocab_size, h}});
  out.push_back({"model.norm.weight", DType::BF16, {h}});
  if (!c.tie_word_embeddings) out.push_back({"lm_head.weight", DType::BF16, {c.vocab_size, h}});
  for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    out.push_back({p + "input_layernorm.weight", DType::BF16, {h}});
    out.push_back({p + "post_attention_layernorm.weight", DType::BF16, {h}});
    if (c.arch == io::Architecture::gemma3) {
      out.push_back({p + "pre_feedforward_layernorm.weight", DType::BF16, {h}});
      out.push_back({p + "post_feedforward_layernorm.weight", DType::BF16, {h}});
    }
    const std::string a = p + "self_attn.";
    add_linear(out, a + "q_proj", c.num_attention_heads * c.head_dim, h, layout);
    add_linear(out, a + "k_proj", c.num_key_value_heads * c.head_dim, h, layout);
    add_linear(out, a + "v_proj", c.num_key_value_heads * c.head_dim, h, layout);
    add_linear(out, a + "o_proj", h, c.num_attention_heads * c.head_dim, layout);
    if (c.arch != io::Architecture::llama) {
      out.push_back({a + "q_norm.weight", DType::BF16, {c.head_dim}});
      out.push_back({a + "k_norm.weight", DType::BF16, {c.head_dim}});
    }
    if (c.arch == io::Architecture::qwen3_moe && c.is_moe_layer(i)) {
      out.push_back({p + "mlp.gate.weight", DType::BF16, {c.num_experts, h}});
      for (int64_t e = 0; e < c.num_experts; ++e) {
        add_mlp(out, p + "mlp.experts." + std::to_string(e) + ".", h, c.moe_intermediate_size, layout);
      }
    } else {
      add_mlp(out, p + "mlp.", h, c.intermediate_size, layout);
    }
  }
  return out;
}

void write_synthetic_checkpoint(const fs::path& dir, const json& config_json, SyntheticLayout layout, bool varied) {
  json config = config_json;
  if (layout == SyntheticLayout::nvfp4_compressed_tensors) {
    config["quantization_config"] = {
        {"quant_method", "compressed-tensors"}, {"format", "nvfp4-pack-quantized"}, {"ignore", {"lm_head"}},
        {"config_groups",
         {{"group_0", {{"targets", {"Linear"}},
                       {"weights", {{"num_bits", 4}, {"type", "float"}, {"strategy", "tensor_group"},
                                    {"group_size", 16}, {"symmetric", true}, {"dynamic", false}}}}}}}};
  }
  const io::ModelConfig parsed = io::parse_model_config(config, "synthetic config");
  std::vector<TensorSpec> specs = checkpoint_layout(parsed, layout);
  if (varied) {
    for (TensorSpec& s : specs) {
      // NVFP4 linear layers: random e2m1 codes and block scales, so that no kernel is timed on zeros.
      if (s.dtype == DType::U8 || s.dtype == DType::F8_E4M3) {
        s.fill = SyntheticFill::random;
        continue;
      }
      if (s.dtype != DType::BF16) continue;
      const bool router = parsed.arch == io::Architecture::qwen3_moe && s.name.ends_with(".mlp.gate.weight");
      if (s.name == "model.embed_tokens.weight" || s.name == "lm_head.weight" || router) {
        s.fill = SyntheticFill::random;
      } else if (s.shape.size() == 1 && s.name.ends_with("norm.weight")) {
        s.fill = SyntheticFill::ones;
      }
    }
  }

  fs::create_directories(dir);
  {
    std::ofstream out(dir / "config.json");
    out << config.dump(2) << "\n";
  }
  if (layout == SyntheticLayout::nvfp4_modelopt) {
    std::vector<std::string> exclude = {"lm_head"};
    if (parsed.arch == io::Architecture::qwen3_moe) exclude.push_back("model.layers.*.mlp.gate");
    std::ofstream out(dir / "hf_quant_config.json");
    out << json{{"producer", {{"name", "adallm-synthetic"}, {"version", "0"}}},
                {"quantization", {{"quant_algo", "NVFP4"}, {"kv_cache_quant_algo", "FP8"}, {"group_size", 16},
                                  {"exclude_modules", exclude}}}}
               .dump(2)
        << "\n";
  }

  write_sparse_safetensors(dir / "model.safetensors", specs);
}

void write_sparse_safetensors(const fs::path& file, const std::vector<TensorSpec>& specs) {
  // Header with contiguous offsets; F32 scalars (per-tensor scales) get 1/2688, the rest stays a sparse hole.
  json header = {{"__metadata__", {{"format", "pt"}, {"producer", "adallm synthetic"}}}};
  uint64_t offset = 0;
  std::vector<std::pair<uint64_t, float>> scalars;
  for (const TensorSpec& s : specs) {
    uint64_t n = dtype_size(s.dtype);
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    header[s.name] = {{"dtype", dtype_name(s.dtype)}, {"shape", s.shape}, {"data_offsets", {offset, offset + n}}};
    // ModelOpt multipliers are amax/2688 of a unit amax; compressed-tensors stores the reciprocal.
    const bool reciprocal = s.name.ends_with("global_scale");
    if (s.dtype == DType::F32 && n == sizeof(float)) scalars.emplace_back(offset, reciprocal ? 2688.0f : 1.0f / 2688.0f);
    offset += n;
  }
  std::string text = header.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  const int fd = ::open(file.c_str(), O_CREAT | O_TRUNC | O_WRONLY, 0644);
  if (fd < 0) throw Error(std::string("cannot create: ") + std::strerror(errno)).file(file.string());
  static_assert(std::endian::native == std::endian::little, "safetensors lengths are little-endian");
  const uint64_t header_len = text.size();
  const uint64_t data_start = 8 + header_len;
  bool ok = ::pwrite(fd, &header_len, 8, 0) == 8 &&
            ::pwrite(fd, text.data(), text.size(), 8) == static_cast<ssize_t>(text.size()) &&
            ::ftruncate(fd, static_cast<off_t>(data_start + offset)) == 0;
  for (const auto& [at, value] : scalars) {
    ok = ok && ::pwrite(fd, &value, sizeof value, static_cast<off_t>(data_start + at)) == sizeof value;
  }
  // Filled tensors, in 4 MB pieces, from a xorshift generator (fast enough for GBs; the values only need
  // to differ): BF16 ones, or uniform in ±2^-4; U8 (packed e2m1 pairs) random bytes, every code valid;
  // F8_E4M3 (block scales) random in [0.5, 2) (codes 0x30..0x3F), never zero, NaN or negative.
  uint64_t at = 0, state = 0x9E3779B97F4A7C15ull;
  const auto next = [&state] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  std::vector<uint16_t> piece;
  std::vector<uint8_t> bytes_piece;
  for (const TensorSpec& s : specs) {
    uint64_t n = 1;
    for (int64_t d : s.shape) n *= static_cast<uint64_t>(d);
    const uint64_t bytes = n * dtype_size(s.dtype);
    if (s.fill != SyntheticFill::zeros && (s.dtype == DType::U8 || s.dtype == DType::F8_E4M3)) {
      if (s.fill != SyntheticFill::random) throw Error("synthetic tensor " + s.name + ": byte tensors can only be random");
      for (uint64_t done = 0; ok && done < n;) {
        const uint64_t count = std::min<uint64_t>(n - done, uint64_t{4} << 20);
        bytes_piece.resize(count);
        for (uint64_t i = 0; i < count; i += 8) {
          uint64_t r = next();
          for (uint64_t j = i; j < std::min(count, i + 8); ++j, r >>= 8) {
            const auto byte = static_cast<uint8_t>(r);
            bytes_piece[j] = s.dtype == DType::U8 ? byte : static_cast<uint8_t>(0x30 | (byte & 0x0F));
          }
        }
        const auto len = static_cast<ssize_t>(count);
        ok = ::pwrite(fd, bytes_piece.data(), count, static_cast<off_t>(data_start + at + done)) == len;
        done += count;
      }
    } else if (s.fill != SyntheticFill::zeros) {
      if (s.dtype != DType::BF16) throw Error("synthetic tensor " + s.name + ": only BF16, U8 and F8_E4M3 tensors can be filled");
      for (uint64_t done = 0; ok && done < n;) {
        const uint64_t count = std::min<uint64_t>(n - done, uint64_t{2} << 20);
        piece.resize(count);
        for (uint16_t& v : piece) {
          if (s.fill == SyntheticFill::ones) {
            v = 0x3F80;  // 1.0
            continue;
          }
          v = f32_to_bf16((static_cast<float>(next() >> 40) / float(1 << 24) - 0.5f) * 0.125f);
        }
        const auto len = static_cast<ssize_t>(count * 2);
        ok = ::pwrite(fd, piece.data(), static_cast<size_t>(len), static_cast<off_t>(data_start + at + done * 2)) == len;
        done += count;
      }
    }
    at += bytes;
  }
  ::close(fd);
  if (!ok) throw Error(std::string("cannot write: ") + std::strerror(errno)).file(file.string());
}

}  // namespace adallm::model
