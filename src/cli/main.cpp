// Entry point of the adallm binary: parses the command line, runs one subcommand, and turns every
// adallm::Error into one line on stderr and exit code 1. Nothing else may end the process with a crash.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "cli/commands.h"
#include "core/error.h"
#include "core/log.h"

int main(int argc, char** argv) {
  CLI::App app{"AdaLLM: NVFP4 language models on GPUs without FP4 tensor cores"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "adallm 0.1.0");
  std::string log_level;
  app.add_option("--log-level", log_level, "debug, info, warn, error or off (default: $ADALLM_LOG_LEVEL or info)");

  const std::vector<std::pair<const char*, adallm::cli::Command>> commands = {
      {"inspect", adallm::cli::add_inspect(app)},
      {"quantize", adallm::cli::add_quantize(app)},
      {"tokenize", adallm::cli::add_tokenize(app)},
      {"detokenize", adallm::cli::add_detokenize(app)},
      {"chat-template", adallm::cli::add_chat_template(app)},
      {"run", adallm::cli::add_run(app)},
      {"logits", adallm::cli::add_logits(app)},
      {"perplexity", adallm::cli::add_perplexity(app)},
      {"bench", adallm::cli::add_bench(app)},
      {"serve", adallm::cli::add_serve(app)},
  };

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // A usage error is a failure like any other: one line, exit code 1.
    std::fprintf(stderr, "error: %s; see adallm --help\n", e.what());
    return 1;
  }
  try {
    if (!log_level.empty()) adallm::log::set_level(adallm::log::parse_level(log_level));
    for (const auto& [name, command] : commands) {
      if (app.get_subcommand(name)->parsed()) return command();
    }
  } catch (const adallm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 1;
}
