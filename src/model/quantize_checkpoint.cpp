// The quantize pipeline: validate the source through the ledger, share the per-tensor scale inside fused
// groups as ModelOpt does (q/k/v and gate/up get weight_scale_2 from the group's largest amax), encode,
// write shards of at most max_shard_bytes, write the configs, then load the result back through the
// ledger so that a bad output never survives the command.
#include "model/quantize_checkpoint.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/float_codecs.h"
#include "core/log.h"
#include "io/model_config.h"
#include "io/quant_config.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "model/ledger.h"
#include "quant/nvfp4.h"

namespace adallm::model {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

constexpr const char* kProducerVersion = "0.1.0";

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open").file(path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(std::string("invalid JSON: ") + e.what()).file(path.string());
  }
}

void write_json(const fs::path& path, const json& value) {
  std::ofstream out(path);
  out << value.dump(2) << "\n";
  if (!out) throw Error("cannot write").file(path.string());
}

std::vector<uint8_t> float_bytes(float value) {
  std::vector<uint8_t> bytes(sizeof value);
  std::memcpy(bytes.data(), &value, sizeof value);
  return bytes;
}

// fnmatch pattern → the "re:" form compressed-tensors uses in `ignore` (matched from the start).
std::string glob_to_regex(const std::string& glob) {
  std::string re;
  for (char c : glob) {
    if (c == '*') re += ".*";
    else if (c == '?') re += '.';
    else if (std::strchr(".+()^$|{}[]\\", c)) re += std::string("\\") + c;
    else re += c;
  }
  return re + "$";
}

// Linears that share one per-tensor scale when quantized, in ModelOpt's grouping.
std::vector<std::vector<const LinearTensors*>> fused_groups(const ModelTensors& model) {
  std::vector<std::vector<const LinearTensors*>> groups;
  auto add_mlp = [&](const MlpTensors& m) {
    groups.push_back({&m.gate_proj, &m.up_proj});
    groups.push_back({&m.down_proj});
  };
  for (const LayerTensors& layer : model.layers) {
    groups.push_back({&layer.attn.q_proj, &layer.attn.k_proj, &layer.attn.v_proj});
    groups.push_back({&layer.attn.o_proj});
    if (layer.mlp) add_mlp(*layer.mlp);
    if (layer.moe) {
      for (const MlpTensors& e : layer.moe->experts) add_mlp(e);
    }
  }
  if (!model.lm_head_tied) groups.push_back({&model.lm_head});
  return groups;
}

// Collects tensors into shards of at most max_bytes (a single larger tensor gets a shard of its own).
class ShardSink {
 public:
  ShardSink(fs::path directory, uint64_t max_bytes) : directory_(std::move(directory)), max_bytes_(max_bytes) {}

  void add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<uint8_t> bytes) {
    if (!current_.empty() && current_.data_bytes() + bytes.size() > max_bytes_) flush();
    total_bytes_ += bytes.size();
    current_.add(std::move(name), dtype, std::move(shape), std::move(bytes));
  }

  // Names the shards as Hugging Face does and writes the index when there is more than one.
  std::vector<std::string> finish() {
    flush();
    std::vector<std::string> files;
    if (shards_.size() == 1) {
      fs::rename(directory_ / shards_[0].first, directory_ / "model.safetensors");
      return {"model.safetensors"};
    }
    std::vector<std::pair<std::string, std::vector<std::string>>> index;
    for (size_t i = 0; i < shards_.size(); ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "model-%05zu-of-%05zu.safetensors", i + 1, shards_.size());
      fs::rename(directory_ / shards_[i].first, directory_ / name);
      files.push_back(name);
      index.emplace_back(name, shards_[i].second);
    }
    io::write_safetensors_index(directory_, index, total_bytes_);
    return files;
  }

 private:
  void flush() {
    if (current_.empty()) return;
    current_.set_metadata("format", "pt");
    const std::string temp = "shard-" + std::to_string(shards_.size()) + ".partial";
    current_.write(directory_ / temp);
    shards_.emplace_back(temp, current_.names());
    current_ = io::SafetensorsWriter();
  }

  fs::path directory_;
  uint64_t max_bytes_;
  uint64_t total_bytes_ = 0;
  io::SafetensorsWriter current_;
  std::vector<std::pair<std::string, std::vector<std::string>>> shards_;
};

