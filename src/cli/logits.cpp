// `adallm logits MODEL --token-ids 1,2,3 --out F.npy`: the float32 logits [num_tokens, vocab_size] of
// every position, the hook by which any backend is compared with transformers (tests/model, tools/).
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/model_options.h"
#include "core/error.h"
#include "io/npy.h"

namespace adallm::cli {
namespace {

struct LogitsArgs {
  ModelOptions model;
  std::string token_ids;
  std::string out;
};

std::vector<int32_t> parse_token_ids(const std::string& text, int64_t vocab_size) {
  std::vector<int32_t> ids;
  size_t pos = 0;
  while (pos <= text.size()) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    size_t used = 0;
    long long v = -1;
    try {
      v = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (item.empty() || used != item.size()) {
      throw Error("--token-ids: \"" + item + "\" is not an integer").hint("write ids as 1,2,3");
    }
    if (v < 0 || v >= vocab_size) {
      throw Error("--token-ids: id " + item + " is outside the vocabulary [0, " + std::to_string(vocab_size) + ")");
    }
    ids.push_back(static_cast<int32_t>(v));
    pos = comma + 1;
  }
  return ids;
}

int run_logits(LogitsArgs& a) {
  a.model.model = model_directory(a.model.model, a.model.revision);
  LoadedModel m = load_model(a.model);
  const std::vector<int32_t> ids = parse_token_ids(a.token_ids, m.model->config().vocab_size);
  const std::vector<float> logits = m.generator->score(ids);
  const std::vector<int64_t> shape = {static_cast<int64_t>(ids.size()), m.model->config().vocab_size};
  io::write_npy_f32(a.out, shape, logits);
  std::fprintf(stderr, "wrote %s: float32 [%lld, %lld]\n", a.out.c_str(), static_cast<long long>(shape[0]),
               static_cast<long long>(shape[1]));
  return 0;
}

}  // namespace

Command add_logits(CLI::App& app) {
  auto args = std::make_shared<LogitsArgs>();
  CLI::App* cmd = app.add_subcommand("logits", "write the logits of every position of a token sequence as .npy");
  add_model_options(*cmd, args->model);
  cmd->add_option("--token-ids", args->token_ids, "comma-separated token ids")->required();
  cmd->add_option("--out", args->out, "output .npy file (float32 [num_tokens, vocab_size])")->required();
  return [args] { return run_logits(*args); };
}

}  // namespace adallm::cli
