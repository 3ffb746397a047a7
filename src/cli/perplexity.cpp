// `adallm perplexity MODEL --file F`: perplexity of a text file in sliding windows, the standard check
// of what quantization costs. Windows of --context tokens advance by --stride; each token is scored once,
// with as much left context as the window gives it (the Hugging Face "perplexity of fixed-length
// models" method); the first token of the file is never scored.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "text/model_text.h"

namespace adallm::cli {
namespace {

struct PerplexityArgs {
  ModelOptions model;
  std::string file;
  int64_t context = 512;
  int64_t stride = 0;
  bool as_json = false;
};

// -log softmax(row)[target], in double.
double negative_log_likelihood(const float* row, int64_t vocab_size, int32_t target) {
  double max = row[0];
  for (int64_t v = 1; v < vocab_size; ++v) max = std::max(max, double(row[v]));
  double sum = 0.0;
  for (int64_t v = 0; v < vocab_size; ++v) sum += std::exp(double(row[v]) - max);
  return std::log(sum) + max - double(row[target]);
}

int run_perplexity(PerplexityArgs& a) {
  std::ifstream in(a.file, std::ios::binary);
  if (!in) throw Error("cannot open the text file").file(a.file);
  std::stringstream text;
  text << in.rdbuf();
  if (a.context < 2) throw Error("--context must be at least 2");
  const int64_t stride = a.stride > 0 ? a.stride : std::max<int64_t>(1, a.context / 2);
  if (stride > a.context) throw Error("--stride must not exceed --context");

  a.model.model = model_directory(a.model.model, a.model.revision);
  // Text first: a missing tokenizer or a too-short file is reported before the weights load.
  const text::ModelText model_text = text::load_model_text(a.model.model);
  const std::vector<int32_t> tokens = model_text.tokenizer->encode(text.str(), true);
  const auto n = static_cast<int64_t>(tokens.size());
  if (n < 2) throw Error("the file has fewer than 2 tokens").file(a.file);
  ModelOptions options = a.model;
  options.max_context = std::max(options.max_context, a.context);
  LoadedModel m = load_model(options);
  const int64_t vocab = m.model->config().vocab_size;

  const auto start = std::chrono::steady_clock::now();
  double nll = 0.0;
  int64_t scored = 0, windows = 0, scored_until = 1;  // token 0 has no prediction
  for (int64_t begin = 0;; begin += stride) {
    const int64_t end = std::min(begin + a.context, n);
    const std::vector<float> logits =
        m.generator->score(std::span<const int32_t>(tokens).subspan(static_cast<size_t>(begin),
                                                                      static_cast<size_t>(end - begin)));
    for (int64_t j = std::max(scored_until, begin + 1); j < end; ++j) {
      nll += negative_log_likelihood(&logits[static_cast<size_t>((j - 1 - begin) * vocab)], vocab,
                                     tokens[static_cast<size_t>(j)]);
      ++scored;
    }
    scored_until = end;
    ++windows;
    if (end == n) break;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double ppl = std::exp(nll / double(scored));
  if (a.as_json) {
    nlohmann::ordered_json j = {{"perplexity", ppl},       {"mean_nll", nll / double(scored)},
                                {"tokens_scored", scored}, {"tokens", n},
                                {"windows", windows},      {"context", a.context},
                                {"stride", stride},        {"kv_cache_dtype", a.model.kv_cache_dtype},
                                {"device", a.model.device}, {"seconds", seconds}};
    std::printf("%s\n", j.dump(2).c_str());
  } else {
    std::printf("perplexity %.4f over %lld tokens (%lld windows of %lld, stride %lld, KV %s, %.1f s)\n", ppl,
                static_cast<long long>(scored), static_cast<long long>(windows), static_cast<long long>(a.context),
                static_cast<long long>(stride), a.model.kv_cache_dtype.c_str(), seconds);
  }
  return 0;
}

}  // namespace

Command add_perplexity(CLI::App& app) {
  auto args = std::make_shared<PerplexityArgs>();
  CLI::App* cmd = app.add_subcommand("perplexity", "perplexity of a text file in sliding windows");
  add_model_options(*cmd, args->model);
  cmd->add_option("--file", args->file, "UTF-8 text file")->required();
  cmd->add_option("--context", args->context, "tokens per window (default 512)")->check(CLI::PositiveNumber);
  cmd->add_option("--stride", args->stride, "tokens between window starts (default context / 2)")
      ->check(CLI::PositiveNumber);
  cmd->add_flag("--json", args->as_json, "print the result as JSON");
  return [args] { return run_perplexity(*args); };
}

}  // namespace adallm::cli