// One fp32 buffer reused for every weight: a fresh vector per tensor would be zero-filled and page-faulted
// in each time, which cost more than the encoding itself.
class Scratch {
 public:
  std::span<const float> decode(const io::TensorInfo& t) {
    const size_t n = static_cast<size_t>(t.numel());
    if (buffer_.size() < n) buffer_.resize(n);
    const std::span<float> out(buffer_.data(), n);
    io::tensor_to_f32(t, out);
    return out;
  }

 private:
  std::vector<float> buffer_;
};

struct Plan {
  std::map<std::string, const LinearTensors*> quantized;  // source weight tensor name → Linear
  std::map<std::string, float> scale;                     // module → weight_scale_2 (ModelOpt) or global scale (CT)
  std::vector<std::string> dense_modules;
};

bool excluded_by_user(const std::string& module, const QuantizeOptions& options) {
  return std::any_of(options.exclude.begin(), options.exclude.end(),
                     [&](const std::string& p) { return io::wildcard_match(p, module); });
}

Plan make_plan(const ModelTensors& model, const QuantizeOptions& options, Scratch& scratch, Progress& progress) {
  Plan plan;
  for (const auto& group : fused_groups(model)) {
    std::vector<const LinearTensors*> members;
    for (const LinearTensors* lin : group) {
      const bool is_head = lin == &model.lm_head;
      if ((is_head && !options.lm_head) || excluded_by_user(lin->module, options)) {
        plan.dense_modules.push_back(lin->module);
        progress.advance(lin->weight->nbytes);
        continue;
      }
      if (lin->in_features % quant::kNvfp4GroupSize != 0) {
        throw Error(lin->module + ": in_features " + std::to_string(lin->in_features) +
                    " is not a multiple of 16, which NVFP4 needs")
            .hint("keep it BF16 with --exclude '" + lin->module + "'");
      }
      members.push_back(lin);
    }
    float group_amax = 0.0f;
    for (const LinearTensors* lin : members) {
      const float amax = quant::abs_max(scratch.decode(*lin->weight));
      if (!std::isfinite(amax)) throw Error("weight holds NaN or Inf").tensor(lin->weight->name).file(lin->weight->file);
      group_amax = std::max(group_amax, amax);
      progress.advance(lin->weight->nbytes);
    }
    if (members.empty()) continue;
    if (group_amax == 0.0f) {  // no scale can represent it; NVFP4 of zeros would be NaN scales
      for (const LinearTensors* lin : members) {
        log::warn(lin->module, " is all zeros: kept dense");
        plan.dense_modules.push_back(lin->module);
      }
      continue;
    }
    // ModelOpt exports run on the GPU, where torch divides by the Python constant 2688 as a multiply by
    // its reciprocal (see quant/nvfp4.h); llm-compressor observes amax in the weight's own dtype.
    const float scale = options.format == QuantizeOptions::Format::modelopt
                            ? quant::modelopt_weight_scale_2_cuda(group_amax)
                            : quant::compressed_tensors_global_scale(group_amax, members.front()->weight->dtype);
    for (const LinearTensors* lin : members) {
      plan.quantized[lin->weight->name] = lin;
      plan.scale[lin->module] = scale;
    }
  }
  return plan;
}

void emit_quantized(ShardSink& sink, const LinearTensors& lin, float scale, const QuantizeOptions& options,
                    Scratch& scratch) {
  const std::span<const float> w = scratch.decode(*lin.weight);
  const int64_t rows = lin.out_features;
  const int64_t cols = lin.in_features;
  const bool modelopt = options.format == QuantizeOptions::Format::modelopt;
  quant::Nvfp4Tensor q = modelopt ? quant::nvfp4_quantize_modelopt(w, rows, cols, scale)
                                  : quant::nvfp4_quantize_compressed_tensors(w, rows, cols, scale, lin.weight->dtype);
  sink.add(lin.module + (modelopt ? ".weight" : ".weight_packed"), DType::U8, {rows, cols / 2}, std::move(q.packed));
  sink.add(lin.module + ".weight_scale", DType::F8_E4M3, {rows, cols / 16}, std::move(q.scales));
  if (modelopt) {
    sink.add(lin.module + ".weight_scale_2", DType::F32, {}, float_bytes(scale));
  } else {
    sink.add(lin.module + ".weight_global_scale", DType::F32, {1}, float_bytes(scale));
  }
}

