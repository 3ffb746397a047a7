// ModelOpt (hf_quant_config.json, or config.json quantization_config with quant_method "modelopt") and
// compressed-tensors ("nvfp4-pack-quantized") quantization configs → QuantConfig, plus the exclusion
// test for module names. Only NVFP4 weights (W4A4 or W4A16) with 16-element groups and an FP8 or
// unquantized KV cache are accepted; anything else is an error naming it. The tensors themselves are
// checked by model/ledger.
#include "io/quant_config.h"

#include <cctype>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/json_util.h"

namespace adallm::io {
namespace {

using json = nlohmann::json;

constexpr const char* kRunsNvfp4 =
    "AdaLLM runs NVFP4 checkpoints: ModelOpt quant_algo NVFP4 or W4A16_NVFP4, or compressed-tensors format "
    "nvfp4-pack-quantized";
constexpr const char* kNvfp4PackQuantized = "nvfp4-pack-quantized";
constexpr int64_t kNvfp4GroupSize = 16;

std::string upper(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return text;
}

std::string lower(std::string text) {
  for (char& ch : text) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return text;
}

[[noreturn]] void fail(const std::string& message, const std::string& source) { throw Error(message).file(source); }

// The member `key` of `object`; nullptr when absent or null. `where` names the object in messages.
const json* member(const json& object, const char* key) {
  auto it = object.find(key);
  return (it == object.end() || it->is_null()) ? nullptr : &*it;
}

std::optional<std::string> string_field(const json& object, const char* key, const std::string& where,
                                        const std::string& source) {
  const json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) fail("field \"" + where + key + "\": expected a string, got " + json_excerpt(*v), source);
  return v->get<std::string>();
}

std::optional<int64_t> integer_field(const json& object, const char* key, const std::string& where,
                                     const std::string& source) {
  const json* v = member(object, key);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number_integer()) {
    fail("field \"" + where + key + "\": expected an integer, got " + json_excerpt(*v), source);
  }
  return v->get<int64_t>();
}

