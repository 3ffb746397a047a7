// Checkpoint ledger: binds tensors by name for llama, qwen3, qwen3_moe and gemma3 and keeps account of
// what was consumed. Quantized or not is decided per Linear from the tensors present (U8 `weight` or
// `weight_packed` plus `weight_scale`); a disagreement with the quant config's exclude list is a warning,
// because published exclude lists are written loosely (wildcards with literal layer numbers, etc.).
#include "model/ledger.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <set>

#include "core/error.h"
#include "core/float_codecs.h"
#include "io/quant_config.h"

namespace adallm::model {
namespace {

using io::TensorInfo;

constexpr size_t kMaxListed = 20;

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string dtypes_string(std::initializer_list<DType> dtypes) {
  std::string s;
  for (DType d : dtypes) s += (s.empty() ? "" : "|") + std::string(dtype_name(d));
  return s;
}

std::string join_capped(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size() && i < kMaxListed; ++i) s += (i ? "; " : "") + items[i];
  if (items.size() > kMaxListed) s += "; ... and " + std::to_string(items.size() - kMaxListed) + " more";
  return s;
}

bool is_scalar_shape(const std::vector<int64_t>& shape) {
  return shape.empty() || (shape.size() == 1 && shape[0] == 1);
}

constexpr std::initializer_list<DType> kDense = {DType::BF16, DType::F16, DType::F32};

class Ledger {
 public:
  explicit Ledger(const io::Checkpoint& checkpoint) : checkpoint_(checkpoint) {}

  bool has(const std::string& name) const { return checkpoint_.find(name) != nullptr; }

  // A tensor that may be absent; consumed when present.
  const TensorInfo* optional(const std::string& name) {
    const TensorInfo* t = checkpoint_.find(name);
    if (t) consumed_.insert(name);
    return t;
  }

  // A tensor that must be present with one of `dtypes` and exactly `shape` ({} accepts [] and [1]).
  const TensorInfo* require(const std::string& name, std::initializer_list<DType> dtypes,
                            const std::vector<int64_t>& shape) {
    const TensorInfo* t = optional(name);
    if (t == nullptr) {
      problems_.push_back("missing " + name + " (" + dtypes_string(dtypes) + " " + shape_string(shape) + ")");
      return nullptr;
    }
    const bool dtype_ok = std::find(dtypes.begin(), dtypes.end(), t->dtype) != dtypes.end();
    const bool shape_ok = shape.empty() ? is_scalar_shape(t->shape) : t->shape == shape;
    if (!dtype_ok || !shape_ok) {
      problems_.push_back("tensor " + name + ": expected " + dtypes_string(dtypes) + " " +
                          (shape.empty() ? std::string("scalar") : shape_string(shape)) + ", got " +
                          t->describe() + " in " + t->file);
      return nullptr;
    }
    return t;
  }

  void problem(std::string text) { problems_.push_back(std::move(text)); }
  void warning(std::string text) { warnings_.push_back(std::move(text)); }
  const std::vector<std::string>& warnings() const { return warnings_; }

  void throw_if_problems(const std::string& arch) const {
    if (problems_.empty()) return;
    throw Error("checkpoint does not match the " + arch + " architecture of its config.json: " +
                std::to_string(problems_.size()) + " problem(s): " + join_capped(problems_))
        .file(checkpoint_.directory().string());
  }

  // Tensors nobody consumed: ignorable ones go to `ignored`, the rest are an error.
  void check_unconsumed(bool (*ignorable)(const std::string&, const io::ModelConfig&), const io::ModelConfig& config,
                        std::vector<std::string>& ignored) const {
    std::vector<std::string> unknown;
    for (const TensorInfo* t : checkpoint_.tensors()) {
      if (consumed_.count(t->name)) continue;
      if (ignorable(t->name, config)) {
        ignored.push_back(t->name);
      } else {
        unknown.push_back(t->name + " (" + t->describe() + ", " + t->file + ")");
      }
    }
    if (!unknown.empty()) {
      throw Error(std::to_string(unknown.size()) + " tensor(s) not used by the " +
                  std::string(io::architecture_name(config.arch)) + " architecture: " + join_capped(unknown))
          .file(checkpoint_.directory().string())
          .hint("is config.json's model_type right for these weights?");
    }
  }

