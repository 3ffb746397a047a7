// config.json → ModelConfig for llama, qwen3, qwen3_moe, gemma3_text and gemma3 (text_config). Applies the
// defaults of the transformers config classes (4.x keyword defaults and 5.x dataclass fields agree on all
// used here), derives head_dim, the attention scale, one attention type per layer and the RoPE of each
// layer type, and refuses any field that changes the math in a way the model code does not implement.
// Which tensors the checkpoint holds is left to model/ledger.
#include "io/model_config.h"

#include <cmath>
#include <fstream>
#include <iterator>
#include <limits>
#include <string_view>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"

namespace adallm::io {
namespace {

using json = nlohmann::json;

constexpr const char* kSupportedModelTypes = "llama, qwen3, qwen3_moe, gemma3_text, gemma3";

// Defaults that differ between the config classes (LlamaConfig, Qwen3Config, Qwen3MoeConfig,
// Gemma3TextConfig). nullopt head_dim means hidden_size / num_attention_heads; nullopt
// num_key_value_heads means num_attention_heads.
struct FamilyDefaults {
  std::optional<int64_t> head_dim;
  std::optional<int64_t> num_key_value_heads;
  int64_t max_position_embeddings;
  double rope_theta;
  bool tie_word_embeddings;
};

FamilyDefaults defaults_for(Architecture arch) {
  switch (arch) {
    case Architecture::llama: return {std::nullopt, std::nullopt, 2048, 10000.0, false};
    case Architecture::qwen3: return {128, 32, 32768, 10000.0, false};
    case Architecture::qwen3_moe: return {std::nullopt, 4, 32768, 10000.0, false};
    case Architecture::gemma3: return {256, 4, 131072, 1000000.0, true};
  }
  return {std::nullopt, std::nullopt, 2048, 10000.0, false};
}

// Gemma3TextConfig-only defaults, relied on by the minimal text_config of the multimodal checkpoints.
constexpr int64_t kGemmaVocabSize = 262208;
constexpr int64_t kGemmaAttentionHeads = 8;
constexpr double kGemmaQueryPreAttnScalar = 256.0;
constexpr int64_t kGemmaSlidingWindow = 4096;
constexpr int64_t kGemmaSlidingWindowPattern = 6;
constexpr double kGemmaLocalRopeTheta = 10000.0;

// One JSON object of the config with the path its fields are named by in messages ("text_config.").
class Reader {
 public:
  Reader(const json& object, std::string prefix, const std::string& source)
      : object_(object), prefix_(std::move(prefix)), source_(source) {}

  const std::string& source() const { return source_; }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }
  [[noreturn]] void fail(const std::string& message) const { throw Error(message).file(source_); }

  // The value of `key`; nullptr when absent or JSON null (transformers treats both as "use the default").
  bool present(std::string_view key) const { return object_.contains(key); }
  const json* find(std::string_view key) const {
    auto it = object_.find(key);
    return (it == object_.end() || it->is_null()) ? nullptr : &*it;
  }
  bool has(std::string_view key) const { return find(key) != nullptr; }

  [[noreturn]] void type_error(std::string_view key, const json& value, const char* expected) const {
    fail("field \"" + name(key) + "\": expected " + expected + ", got " + json_excerpt(value));
  }

