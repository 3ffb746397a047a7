// The subcommands of the `adallm` binary. Each file registers one subcommand on the CLI11 app and returns
// the function to run when it is chosen; main() owns error reporting and the exit code.
#pragma once

#include <functional>

namespace CLI {
class App;
}

namespace adallm::cli {

using Command = std::function<int()>;

Command add_inspect(CLI::App& app);
Command add_quantize(CLI::App& app);
Command add_tokenize(CLI::App& app);
Command add_detokenize(CLI::App& app);
Command add_chat_template(CLI::App& app);
Command add_logits(CLI::App& app);
Command add_run(CLI::App& app);
Command add_perplexity(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_serve(CLI::App& app);

}  // namespace adallm::cli