 private:
  const io::Checkpoint& checkpoint_;
  std::set<std::string, std::less<>> consumed_;
  std::vector<std::string> problems_;
  std::vector<std::string> warnings_;
};

bool ignorable_tensor(const std::string& name, const io::ModelConfig& config) {
  if (name.size() >= 9 && name.ends_with(".inv_freq")) return true;  // rotary buffers saved by old exports
  if (config.multimodal_wrapper) {
    return name.find("vision_tower.") != std::string::npos || name.find("multi_modal_projector.") != std::string::npos;
  }
  return false;
}

float positive_scale(Ledger& ledger, const TensorInfo* t, bool reciprocal) {
  if (t == nullptr) return 1.0f;
  const float v = read_scalar(*t);
  if (!std::isfinite(v) || v <= 0.0f) {
    ledger.problem("tensor " + t->name + ": expected a finite positive scale, got " + std::to_string(v) + " in " +
                   t->file);
    return 1.0f;
  }
  return reciprocal ? 1.0f / v : v;
}

LinearTensors bind_linear(Ledger& ledger, const io::QuantConfig& quant, const std::string& module, int64_t out,
                          int64_t in) {
  LinearTensors lin;
  lin.module = module;
  lin.out_features = out;
  lin.in_features = in;
  const bool ct_layout = ledger.has(module + ".weight_packed");
  const TensorInfo* probe = ct_layout ? nullptr : ledger.optional(module + ".weight");
  lin.nvfp4 = ct_layout || (probe != nullptr && probe->dtype == DType::U8);
  if (!lin.nvfp4) {
    lin.weight = ledger.require(module + ".weight", kDense, {out, in});
    if (lin.weight && quant.quantized() && !quant.is_excluded(module)) {
      ledger.warning(module + " is stored " + std::string(dtype_name(lin.weight->dtype)) +
                     " although the quant config does not exclude it");
    }
    return lin;
  }
  if (in % 16 != 0) {
    ledger.problem(module + ": NVFP4 needs in_features divisible by 16, config gives " + std::to_string(in));
    return lin;
  }
  if (!quant.quantized()) {
    ledger.problem(module + " holds NVFP4 tensors but the checkpoint has no quantization config "
                   "(hf_quant_config.json or config.json quantization_config)");
  } else if (quant.is_excluded(module)) {
    ledger.warning(module + " is stored NVFP4 although the quant config excludes it");
  }
  lin.weight = ledger.require(module + (ct_layout ? ".weight_packed" : ".weight"), {DType::U8}, {out, in / 2});
  lin.weight_scale = ledger.require(module + ".weight_scale", {DType::F8_E4M3}, {out, in / 16});
  if (ledger.has(module + ".weight_scale_2")) {
    lin.weight_scale_2 = positive_scale(ledger, ledger.require(module + ".weight_scale_2", {DType::F32}, {}), false);
  } else if (ledger.has(module + ".weight_global_scale")) {
    lin.weight_scale_2 =
        positive_scale(ledger, ledger.require(module + ".weight_global_scale", {DType::F32}, {}), true);
  } else {
    ledger.problem("missing " + module + ".weight_scale_2 (ModelOpt) or " + module +
                   ".weight_global_scale (compressed-tensors)");
  }
  if (ledger.has(module + ".input_scale")) {
    lin.input_scale = positive_scale(ledger, ledger.require(module + ".input_scale", {DType::F32}, {}), false);
  } else if (ledger.has(module + ".input_global_scale")) {
    lin.input_scale = positive_scale(ledger, ledger.require(module + ".input_global_scale", {DType::F32}, {}), true);
  }
  return lin;
}

MlpTensors bind_mlp(Ledger& ledger, const io::QuantConfig& quant, const std::string& base, int64_t hidden,
                    int64_t inter) {
  MlpTensors mlp;
  mlp.gate_proj = bind_linear(ledger, quant, base + "gate_proj", inter, hidden);
  mlp.up_proj = bind_linear(ledger, quant, base + "up_proj", inter, hidden);
  mlp.down_proj = bind_linear(ledger, quant, base + "down_proj", hidden, inter);
  return mlp;
}

// FP8 KV scales under the names each producer uses (nvfp4-format.md §2.5, §3); the first found wins.
void bind_kv_scales(Ledger& ledger, const std::string& attn, AttentionTensors& out) {
  const std::initializer_list<DType> kScaleTypes = {DType::F32, DType::BF16, DType::F16};
  auto find_scale = [&](std::initializer_list<const char*> names) -> const TensorInfo* {
    const TensorInfo* found = nullptr;
    for (const char* n : names) {
      if (!ledger.has(attn + n)) continue;
      const TensorInfo* t = ledger.require(attn + n, kScaleTypes, {});
      if (found == nullptr) found = t;
    }
    return found;
  };
  const TensorInfo* shared = find_scale({"kv_scale"});
  const TensorInfo* k = find_scale({"k_proj.k_scale", "k_scale", "k_proj.output_scale"});
  const TensorInfo* v = find_scale({"v_proj.v_scale", "v_scale", "v_proj.output_scale"});
  if (k == nullptr) k = shared;
  if (v == nullptr) v = shared;
  out.has_kv_scales = k != nullptr || v != nullptr;
  out.k_scale = positive_scale(ledger, k, false);
  out.v_scale = positive_scale(ledger, v, false);
}

LayerTensors bind_layer(Ledger& ledger, const io::ModelConfig& c, const io::QuantConfig& quant,
                        const std::string& prefix, int64_t index) {
  const std::string p = prefix + "layers." + std::to_string(index) + ".";
  const int64_t hidden = c.hidden_size;
  const int64_t q_dim = c.num_attention_heads * c.head_dim;
  const int64_t kv_dim = c.num_key_value_heads * c.head_dim;
  LayerTensors layer;
  layer.input_layernorm = ledger.require(p + "input_layernorm.weight", kDense, {hidden});
  layer.post_attention_layernorm = ledger.require(p + "post_attention_layernorm.weight", kDense, {hidden});
  if (c.arch == io::Architecture::gemma3) {
    layer.pre_feedforward_layernorm = ledger.require(p + "pre_feedforward_layernorm.weight", kDense, {hidden});
    layer.post_feedforward_layernorm = ledger.require(p + "post_feedforward_layernorm.weight", kDense, {hidden});
  }
  const std::string a = p + "self_attn.";
  layer.attn.q_proj = bind_linear(ledger, quant, a + "q_proj", q_dim, hidden);
  layer.attn.k_proj = bind_linear(ledger, quant, a + "k_proj", kv_dim, hidden);
  layer.attn.v_proj = bind_linear(ledger, quant, a + "v_proj", kv_dim, hidden);
  layer.attn.o_proj = bind_linear(ledger, quant, a + "o_proj", hidden, q_dim);
  if (c.arch != io::Architecture::llama) {
    layer.attn.q_norm = ledger.require(a + "q_norm.weight", kDense, {c.head_dim});
    layer.attn.k_norm = ledger.require(a + "k_norm.weight", kDense, {c.head_dim});
  }
  bind_kv_scales(ledger, a, layer.attn);

  if (c.arch == io::Architecture::qwen3_moe && c.is_moe_layer(index)) {
    if (ledger.has(p + "mlp.experts.gate_up_proj") || ledger.has(p + "mlp.experts.gate_up_proj.weight")) {
      ledger.problem("layer " + std::to_string(index) + " stores its experts fused (mlp.experts.gate_up_proj); "
                     "AdaLLM reads the per-expert layout of published checkpoints (mlp.experts.E.gate_proj)");
    }
    MoeTensors moe;
    moe.router = ledger.require(p + "mlp.gate.weight", kDense, {c.num_experts, hidden});
    for (int64_t e = 0; e < c.num_experts; ++e) {
      moe.experts.push_back(
          bind_mlp(ledger, quant, p + "mlp.experts." + std::to_string(e) + ".", hidden, c.moe_intermediate_size));
    }
    layer.moe = std::move(moe);
  } else {
    layer.mlp = bind_mlp(ledger, quant, p + "mlp.", hidden, c.intermediate_size);
  }
  return layer;
}

std::string detect_prefix(const io::Checkpoint& checkpoint, const io::ModelConfig& config) {
  const std::vector<std::string> candidates =
      config.multimodal_wrapper ? std::vector<std::string>{"model.language_model.", "language_model.model.", "model."}
                                : std::vector<std::string>{"model."};
  for (const std::string& p : candidates) {
    if (checkpoint.find(p + "embed_tokens.weight") != nullptr) return p;
  }
  std::string tried;
  for (const std::string& p : candidates) tried += (tried.empty() ? "" : ", ") + p + "embed_tokens.weight";
  throw Error("no token embedding table found: looked for " + tried)
      .file(checkpoint.directory().string())
      .hint("is this a " + std::string(io::architecture_name(config.arch)) + " checkpoint?");
}

}  // namespace