  std::optional<int64_t> optional_integer(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max())) {
      type_error(key, *v, "an integer");
    }
    if (v->is_number_integer()) return v->get<int64_t>();
    // Python writes 16.0 where an int was meant now and then; accept exact integral values only.
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9.0e15) return static_cast<int64_t>(d);
    }
    type_error(key, *v, "an integer");
  }
  int64_t integer(std::string_view key, int64_t fallback) const { return optional_integer(key).value_or(fallback); }
  int64_t required_integer(std::string_view key) const {
    if (auto v = optional_integer(key)) return *v;
    fail("missing required field \"" + name(key) + "\"");
  }

  std::optional<double> optional_number(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number()) type_error(key, *v, "a number");
    return v->get<double>();
  }
  double number(std::string_view key, double fallback) const { return optional_number(key).value_or(fallback); }

  bool boolean(std::string_view key, bool fallback) const {
    const json* v = find(key);
    if (v == nullptr) return fallback;
    if (!v->is_boolean()) type_error(key, *v, "true or false");
    return v->get<bool>();
  }

  std::optional<std::string> optional_string(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) type_error(key, *v, "a string");
    return v->get<std::string>();
  }

  // An object field; nullptr when absent, null or {} (transformers tests these with `or`).
  const json* optional_object(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return nullptr;
    if (!v->is_object()) type_error(key, *v, "an object");
    return v->empty() ? nullptr : v;
  }

  // eos_token_id / bos_token_id: one id or a list of ids.
  std::optional<std::vector<int64_t>> token_ids(std::string_view key) const {
    const json* v = find(key);
    if (v == nullptr) return std::nullopt;
    const bool is_list = v->is_array();
    std::vector<int64_t> ids;
    for (const json& id : is_list ? *v : json::array({*v})) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0) {
        type_error(key, *v, "a non-negative token id or a list of them");
      }
      ids.push_back(id.get<int64_t>());
    }
    return ids;
  }

 private:
  const json& object_;
  std::string prefix_;
  const std::string& source_;
};

int64_t positive(const Reader& r, std::string_view key, int64_t value) {
  if (value <= 0) r.fail(r.name(key) + " must be positive, got " + std::to_string(value));
  return value;
}

double positive_number(const Reader& r, std::string_view key, double value) {
  if (!(value > 0.0) || !std::isfinite(value)) {
    r.fail(r.name(key) + " must be a positive number, got " + json(value).dump());
  }
  return value;
}

// partial_rotary_factor may sit at the top level (legacy) or inside a rope dict (transformers 5).
void check_partial_rotary(const Reader& r) {
  if (auto f = r.optional_number("partial_rotary_factor"); f && *f != 1.0) {
    r.fail(r.name("partial_rotary_factor") + " " + json(*f).dump() +
           " is not supported; only 1.0 (RoPE over the whole head_dim)");
  }
}

// YaRN as transformers' _compute_yarn_parameters reads it; attention_factor is always filled in so that
// consumers need no default of their own.
void parse_yarn(const Reader& r, int64_t max_position_embeddings, RopeConfig& rope) {
  rope.original_max_position_embeddings =
      positive(r, "original_max_position_embeddings",
               r.integer("original_max_position_embeddings", max_position_embeddings));
  // Without a factor transformers derives it from the two context lengths (DeepSeek-V3 style configs).
  rope.factor = positive_number(
      r, "factor",
      r.number("factor", double(max_position_embeddings) / double(rope.original_max_position_embeddings)));
  rope.beta_fast = r.number("beta_fast", 32.0);
  rope.beta_slow = r.number("beta_slow", 1.0);
  if (!r.boolean("truncate", true)) {
    r.fail(r.name("truncate") + " false is not supported (YaRN correction range without rounding)");
  }
  auto mscale = [](double factor, double m) { return factor <= 1.0 ? 1.0 : 0.1 * m * std::log(factor) + 1.0; };
  if (auto af = r.optional_number("attention_factor")) {
    rope.attention_factor = *af;
  } else {
    const double m = r.number("mscale", 0.0);
    const double m_all = r.number("mscale_all_dim", 0.0);
    rope.attention_factor = (m != 0.0 && m_all != 0.0) ? mscale(rope.factor, m) / mscale(rope.factor, m_all)
                                                       : mscale(rope.factor, 1.0);
  }
}