// Every module left dense, as patterns: lm_head, the user's --exclude, routers, vision towers, and by
// name any Linear kept dense for another reason (all zeros).
std::vector<std::string> modelopt_excludes(const ModelTensors& model, const io::ModelConfig& config,
                                           const QuantizeOptions& options, const Plan& plan) {
  std::vector<std::string> out;
  if (!options.lm_head || model.lm_head_tied) out.push_back("lm_head");
  for (const std::string& p : options.exclude) out.push_back(p);
  for (const std::string& m : plan.dense_modules) {
    const bool covered = std::any_of(out.begin(), out.end(), [&](const std::string& p) { return io::wildcard_match(p, m); });
    if (!covered) out.push_back(m);
  }
  if (config.arch == io::Architecture::qwen3_moe) out.push_back(model.prefix + "layers.*.mlp.gate");
  if (config.multimodal_wrapper) {
    out.push_back("*vision_tower*");
    out.push_back("*multi_modal_projector*");
  }
  return out;
}

json quantization_config(const std::vector<std::string>& excludes, const QuantizeOptions& options) {
  const json weights = {{"num_bits", 4}, {"type", "float"}, {"group_size", 16}, {"dynamic", false}};
  if (options.format == QuantizeOptions::Format::modelopt) {
    return {{"quant_method", "modelopt"},
            {"quant_algo", "W4A16_NVFP4"},
            {"producer", {{"name", "adallm"}, {"version", kProducerVersion}}},
            {"ignore", excludes},
            {"config_groups", {{"group_0", {{"targets", {"Linear"}}, {"weights", weights}}}}}};
  }
  json ignore = json::array();
  for (const std::string& p : excludes) {
    ignore.push_back(p.find_first_of("*?[") == std::string::npos ? p : "re:" + glob_to_regex(p));
  }
  json ct_weights = weights;
  ct_weights["strategy"] = "tensor_group";
  ct_weights["symmetric"] = true;
  return {{"quant_method", "compressed-tensors"},
          {"format", "nvfp4-pack-quantized"},
          {"quantization_status", "compressed"},
          {"ignore", ignore},
          {"config_groups",
           {{"group_0",
             {{"targets", {"Linear"}}, {"format", "nvfp4-pack-quantized"}, {"weights", ct_weights},
              {"input_activations", nullptr}}}}}};
}

void write_configs(const fs::path& source, const fs::path& out, const std::vector<std::string>& excludes,
                   const QuantizeOptions& options) {
  json config = read_json(source / "config.json");
  config["quantization_config"] = quantization_config(excludes, options);
  write_json(out / "config.json", config);
  if (options.format == QuantizeOptions::Format::modelopt) {
    write_json(out / "hf_quant_config.json",
               {{"producer", {{"name", "adallm"}, {"version", kProducerVersion}}},
                {"quantization",
                 {{"quant_algo", "W4A16_NVFP4"}, {"kv_cache_quant_algo", nullptr}, {"group_size", 16},
                  {"exclude_modules", excludes}}}});
  }
  // Tokenizer, generation config, chat template...: everything else at the top level travels as is.
  for (const auto& entry : fs::directory_iterator(source)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name.ends_with(".safetensors") || name == "model.safetensors.index.json" ||
        name == "config.json" || name == "hf_quant_config.json") {
      continue;
    }
    fs::copy_file(entry.path(), out / name);
  }
}