uint64_t LinearTensors::stored_bytes() const {
  uint64_t bytes = weight ? weight->nbytes : 0;
  if (weight_scale) bytes += weight_scale->nbytes + sizeof(float);
  return bytes;
}

std::vector<const LinearTensors*> ModelTensors::linears() const {
  std::vector<const LinearTensors*> out;
  auto add_mlp = [&](const MlpTensors& m) {
    out.push_back(&m.gate_proj);
    out.push_back(&m.up_proj);
    out.push_back(&m.down_proj);
  };
  for (const LayerTensors& layer : layers) {
    out.push_back(&layer.attn.q_proj);
    out.push_back(&layer.attn.k_proj);
    out.push_back(&layer.attn.v_proj);
    out.push_back(&layer.attn.o_proj);
    if (layer.mlp) add_mlp(*layer.mlp);
    if (layer.moe) {
      for (const MlpTensors& e : layer.moe->experts) add_mlp(e);
    }
  }
  out.push_back(&lm_head);
  return out;
}

float read_scalar(const io::TensorInfo& t) {
  if (t.numel() != 1 || t.data == nullptr) {
    throw Error("expected a scalar, got " + t.describe()).tensor(t.name).file(t.file);
  }
  switch (t.dtype) {
    case DType::F32: {
      float v;
      std::memcpy(&v, t.data, sizeof v);
      return v;
    }
    case DType::BF16: {
      uint16_t h;
      std::memcpy(&h, t.data, sizeof h);
      return bf16_to_f32(h);
    }
    case DType::F16: {
      uint16_t h;
      std::memcpy(&h, t.data, sizeof h);
      return f16_to_f32(h);
    }
    default:
      throw Error("expected an F32, BF16 or F16 scalar, got " + t.describe()).tensor(t.name).file(t.file);
  }
}