// One flat rope dict ({"rope_type" or "type", "rope_theta", "factor", ...}); an empty Reader gives the
// default RoPE with `default_theta`.
RopeConfig parse_rope(const Reader& r, double default_theta, int64_t max_position_embeddings) {
  RopeConfig rope;
  std::string type_key = r.has("rope_type") ? "rope_type" : "type";
  rope.rope_type = r.optional_string(type_key).value_or("default");
  rope.theta = positive_number(r, "rope_theta", r.number("rope_theta", default_theta));
  check_partial_rotary(r);
  if (rope.rope_type == "default") return rope;
  if (rope.rope_type == "linear") {
    if (!r.has("factor")) r.fail("missing required field \"" + r.name("factor") + "\" for linear RoPE");
    rope.factor = positive_number(r, "factor", r.number("factor", 1.0));
  } else if (rope.rope_type == "llama3") {
    for (const char* key : {"factor", "low_freq_factor", "high_freq_factor"}) {
      if (!r.has(key)) r.fail("missing required field \"" + r.name(key) + "\" for llama3 RoPE");
    }
    rope.factor = positive_number(r, "factor", r.number("factor", 1.0));
    rope.low_freq_factor = positive_number(r, "low_freq_factor", r.number("low_freq_factor", 1.0));
    rope.high_freq_factor = positive_number(r, "high_freq_factor", r.number("high_freq_factor", 4.0));
    if (!(rope.low_freq_factor < rope.high_freq_factor)) {
      r.fail(r.name("low_freq_factor") + " must be below high_freq_factor, got " +
             json(rope.low_freq_factor).dump() + " and " + json(rope.high_freq_factor).dump());
    }
    rope.original_max_position_embeddings =
        positive(r, "original_max_position_embeddings",
                 r.integer("original_max_position_embeddings", max_position_embeddings));
  } else if (rope.rope_type == "yarn") {
    parse_yarn(r, max_position_embeddings, rope);
  } else {
    r.fail(r.name(type_key) + " \"" + rope.rope_type +
           "\" is not supported; supported: default, linear, llama3, yarn");
  }
  return rope;
}

bool is_layer_type_keyed(const json& rope_parameters) {
  for (const auto& [key, value] : rope_parameters.items()) {
    if (key != "full_attention" && key != "sliding_attention") return false;
  }
  return true;
}

// A rope dict to read: the named entry of `parent`, or an empty object.
Reader rope_reader(const json* parent, const std::string& key, const std::string& prefix, const Reader& r) {
  static const json empty = json::object();
  if (parent == nullptr) return Reader(empty, prefix, r.source());
  Reader outer(*parent, prefix, r.source());
  const json* entry = outer.optional_object(key);
  return Reader(entry ? *entry : empty, prefix + key + ".", r.source());
}

// Gemma3: full layers take rope_theta (1e6) plus rope_scaling; sliding layers rope_local_base_freq (1e4),
// never scaled in the legacy form. transformers 5 writes rope_parameters keyed by layer type; a flat
// rope_parameters applies to the full layers (convert_rope_params_to_dict).
void read_gemma_ropes(const Reader& r, ModelConfig& c) {
  const json* params = r.optional_object("rope_parameters");
  const json* scaling = r.optional_object("rope_scaling");
  const bool keyed = params != nullptr && is_layer_type_keyed(*params);
  const double full_theta =
      positive_number(r, "rope_theta", r.number("rope_theta", defaults_for(Architecture::gemma3).rope_theta));
  const double local_theta =
      positive_number(r, "rope_local_base_freq", r.number("rope_local_base_freq", kGemmaLocalRopeTheta));

  json full = json::object();
  std::string full_name = r.name("rope_parameters.");
  if (keyed) {
    full_name = r.name("rope_parameters.full_attention.");
    if (const json* entry = Reader(*params, r.name("rope_parameters."), r.source()).optional_object("full_attention")) {
      full = *entry;
    }
  } else if (params != nullptr) {
    full = *params;
  }
  if (scaling != nullptr) {
    full.update(*scaling);
    full_name = r.name("rope_scaling.");
  }
  c.rope_full = parse_rope(Reader(full, full_name, r.source()), full_theta, c.max_position_embeddings);
  c.rope_sliding = parse_rope(rope_reader(keyed ? params : nullptr, "sliding_attention", r.name("rope_parameters."), r),
                              local_theta, c.max_position_embeddings);
}

