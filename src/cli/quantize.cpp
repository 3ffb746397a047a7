// `adallm quantize SRC DST`: command-line front of model::quantize_checkpoint.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "model/quantize_checkpoint.h"

namespace adallm::cli {
namespace {

struct QuantizeArgs {
  std::string source, revision;
  std::string destination;
  std::string format = "modelopt";
  std::vector<std::string> exclude;
  bool lm_head = false;
  std::string max_shard_size = "5GB";
  bool quiet = false;
};

uint64_t parse_size(const std::string& text) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  const std::string unit = text.substr(used);
  double scale = 0;
  if (unit.empty() || unit == "B") scale = 1;
  else if (unit == "KB" || unit == "kB") scale = 1e3;
  else if (unit == "MB") scale = 1e6;
  else if (unit == "GB") scale = 1e9;
  else if (unit == "KiB") scale = 1024.0;
  else if (unit == "MiB") scale = 1024.0 * 1024;
  else if (unit == "GiB") scale = 1024.0 * 1024 * 1024;
  if (used == 0 || scale == 0 || value <= 0) {
    throw Error("--max-shard-size \"" + text + "\" is not a size").hint("write e.g. 5GB, 500MB or 2GiB");
  }
  return static_cast<uint64_t>(value * scale);
}

int run_quantize(const QuantizeArgs& args) {
  model::QuantizeOptions options;
  if (args.format == "modelopt") {
    options.format = model::QuantizeOptions::Format::modelopt;
  } else if (args.format == "compressed-tensors") {
    options.format = model::QuantizeOptions::Format::compressed_tensors;
  } else {
    throw Error("--format \"" + args.format + "\" is unknown").hint("use modelopt or compressed-tensors");
  }
  options.exclude = args.exclude;
  options.lm_head = args.lm_head;
  options.max_shard_bytes = parse_size(args.max_shard_size);
  if (args.quiet) options.progress = Progress::Mode::silent;
  const model::QuantizeReport report =
      model::quantize_checkpoint(model_directory(args.source, args.revision), args.destination, options);
  std::printf("quantized %lld linears to NVFP4 (%s), kept %lld dense; %.3f GB -> %.3f GB in %zu file(s) at %s\n",
              static_cast<long long>(report.quantized_linears), args.format.c_str(),
              static_cast<long long>(report.dense_linears), static_cast<double>(report.bytes_in) / 1e9,
              static_cast<double>(report.bytes_out) / 1e9, report.files.size(), args.destination.c_str());
  return 0;
}

}  // namespace

Command add_quantize(CLI::App& app) {
  auto args = std::make_shared<QuantizeArgs>();
  CLI::App* sub = app.add_subcommand("quantize", "Quantize a BF16/FP16 checkpoint to NVFP4");
  sub->add_option("source", args->source, "BF16/FP16 model directory, or Hugging Face repo id org/name[@revision]")
      ->required();
  add_revision_option(*sub, args->revision);
  sub->add_option("destination", args->destination, "new directory for the NVFP4 checkpoint")->required();
  sub->add_option("--format", args->format, "modelopt (default) or compressed-tensors");
  sub->add_option("--exclude", args->exclude, "keep modules matching this wildcard BF16 (repeatable)");
  sub->add_flag("--lm-head", args->lm_head, "also quantize an untied lm_head");
  sub->add_option("--max-shard-size", args->max_shard_size, "largest safetensors shard (default 5GB)");
  sub->add_flag("-q,--quiet", args->quiet, "no progress bar");
  return [args] { return run_quantize(*args); };
}

}  // namespace adallm::cli