ModelTensors bind_checkpoint(const io::Checkpoint& checkpoint, const io::ModelConfig& config,
                             const io::QuantConfig& quant) {
  Ledger ledger(checkpoint);
  ModelTensors model;
  model.prefix = detect_prefix(checkpoint, config);
  model.embed_tokens =
      ledger.require(model.prefix + "embed_tokens.weight", kDense, {config.vocab_size, config.hidden_size});
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    model.layers.push_back(bind_layer(ledger, config, quant, model.prefix, i));
  }
  model.norm = ledger.require(model.prefix + "norm.weight", kDense, {config.hidden_size});

  // lm_head sits beside the decoder: "lm_head" for causal LMs, "language_model.lm_head" in old multimodal exports.
  std::string head = "lm_head";
  if (config.multimodal_wrapper && model.prefix == "language_model.model.") head = "language_model.lm_head";
  const bool head_present = ledger.has(head + ".weight") || ledger.has(head + ".weight_packed");
  if (config.tie_word_embeddings) {
    model.lm_head_tied = true;
    model.lm_head.module = head + " (tied to " + model.prefix + "embed_tokens)";
    model.lm_head.out_features = config.vocab_size;
    model.lm_head.in_features = config.hidden_size;
    model.lm_head.weight = model.embed_tokens;
    if (const TensorInfo* extra = ledger.optional(head + ".weight")) model.ignored.push_back(extra->name);
  } else if (!head_present) {
    ledger.problem("missing " + head + ".weight: config.json has tie_word_embeddings false");
  } else {
    model.lm_head = bind_linear(ledger, quant, head, config.vocab_size, config.hidden_size);
  }

  ledger.throw_if_problems(io::architecture_name(config.arch));
  ledger.check_unconsumed(&ignorable_tensor, config, model.ignored);
  model.warnings = ledger.warnings();
  return model;
}

}  // namespace adallm::model