// Llama / Qwen3: one RoPE for every layer. Legacy rope_scaling wins over rope_parameters, as in
// transformers 5's convert_rope_params_to_dict; a layer-keyed rope_parameters needs an entry per type used.
void read_ropes(const Reader& r, ModelConfig& c) {
  check_partial_rotary(r);
  if (c.arch == Architecture::gemma3) return read_gemma_ropes(r, c);
  const double theta = positive_number(r, "rope_theta", r.number("rope_theta", defaults_for(c.arch).rope_theta));
  const json* params = r.optional_object("rope_parameters");
  if (const json* scaling = r.optional_object("rope_scaling")) {
    c.rope_full = parse_rope(Reader(*scaling, r.name("rope_scaling."), r.source()), theta, c.max_position_embeddings);
    c.rope_sliding = c.rope_full;
    return;
  }
  if (params == nullptr || !is_layer_type_keyed(*params)) {
    static const json empty = json::object();
    c.rope_full = parse_rope(Reader(params ? *params : empty, r.name("rope_parameters."), r.source()), theta,
                             c.max_position_embeddings);
    c.rope_sliding = c.rope_full;
    return;
  }
  bool uses[2] = {false, false};
  for (LayerType t : c.layer_types) uses[t == LayerType::sliding_attention] = true;
  for (const char* key : {"full_attention", "sliding_attention"}) {
    const bool used = uses[std::string_view(key) == "sliding_attention"];
    if (used && !params->contains(key)) {
      r.fail(r.name("rope_parameters") + " has no \"" + key + "\" entry but layer_types uses it");
    }
  }
  const std::string prefix = r.name("rope_parameters.");
  c.rope_full = parse_rope(rope_reader(params, "full_attention", prefix, r), theta, c.max_position_embeddings);
  c.rope_sliding = uses[1] ? parse_rope(rope_reader(params, "sliding_attention", prefix, r), theta,
                                        c.max_position_embeddings)
                           : c.rope_full;
}

std::vector<LayerType> explicit_layer_types(const Reader& r, int64_t num_layers) {
  const json* list = r.find("layer_types");
  if (!list->is_array()) r.type_error("layer_types", *list, "a list of layer types");
  if (int64_t(list->size()) != num_layers) {
    r.fail(r.name("layer_types") + " has " + std::to_string(list->size()) +
           " entries, expected num_hidden_layers = " + std::to_string(num_layers));
  }
  std::vector<LayerType> types;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& t = (*list)[i];
    if (t == "full_attention") {
      types.push_back(LayerType::full_attention);
    } else if (t == "sliding_attention") {
      types.push_back(LayerType::sliding_attention);
    } else {
      r.fail(r.name("layer_types") + "[" + std::to_string(i) + "] " + json_excerpt(t) +
             " is not supported; expected \"full_attention\" or \"sliding_attention\"");
    }
  }
  return types;
}