fs::path prepare_destination(const fs::path& source, const fs::path& destination) {
  std::error_code ec;
  if (fs::exists(destination) && !fs::is_empty(destination)) {
    throw Error("destination exists and is not empty").file(destination.string()).hint("choose a new directory");
  }
  if (fs::equivalent(source, destination, ec)) throw Error("destination is the source").file(destination.string());
  fs::path partial = destination;
  partial += ".partial";
  fs::remove_all(partial);
  fs::create_directories(partial, ec);
  if (ec) throw Error("cannot create directory: " + ec.message()).file(partial.string());
  return partial;
}

// Everything written into `partial`: quantized shards, configs, copied files; then loaded back.
QuantizeReport write_quantized(const io::Checkpoint& checkpoint, const ModelTensors& model,
                               const io::ModelConfig& config, const fs::path& source, const fs::path& partial,
                               const QuantizeOptions& options) {
  QuantizeReport report;
  report.bytes_in = checkpoint.file_bytes();
  // Two passes: the amax of every Linear (for the shared scales), then encoding and writing everything.
  uint64_t linear_bytes = 0;
  for (const auto& group : fused_groups(model)) {
    for (const LinearTensors* lin : group) linear_bytes += lin->weight->nbytes;
  }
  uint64_t tensor_bytes = 0;
  for (const io::TensorInfo* t : checkpoint.tensors()) tensor_bytes += t->nbytes;
  Progress progress("quantize", linear_bytes + tensor_bytes, Progress::Unit::bytes, options.progress);
  Scratch scratch;
  const Plan plan = make_plan(model, options, scratch, progress);
  report.quantized_linears = static_cast<int64_t>(plan.quantized.size());
  report.dense_linears = static_cast<int64_t>(plan.dense_modules.size());

  ShardSink sink(partial, options.max_shard_bytes);
  for (const io::TensorInfo* t : checkpoint.tensors()) {
    if (auto it = plan.quantized.find(t->name); it != plan.quantized.end()) {
      emit_quantized(sink, *it->second, plan.scale.at(it->second->module), options, scratch);
    } else {
      sink.add(t->name, t->dtype, t->shape, std::vector<uint8_t>(t->data, t->data + t->nbytes));
    }
    progress.advance(t->nbytes);
  }
  report.files = sink.finish();
  write_configs(source, partial, modelopt_excludes(model, config, options, plan), options);
  progress.finish();

  // Load the result back exactly as `adallm serve` would before anyone else sees it.
  const io::Checkpoint written = io::Checkpoint::open(partial);
  const io::QuantConfig written_quant = io::load_quant_config(partial, read_json(partial / "config.json"));
  bind_checkpoint(written, io::load_model_config(partial / "config.json"), written_quant);
  report.bytes_out = written.file_bytes();
  return report;
}

}  // namespace

QuantizeReport quantize_checkpoint(const fs::path& source, const fs::path& destination,
                                   const QuantizeOptions& options) {
  const io::ModelConfig config = io::load_model_config(source / "config.json");
  const io::QuantConfig source_quant = io::load_quant_config(source, read_json(source / "config.json"));
  if (source_quant.quantized()) {
    throw Error("checkpoint is already quantized (" + std::string(io::quant_format_name(source_quant.format)) + " " +
                source_quant.quant_algo + ")")
        .file(source.string())
        .hint("adallm quantize takes a BF16 or FP16 checkpoint");
  }
  const io::Checkpoint checkpoint = io::Checkpoint::open(source);
  const ModelTensors model = bind_checkpoint(checkpoint, config, source_quant);
  if (options.lm_head && model.lm_head_tied) {
    throw Error("--lm-head asks to quantize the output projection, but it is tied to the embedding table")
        .file((source / "config.json").string())
        .hint("drop --lm-head: the tied table stays BF16");
  }
  const fs::path partial = prepare_destination(source, destination);
  try {
    QuantizeReport report = write_quantized(checkpoint, model, config, source, partial, options);
    std::error_code ec;
    fs::remove(destination, ec);  // an empty directory the user created beforehand
    fs::rename(partial, destination, ec);
    if (ec) throw Error("cannot move the result into place: " + ec.message()).file(destination.string());
    return report;
  } catch (...) {
    std::error_code ec;
    fs::remove_all(partial, ec);
    throw;
  }
}

}  // namespace adallm::model