std::vector<std::string> string_list(const json& object, const char* key, const std::string& where,
                                     const std::string& source) {
  std::vector<std::string> out;
  const json* v = member(object, key);
  if (v == nullptr) return out;
  if (!v->is_array()) fail("field \"" + where + key + "\": expected a list of strings, got " + json_excerpt(*v), source);
  for (const json& item : *v) {
    if (!item.is_string()) {
      fail("field \"" + where + key + "\": expected a list of strings, found " + json_excerpt(item), source);
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

const json* object_field(const json& object, const char* key, const std::string& where, const std::string& source) {
  const json* v = member(object, key);
  if (v != nullptr && !v->is_object()) {
    fail("field \"" + where + key + "\": expected an object, got " + json_excerpt(*v), source);
  }
  return v;
}

// "modelopt 0.23.0" from {"name": "modelopt", "version": "0.23.0"}.
std::string producer_string(const json& object, const std::string& source) {
  const json* p = object_field(object, "producer", "", source);
  if (p == nullptr) return "";
  std::string name = string_field(*p, "name", "producer.", source).value_or("");
  const std::string version = string_field(*p, "version", "producer.", source).value_or("");
  if (!version.empty()) name += (name.empty() ? "" : " ") + version;
  return name;
}

void check_algo(const std::string& algo, const std::string& field, const std::string& source) {
  if (algo == "NVFP4" || algo == "W4A16_NVFP4") return;
  std::string hint = kRunsNvfp4;
  if (algo == "MIXED_PRECISION") hint = "per-layer mixed precision is not supported; " + hint;
  throw Error(field + " \"" + algo + "\" is not supported").file(source).hint(hint);
}

KvCacheQuant kv_from_algo(const std::string& value, const std::string& field, const std::string& source) {
  const std::string algo = upper(value);
  if (algo == "NONE") return KvCacheQuant::none;
  if (algo == "FP8") return KvCacheQuant::fp8_e4m3;
  throw Error(field + " \"" + value + "\" is not supported")
      .file(source)
      .hint("AdaLLM's KV cache is FP8 (E4M3) or unquantized");
}

// {"num_bits": 8, "type": "float", ...} is an FP8 E4M3 cache with per-tensor scales; ModelOpt's converter
// writes the algo name as a plain string for anything that is not FP8.
KvCacheQuant kv_from_scheme(const json* scheme, const std::string& field, const std::string& source) {
  if (scheme == nullptr) return KvCacheQuant::none;
  if (scheme->is_string()) return kv_from_algo(scheme->get<std::string>(), field, source);
  if (!scheme->is_object()) fail("field \"" + field + "\": expected an object, got " + json_excerpt(*scheme), source);
  if (scheme->empty()) return KvCacheQuant::none;
  const int64_t bits = integer_field(*scheme, "num_bits", field + ".", source).value_or(0);
  const std::string type = string_field(*scheme, "type", field + ".", source).value_or("");
  const std::string strategy = string_field(*scheme, "strategy", field + ".", source).value_or("tensor");
  if (bits != 8 || type != "float") {
    throw Error(field + " with num_bits " + std::to_string(bits) + ", type \"" + type + "\" is not supported")
        .file(source)
        .hint("AdaLLM's KV cache is FP8 (E4M3) or unquantized");
  }
  if (strategy != "tensor") {
    throw Error(field + ".strategy \"" + strategy + "\" is not supported; expected per-tensor k/v scales")
        .file(source);
  }
  return KvCacheQuant::fp8_e4m3;
}

void check_group_size(std::optional<int64_t> group_size, const std::string& field, const std::string& source) {
  if (group_size && *group_size != kNvfp4GroupSize) {
    throw Error(field + " " + std::to_string(*group_size) + " is not supported; NVFP4 uses 16")
        .file(source)
        .hint(kRunsNvfp4);
  }
}

// A compressed-tensors "re:" entry, prepared once per pattern and shared between calls: the ledger asks
// about every Linear of the model (18k of them for a 128-expert MoE) and std::regex is slow. Patterns made
// only of literals, '\.', '.', '.*' and a final '$' (".*lm_head", ".*mlp.gate$") are exactly fnmatch
// patterns ('.' is '?', '.*' is '*', no '$' means a trailing '*' since re.match anchors at the start only).
struct CompiledEntry {
  std::optional<std::string> wildcard;
  std::shared_ptr<const std::regex> regex;
};

std::optional<std::string> regex_as_wildcard(std::string_view re) {
  std::string out;
  bool anchored_end = false;
  for (size_t i = 0; i < re.size(); ++i) {
    const char ch = re[i];
    const bool plain = std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '/' || ch == ':';
    if (plain) {
      out += ch;
    } else if (ch == '\\' && i + 1 < re.size() && re[i + 1] == '.') {
      out += re[++i];
    } else if (ch == '.' && i + 1 < re.size() && re[i + 1] == '*') {
      out += '*';
      ++i;
    } else if (ch == '.') {
      out += '?';
    } else if (ch == '$' && i + 1 == re.size()) {
      anchored_end = true;
    } else {
      return std::nullopt;
    }
  }
  if (!anchored_end) out += '*';
  return out;
}

std::shared_ptr<const CompiledEntry> compiled_regex(const std::string& pattern) {
  static std::mutex mutex;
  static std::map<std::string, std::shared_ptr<const CompiledEntry>, std::less<>> cache;
  std::lock_guard<std::mutex> lock(mutex);
  if (auto it = cache.find(pattern); it != cache.end()) return it->second;
  auto entry = std::make_shared<CompiledEntry>();
  try {
    // Compiled even when the wildcard form is used, so that a malformed pattern is refused either way.
    entry->regex = std::make_shared<const std::regex>(pattern, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw Error("ignore entry \"re:" + pattern + "\" is not a regular expression AdaLLM can evaluate (" +
                e.what() + ")")
        .hint("patterns are read as ECMAScript regexes; Python-only syntax such as (?P<name>...) is not accepted");
  }
  entry->wildcard = regex_as_wildcard(pattern);
  cache.emplace(pattern, entry);
  return entry;
}

void check_ignore_regexes(const std::vector<std::string>& ignore, const std::string& source) {
  for (const std::string& entry : ignore) {
    if (entry.starts_with("re:")) {
      try {
        compiled_regex(entry.substr(3));
      } catch (Error& e) {
        throw e.file(source);
      }
    }
  }
}

// Legacy form: {"producer": {...}, "quantization": {"quant_algo", "kv_cache_quant_algo", "group_size",
// "exclude_modules"}}, as vLLM's ModelOptQuantConfigBase.from_config reads it.
QuantConfig parse_modelopt_legacy(const json& q, std::string producer, const std::string& source) {
  QuantConfig qc;
  qc.format = QuantFormat::modelopt;
  qc.source = source;
  qc.producer = std::move(producer);
  const std::optional<std::string> algo = string_field(q, "quant_algo", "quantization.", source);
  if (!algo) fail("missing required field \"quantization.quant_algo\"", source);
  qc.quant_algo = upper(*algo);  // ModelOpt may emit lower case; vLLM upper-cases too
  check_algo(qc.quant_algo, "quantization.quant_algo", source);
  check_group_size(integer_field(q, "group_size", "quantization.", source), "quantization.group_size", source);
  if (auto kv = string_field(q, "kv_cache_quant_algo", "quantization.", source)) {
    qc.kv_cache = kv_from_algo(*kv, "quantization.kv_cache_quant_algo", source);
  }
  qc.exclude_modules = string_list(q, "exclude_modules", "quantization.", source);
  qc.activations_quantized = qc.quant_algo == "NVFP4";
  return qc;
}

// config.json form written by ModelOpt >= 0.31: quant_algo, ignore, kv_cache_scheme, config_groups.
QuantConfig parse_modelopt_config_json(const json& q, const std::string& source) {
  const std::string where = "quantization_config.";
  if (const json* legacy = object_field(q, "quantization", where, source)) {
    return parse_modelopt_legacy(*legacy, producer_string(q, source), source);
  }
  QuantConfig qc;
  qc.format = QuantFormat::modelopt;
  qc.source = source;
  qc.producer = producer_string(q, source);
  const std::optional<std::string> algo = string_field(q, "quant_algo", where, source);
  if (!algo) fail("missing required field \"quantization_config.quant_algo\"", source);
  qc.quant_algo = upper(*algo);
  check_algo(qc.quant_algo, where + "quant_algo", source);
  check_group_size(integer_field(q, "group_size", where, source), where + "group_size", source);
  if (const json* groups = object_field(q, "config_groups", where, source)) {
    for (const auto& [name, group] : groups->items()) {
      if (!group.is_object()) continue;
      for (const char* part : {"weights", "input_activations"}) {
        const std::string field = where + "config_groups." + name + "." + part + ".";
        if (const json* args = object_field(group, part, where + "config_groups." + name + ".", source)) {
          check_group_size(integer_field(*args, "group_size", field, source), field + "group_size", source);
        }
      }
    }
  }
  qc.kv_cache = kv_from_scheme(member(q, "kv_cache_scheme"), where + "kv_cache_scheme", source);
  qc.exclude_modules = string_list(q, "ignore", where, source);
  qc.activations_quantized = qc.quant_algo == "NVFP4";
  return qc;
}

// compressed-tensors QuantizationArgs must describe NVFP4: 4-bit float, tensor_group strategy, groups of
// 16, symmetric (vLLM's _is_fp4a4_nvfp4 / _is_fp4a16_nvfp4).
void check_nvfp4_args(const json& args, const std::string& field, const std::string& source) {
  auto expect = [&](const char* key, const json& want, const json& fallback) {
    const json* got = member(args, key);
    const json& value = got ? *got : fallback;
    if (value != want) {
      throw Error(field + "." + key + ": expected " + want.dump() + ", got " + json_excerpt(value))
          .file(source)
          .hint(kRunsNvfp4);
    }
  };
  expect("num_bits", 4, json(8));  // QuantizationArgs defaults: 8-bit int, per-tensor, symmetric
  expect("type", "float", json("int"));
  expect("strategy", "tensor_group", json("tensor"));
  expect("group_size", kNvfp4GroupSize, json(nullptr));
  expect("symmetric", true, json(true));
}

// Reads one config group; returns whether it quantizes activations (W4A4).
bool parse_ct_group(const std::string& name, const json& group, const std::optional<std::string>& top_format,
                    const std::string& source) {
  const std::string where = "quantization_config.config_groups." + name;
  if (!group.is_object()) fail("field \"" + where + "\": expected an object, got " + json_excerpt(group), source);
  std::optional<std::string> format = string_field(group, "format", where + ".", source);
  if (!format) format = top_format;
  if (!format) fail("missing required field \"quantization_config.format\"", source);
  if (*format != kNvfp4PackQuantized) {
    throw Error("compressed-tensors format \"" + *format + "\" is not supported").file(source).hint(kRunsNvfp4);
  }
  const json* weights = object_field(group, "weights", where + ".", source);
  if (weights == nullptr) fail("missing required field \"" + where + ".weights\"", source);
  check_nvfp4_args(*weights, where + ".weights", source);
  if (const json* out = member(group, "output_activations")) {
    fail(where + ".output_activations " + json_excerpt(*out) + " is not supported", source);
  }
  const json* inputs = object_field(group, "input_activations", where + ".", source);
  if (inputs != nullptr) check_nvfp4_args(*inputs, where + ".input_activations", source);
  return inputs != nullptr;
}

QuantConfig parse_compressed_tensors(const json& q, const std::string& source) {
  const std::string where = "quantization_config.";
  QuantConfig qc;
  qc.format = QuantFormat::compressed_tensors;
  qc.source = source;
  if (auto version = string_field(q, "version", where, source)) qc.producer = "compressed-tensors " + *version;
  const std::optional<std::string> top_format = string_field(q, "format", where, source);
  const json* groups = object_field(q, "config_groups", where, source);
  if (groups == nullptr || groups->empty()) {
    if (top_format && *top_format != kNvfp4PackQuantized) {
      throw Error("compressed-tensors format \"" + *top_format + "\" is not supported").file(source).hint(kRunsNvfp4);
    }
    fail("missing required field \"quantization_config.config_groups\"", source);
  }
  std::optional<bool> w4a4;
  for (const auto& [name, group] : groups->items()) {
    const bool quantized_inputs = parse_ct_group(name, group, top_format, source);
    if (w4a4 && *w4a4 != quantized_inputs) {
      fail("config groups mix weight-only (W4A16) and W4A4 NVFP4; AdaLLM needs one scheme per checkpoint", source);
    }
    w4a4 = quantized_inputs;
  }
  qc.activations_quantized = *w4a4;
  qc.quant_algo = qc.activations_quantized ? "NVFP4" : "W4A16_NVFP4";
  for (const char* key : {"sparsity_config", "transform_config"}) {
    if (const json* v = member(q, key); v != nullptr && !(v->is_object() && v->empty())) {
      fail(where + key + " is not supported (it changes how the weights are stored or applied)", source);
    }
  }
  qc.kv_cache = kv_from_scheme(member(q, "kv_cache_scheme"), where + "kv_cache_scheme", source);
  qc.exclude_modules = string_list(q, "ignore", where, source);
  check_ignore_regexes(qc.exclude_modules, source);
  return qc;
}

json read_json_file(const std::filesystem::path& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read " + std::string(what)).file(path.string());
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  return parse_json_strict(p, p + bytes.size(), what, path.string());
}

// `module` under the names a Gemma3 multimodal checkpoint may give it, so that exclude patterns written
// for the text model ("model.layers.0...", "lm_head") or for either multimodal layout
// ("model.language_model.layers.0...", "language_model.model.layers.0...") all apply.
std::vector<std::string> module_aliases(std::string_view module, bool multimodal_patterns) {
  // A text-model name needs its multimodal spellings only when some pattern is written that way.
  if (!multimodal_patterns && !module.starts_with("language_model.") && !module.starts_with("model.language_model.")) {
    return {std::string(module)};
  }
  std::string text_name(module);
  for (std::string_view prefix : {"model.language_model.", "language_model.model."}) {
    if (module.starts_with(prefix)) text_name = "model." + std::string(module.substr(prefix.size()));
  }
  if (text_name == module && module.starts_with("language_model.")) {
    text_name = std::string(module.substr(std::string_view("language_model.").size()));
  }
  std::vector<std::string> names{std::string(module)};
  auto add = [&](std::string name) {
    for (const std::string& n : names) {
      if (n == name) return;
    }
    names.push_back(std::move(name));
  };
  add(text_name);
  if (text_name.starts_with("model.")) {
    const std::string rest = text_name.substr(6);
    add("model.language_model." + rest);
    add("language_model.model." + rest);
  } else {
    add("language_model." + text_name);
  }
  return names;
}

// ModelOpt names a module to leave a whole subtree unquantized, so a pattern also covers the modules
// inside the one it matches (vLLM's "foo*" → "foo", "foo.*" rewrite and substring fallback serve the same).
bool modelopt_match(std::string_view pattern, std::string_view name) {
  if (wildcard_match(pattern, name)) return true;
  for (size_t dot = name.find('.'); dot != std::string_view::npos; dot = name.find('.', dot + 1)) {
    if (wildcard_match(pattern, name.substr(0, dot))) return true;  // an enclosing module matches
  }
  return false;
}

// compressed-tensors _match_name: "re:" is re.match (anchored at the start only), else the exact name.
bool ct_match(const std::string& entry, const std::string& name) {
  if (!entry.starts_with("re:")) return entry == name;
  const std::shared_ptr<const CompiledEntry> compiled = compiled_regex(entry.substr(3));
  if (compiled->wildcard) return wildcard_match(*compiled->wildcard, name);
  return std::regex_search(name, *compiled->regex, std::regex_constants::match_continuous);
}

// fnmatch bracket set at pattern[i] == '['. Returns nullopt when there is no closing ']' (the '[' is then
// literal, as in Python's fnmatch.translate); otherwise whether `ch` is in the set, with `next` set past it.
std::optional<bool> match_set(std::string_view pattern, size_t i, char ch, size_t& next) {
  size_t j = i + 1;
  const bool negate = j < pattern.size() && pattern[j] == '!';
  if (negate) ++j;
  const size_t first = j;
  if (j < pattern.size() && pattern[j] == ']') ++j;  // a leading ']' is a member
  while (j < pattern.size() && pattern[j] != ']') ++j;
  if (j >= pattern.size()) return std::nullopt;
  bool found = false;
  for (size_t k = first; k < j; ++k) {
    if (k + 2 < j && pattern[k + 1] == '-') {
      found |= pattern[k] <= ch && ch <= pattern[k + 2];
      k += 2;
    } else {
      found |= pattern[k] == ch;
    }
  }
  next = j + 1;
  return found != negate;
}

}  // namespace

const char* quant_format_name(QuantFormat format) {
  switch (format) {
    case QuantFormat::none: return "none";
    case QuantFormat::modelopt: return "modelopt";
    case QuantFormat::compressed_tensors: return "compressed-tensors";
  }
  return "unknown";
}

bool wildcard_match(std::string_view pattern, std::string_view text) {
  // Greedy match with one backtrack point at the last '*': linear in practice, never recursive.
  size_t p = 0, t = 0;
  size_t star_p = std::string_view::npos, star_t = 0;
  while (t < text.size()) {
    if (p < pattern.size()) {
      const char pc = pattern[p];
      if (pc == '*') {
        star_p = p++;
        star_t = t;
        continue;
      }
      if (pc == '?') {
        ++p;
        ++t;
        continue;
      }
      if (pc == '[') {
        size_t next = 0;
        if (std::optional<bool> in_set = match_set(pattern, p, text[t], next)) {
          if (*in_set) {
            p = next;
            ++t;
            continue;
          }
        } else if (text[t] == '[') {
          ++p;
          ++t;
          continue;
        }
      } else if (pc == text[t]) {
        ++p;
        ++t;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    p = star_p + 1;
    t = ++star_t;
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

bool QuantConfig::is_excluded(std::string_view module) const {
  if (format == QuantFormat::none || exclude_modules.empty()) return false;
  bool multimodal_patterns = false;
  for (const std::string& entry : exclude_modules) multimodal_patterns |= entry.find("language_model") != std::string::npos;
  const std::vector<std::string> names = module_aliases(module, multimodal_patterns);
  for (const std::string& entry : exclude_modules) {
    for (const std::string& name : names) {
      const bool hit = format == QuantFormat::compressed_tensors ? ct_match(entry, name) : modelopt_match(entry, name);
      if (hit) return true;
    }
  }
  return false;
}

QuantConfig parse_modelopt_hf_quant_config(const nlohmann::json& hf_quant_config, const std::string& source) {
  if (!hf_quant_config.is_object()) fail("quant config must be a JSON object, got " + json_excerpt(hf_quant_config), source);
  if (const json* q = object_field(hf_quant_config, "quantization", "", source)) {
    return parse_modelopt_legacy(*q, producer_string(hf_quant_config, source), source);
  }
  // Some exporters write the config.json form into hf_quant_config.json; vLLM reads both.
  if (member(hf_quant_config, "quant_algo") != nullptr) return parse_modelopt_config_json(hf_quant_config, source);
  fail("missing required field \"quantization\" (ModelOpt hf_quant_config.json)", source);
}

QuantConfig parse_quantization_config(const nlohmann::json& quantization_config, const std::string& source) {
  if (!quantization_config.is_object()) {
    fail("field \"quantization_config\": expected an object, got " + json_excerpt(quantization_config), source);
  }
  const std::optional<std::string> method =
      string_field(quantization_config, "quant_method", "quantization_config.", source);
  if (!method) fail("missing required field \"quantization_config.quant_method\"", source);
  const std::string m = lower(*method);
  if (m.starts_with("modelopt")) return parse_modelopt_config_json(quantization_config, source);
  if (m == "compressed-tensors") return parse_compressed_tensors(quantization_config, source);
  throw Error("quantization_config.quant_method \"" + *method + "\" is not supported").file(source).hint(kRunsNvfp4);
}

QuantConfig load_quant_config(const std::filesystem::path& model_dir, const nlohmann::json& config_json) {
  const std::filesystem::path hf_path = model_dir / "hf_quant_config.json";
  std::optional<QuantConfig> from_hf;
  std::optional<QuantConfig> from_config;
  std::error_code ec;
  if (std::filesystem::exists(hf_path, ec)) {
    from_hf = parse_modelopt_hf_quant_config(read_json_file(hf_path, "quant config"), hf_path.string());
  }
  if (config_json.is_object()) {
    if (const json* qc = member(config_json, "quantization_config")) {
      from_config = parse_quantization_config(*qc, (model_dir / "config.json").string());
    }
  }
  if (from_hf && from_config && from_hf->quant_algo != from_config->quant_algo) {
    throw Error("hf_quant_config.json gives quant_algo \"" + from_hf->quant_algo +
                "\" but config.json quantization_config gives \"" + from_config->quant_algo + "\"")
        .file(model_dir.string())
        .hint("the two files disagree about what the checkpoint holds; re-export it");
  }
  if (from_hf) return *from_hf;
  if (from_config) return *from_config;
  return QuantConfig{};
}

}  // namespace adallm::io