// layer_types and sliding_window. An explicit layer_types list wins; otherwise Gemma3 repeats
// sliding_window_pattern (5 local, 1 global), Qwen3 slides from max_window_layers on when
// use_sliding_window is set (Qwen3Config.__post_init__), and everything else is full attention.
void read_layer_types(const Reader& r, ModelConfig& c) {
  const int64_t n = c.num_hidden_layers;
  // An explicit null means "no window" to transformers; only an absent key takes the class default.
  auto window_or = [&](int64_t fallback) {
    return r.present("sliding_window") ? r.optional_integer("sliding_window") : std::optional<int64_t>(fallback);
  };
  std::optional<int64_t> window;
  if (c.arch == Architecture::gemma3) {
    window = window_or(kGemmaSlidingWindow);
  } else if (r.boolean("use_sliding_window", false)) {
    if (c.arch == Architecture::qwen3_moe) {
      r.fail(r.name("use_sliding_window") + " true is not supported for qwen3_moe");
    }
    // Qwen3Config keeps sliding_window (default 4096) only when use_sliding_window is set.
    window = window_or(4096);
  }
  if (r.has("layer_types")) {
    c.layer_types = explicit_layer_types(r, n);
  } else if (c.arch == Architecture::gemma3) {
    const int64_t pattern = positive(
        r, "sliding_window_pattern",
        r.has("sliding_window_pattern") ? r.integer("sliding_window_pattern", kGemmaSlidingWindowPattern)
                                        : r.integer("_sliding_window_pattern", kGemmaSlidingWindowPattern));
    for (int64_t i = 0; i < n; ++i) {
      c.layer_types.push_back((i + 1) % pattern != 0 ? LayerType::sliding_attention : LayerType::full_attention);
    }
  } else {
    const int64_t max_window_layers = r.integer("max_window_layers", 28);
    for (int64_t i = 0; i < n; ++i) {
      const bool sliding = window.has_value() && i >= max_window_layers;
      c.layer_types.push_back(sliding ? LayerType::sliding_attention : LayerType::full_attention);
    }
  }
  bool any_sliding = false;
  for (LayerType t : c.layer_types) any_sliding |= t == LayerType::sliding_attention;
  if (any_sliding) {
    if (!window) r.fail(r.name("layer_types") + " lists sliding_attention layers but sliding_window is null");
    c.sliding_window = positive(r, "sliding_window", *window);
  }
}

// Fields that would change the forward pass in ways the model code does not implement.
void check_unsupported(const Reader& r, const ModelConfig& c) {
  if (r.boolean("attention_bias", false)) {
    r.fail(r.name("attention_bias") + " true is not supported: AdaLLM's q/k/v/o projections have no bias");
  }
  if (c.arch == Architecture::llama && r.boolean("mlp_bias", false)) {
    r.fail(r.name("mlp_bias") + " true is not supported: AdaLLM's gate/up/down projections have no bias");
  }
  if (c.arch != Architecture::gemma3) {
    const std::string act = r.optional_string("hidden_act").value_or("silu");
    if (act != "silu") {
      r.fail(r.name("hidden_act") + " \"" + act + "\" is not supported for " + c.model_type + "; expected \"silu\"");
    }
    return;
  }
  // Gemma3 reads hidden_activation only; "gelu_tanh" is the same tanh approximation under another name.
  const std::string act = r.optional_string("hidden_activation").value_or("gelu_pytorch_tanh");
  if (act != "gelu_pytorch_tanh" && act != "gelu_tanh") {
    r.fail(r.name("hidden_activation") + " \"" + act +
           "\" is not supported for gemma3; expected \"gelu_pytorch_tanh\" or \"gelu_tanh\"");
  }
  for (const char* key : {"attn_logit_softcapping", "final_logit_softcapping"}) {
    if (const json* v = r.find(key)) r.fail(r.name(key) + " " + json_excerpt(*v) + " is not supported yet for gemma3");
  }
  if (r.boolean("use_bidirectional_attention", false)) {
    r.fail(r.name("use_bidirectional_attention") + " true is not supported (bidirectional attention)");
  }
}

void read_shape(const Reader& r, ModelConfig& c) {
  const FamilyDefaults d = defaults_for(c.arch);
  const bool gemma = c.arch == Architecture::gemma3;
  c.hidden_size = positive(r, "hidden_size", r.required_integer("hidden_size"));
  c.intermediate_size = positive(r, "intermediate_size", r.required_integer("intermediate_size"));
  c.num_hidden_layers = positive(r, "num_hidden_layers", r.required_integer("num_hidden_layers"));
  c.num_attention_heads = positive(r, "num_attention_heads", gemma ? r.integer("num_attention_heads", kGemmaAttentionHeads)
                                                                    : r.required_integer("num_attention_heads"));
  c.vocab_size = positive(r, "vocab_size", gemma ? r.integer("vocab_size", kGemmaVocabSize) : r.required_integer("vocab_size"));
  c.num_key_value_heads = positive(r, "num_key_value_heads",
                                   r.integer("num_key_value_heads", d.num_key_value_heads.value_or(c.num_attention_heads)));
  if (c.num_attention_heads % c.num_key_value_heads != 0) {
    r.fail(r.name("num_attention_heads") + " " + std::to_string(c.num_attention_heads) +
           " is not a multiple of num_key_value_heads " + std::to_string(c.num_key_value_heads));
  }
  std::optional<int64_t> head_dim = r.optional_integer("head_dim");
  if (!head_dim) head_dim = d.head_dim;
  if (head_dim) {
    c.head_dim = positive(r, "head_dim", *head_dim);
  } else if (c.hidden_size % c.num_attention_heads != 0) {
    r.fail(r.name("hidden_size") + " " + std::to_string(c.hidden_size) + " is not a multiple of num_attention_heads " +
           std::to_string(c.num_attention_heads) + " and head_dim is not given");
  } else {
    c.head_dim = c.hidden_size / c.num_attention_heads;
  }
  c.max_position_embeddings =
      positive(r, "max_position_embeddings", r.integer("max_position_embeddings", d.max_position_embeddings));
  c.rms_norm_eps = positive_number(r, "rms_norm_eps", r.number("rms_norm_eps", 1e-6));
  if (gemma) {
    c.query_pre_attn_scalar =
        positive_number(r, "query_pre_attn_scalar", r.number("query_pre_attn_scalar", kGemmaQueryPreAttnScalar));
    c.hidden_act = Activation::gelu_tanh;
    c.scale_embeddings = true;
    c.gemma_norm = true;
  }
  c.attention_scale = 1.0 / std::sqrt(gemma ? *c.query_pre_attn_scalar : double(c.head_dim));
}

// Qwen3MoeConfig fields and defaults. transformers 5 saves num_experts as num_local_experts.
void read_moe(const Reader& r, ModelConfig& c) {
  c.num_experts = r.has("num_experts") ? r.integer("num_experts", 128) : r.integer("num_local_experts", 128);
  c.num_experts_per_tok = r.integer("num_experts_per_tok", 8);
  c.moe_intermediate_size = r.integer("moe_intermediate_size", 768);
  c.decoder_sparse_step = r.integer("decoder_sparse_step", 1);
  c.norm_topk_prob = r.boolean("norm_topk_prob", false);
  if (c.num_experts < 0) r.fail(r.name("num_experts") + " must not be negative, got " + std::to_string(c.num_experts));
  if (c.decoder_sparse_step < 1) {
    r.fail(r.name("decoder_sparse_step") + " must be >= 1, got " + std::to_string(c.decoder_sparse_step));
  }
  if (c.num_experts > 0) {
    if (c.num_experts_per_tok < 1 || c.num_experts_per_tok > c.num_experts) {
      r.fail(r.name("num_experts_per_tok") + " must be between 1 and num_experts " + std::to_string(c.num_experts) +
             ", got " + std::to_string(c.num_experts_per_tok));
    }
    positive(r, "moe_intermediate_size", c.moe_intermediate_size);
  }
  if (const json* list = r.find("mlp_only_layers")) {
    if (!list->is_array()) r.type_error("mlp_only_layers", *list, "a list of layer indices");
    for (const json& v : *list) {
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= c.num_hidden_layers) {
        r.fail(r.name("mlp_only_layers") + " entry " + json_excerpt(v) + " is not a layer index in [0, " +
               std::to_string(c.num_hidden_layers) + ")");
      }
      c.mlp_only_layers.push_back(v.get<int64_t>());
    }
  }
}

// dtype and special tokens. The gemma3 wrapper keeps eos_token_id and torch_dtype at the top level.
void read_tokens(const Reader& root, const Reader& r, ModelConfig& c) {
  for (const Reader* where : {&root, &r}) {
    for (const char* key : {"torch_dtype", "dtype"}) {
      if (c.torch_dtype.empty()) c.torch_dtype = where->optional_string(key).value_or("");
    }
  }
  auto ids = [&](const char* key) {
    auto v = root.token_ids(key);
    if (!v && c.multimodal_wrapper) v = r.token_ids(key);
    return v.value_or(std::vector<int64_t>{});
  };
  c.bos_token_ids = ids("bos_token_id");
  c.eos_token_ids = ids("eos_token_id");
  // Gemma3TextConfig's class defaults; Llama's (1, 2) are Llama 2's ids and are not applied.
  if (c.arch == Architecture::gemma3 && c.bos_token_ids.empty()) c.bos_token_ids = {2};
  if (c.arch == Architecture::gemma3 && c.eos_token_ids.empty()) c.eos_token_ids = {1};
  const bool tie_default = defaults_for(c.arch).tie_word_embeddings;
  c.tie_word_embeddings = r.boolean("tie_word_embeddings", c.multimodal_wrapper
                                                               ? root.boolean("tie_word_embeddings", tie_default)
                                                               : tie_default);
}

json read_json_file(const std::filesystem::path& path, std::string_view what) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) throw Error(std::string(what) + " not found").file(path.string());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + std::string(what)).file(path.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  return parse_json_strict(p, p + bytes.size(), what, path.string());
}

}  // namespace

const char* architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::llama: return "llama";
    case Architecture::qwen3: return "qwen3";
    case Architecture::qwen3_moe: return "qwen3_moe";
    case Architecture::gemma3: return "gemma3";
  }
  return "unknown";
}

const char* layer_type_name(LayerType type) {
  return type == LayerType::sliding_attention ? "sliding_attention" : "full_attention";
}

bool ModelConfig::is_moe_layer(int64_t layer) const {
  if (layer < 0 || layer >= num_hidden_layers) {
    throw Error("layer " + std::to_string(layer) + " is outside [0, " + std::to_string(num_hidden_layers) + ")");
  }
  if (arch != Architecture::qwen3_moe || num_experts <= 0 || decoder_sparse_step < 1) return false;
  for (int64_t dense : mlp_only_layers) {
    if (dense == layer) return false;
  }
  return (layer + 1) % decoder_sparse_step == 0;
}

const RopeConfig& ModelConfig::rope_for_layer(int64_t layer) const {
  if (layer < 0 || layer >= int64_t(layer_types.size())) {
    throw Error("layer " + std::to_string(layer) + " is outside [0, " + std::to_string(layer_types.size()) + ")");
  }
  return layer_types[size_t(layer)] == LayerType::sliding_attention ? rope_sliding : rope_full;
}

ModelConfig parse_model_config(const nlohmann::json& config, const std::string& source) {
  if (!config.is_object()) throw Error("config must be a JSON object, got " + json_excerpt(config)).file(source);
  Reader root(config, "", source);
  ModelConfig c;
  const std::optional<std::string> model_type = root.optional_string("model_type");
  if (!model_type) root.fail(std::string("missing required field \"model_type\"; supported: ") + kSupportedModelTypes);
  c.model_type = *model_type;
  if (c.model_type == "llama") {
    c.arch = Architecture::llama;
  } else if (c.model_type == "qwen3") {
    c.arch = Architecture::qwen3;
  } else if (c.model_type == "qwen3_moe") {
    c.arch = Architecture::qwen3_moe;
  } else if (c.model_type == "gemma3_text" || c.model_type == "gemma3") {
    c.arch = Architecture::gemma3;
    c.multimodal_wrapper = c.model_type == "gemma3";
  } else {
    root.fail("unsupported model_type \"" + c.model_type + "\"; supported: " + kSupportedModelTypes);
  }
  static const json empty = json::object();
  const json* text = c.multimodal_wrapper ? root.optional_object("text_config") : &config;
  Reader r(text ? *text : empty, c.multimodal_wrapper ? "text_config." : "", source);

  read_shape(r, c);
  check_unsupported(r, c);
  read_layer_types(r, c);
  read_ropes(r, c);
  if (c.arch == Architecture::qwen3_moe) read_moe(r, c);
  read_tokens(root, r, c);
  return c;
}

ModelConfig load_model_config(const std::filesystem::path& config_json) {
  return parse_model_config(read_json_file(config_json, "config"), config_json.string());
}

}  // namespace adallm::io
