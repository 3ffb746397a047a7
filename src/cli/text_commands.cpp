// `adallm tokenize`, `adallm detokenize` and `adallm chat-template`: the text pipeline of a model from the
// command line, for checking prompts and ids against other tools.
#include <CLI/CLI.hpp>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
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
using ordered_json = nlohmann::ordered_json;

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open").file(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

ordered_json read_json_file(const std::string& path) {
  try {
    return ordered_json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("invalid JSON: ") + e.what()).file(path);
  }
}

struct TokenizeArgs {
  std::string model, revision, text, file;
  bool no_special = false;
  bool as_json = false;
};

int run_tokenize(const TokenizeArgs& a) {
  if (a.text.empty() == a.file.empty()) throw Error("give exactly one of --text and --file");
  const text::ModelText model = text::load_model_text(model_directory(a.model, a.revision));
  const std::string input = a.file.empty() ? a.text : read_file(a.file);
  const std::vector<int32_t> ids = model.tokenizer->encode(input, !a.no_special);
  if (a.as_json) {
    ordered_json tokens = ordered_json::array();
    for (int32_t id : ids) tokens.push_back(model.tokenizer->id_to_token(id).value_or(""));
    const ordered_json out = {{"ids", ids}, {"tokens", tokens}};
    std::printf("%s\n", out.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  } else {
    std::string line;
    for (int32_t id : ids) line += (line.empty() ? "" : " ") + std::to_string(id);
    std::printf("%s\n", line.c_str());
  }
  return 0;
}

struct DetokenizeArgs {
  std::string model, revision, ids;
  bool skip_special = false;
};

std::vector<int32_t> parse_ids(const std::string& text) {
  std::vector<int32_t> ids;
  std::stringstream list(text);
  std::string item;
  while (std::getline(list, item, ',')) {
    size_t used = 0;
    long value = -1;
    try {
      value = std::stol(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used == 0 || used != item.size() || value < 0 || value > INT32_MAX) {
      throw Error("--ids: \"" + item + "\" is not a token id").hint("write ids as 1,2,3");
    }
    ids.push_back(static_cast<int32_t>(value));
  }
  return ids;
}

int run_detokenize(const DetokenizeArgs& a) {
  const std::vector<int32_t> ids = parse_ids(a.ids);
  const text::ModelText model = text::load_model_text(model_directory(a.model, a.revision));
  for (int32_t id : ids) {
    if (id >= model.tokenizer->vocab_size()) {
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(model.tokenizer->vocab_size()));
    }
  }
  std::printf("%s\n", model.tokenizer->decode(ids, a.skip_special).c_str());
  return 0;
}

struct ChatTemplateArgs {
  std::string model, revision, messages, tools, enable_thinking, template_name = "default";
  bool no_generation_prompt = false;
};

int run_chat_template(const ChatTemplateArgs& a) {
  const text::ModelText model =
      text::load_model_text(model_directory(a.model, a.revision), a.template_name, /*with_tokenizer=*/false);
  if (!model.chat_template) throw Error("the model has no chat template").file(a.model);
  ordered_json messages = read_json_file(a.messages);
  if (!messages.is_array()) throw Error("--messages must hold a JSON list of messages").file(a.messages);
  ordered_json context = model.template_context(std::move(messages), !a.no_generation_prompt);
  if (!a.tools.empty()) context["tools"] = read_json_file(a.tools);
  if (!a.enable_thinking.empty()) {
    if (a.enable_thinking != "true" && a.enable_thinking != "false") {
      throw Error("--enable-thinking takes true or false, got \"" + a.enable_thinking + "\"");
    }
    context["enable_thinking"] = a.enable_thinking == "true";
  }
  const std::string prompt = model.chat_template->render(context);
  std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  return 0;
}

}  // namespace

Command add_tokenize(CLI::App& app) {
  auto a = std::make_shared<TokenizeArgs>();
  CLI::App* sub = app.add_subcommand("tokenize", "Encode text with a model's tokenizer");
  sub->add_option("model", a->model, kModelHelp)->required();
  add_revision_option(*sub, a->revision);
  sub->add_option("--text", a->text, "text to encode");
  sub->add_option("--file", a->file, "file whose contents to encode");
  sub->add_flag("--no-special", a->no_special, "no special tokens from the post-processor (BOS...)");
  sub->add_flag("--json", a->as_json, "print {\"ids\": [...], \"tokens\": [...]}");
  return [a] { return run_tokenize(*a); };
}

Command add_detokenize(CLI::App& app) {
  auto a = std::make_shared<DetokenizeArgs>();
  CLI::App* sub = app.add_subcommand("detokenize", "Decode token ids with a model's tokenizer");
  sub->add_option("model", a->model, kModelHelp)->required();
  add_revision_option(*sub, a->revision);
  sub->add_option("--ids", a->ids, "comma-separated ids, e.g. 9707,11,1879")->required();
  sub->add_flag("--skip-special", a->skip_special, "drop special tokens");
  return [a] { return run_detokenize(*a); };
}

Command add_chat_template(CLI::App& app) {
  auto a = std::make_shared<ChatTemplateArgs>();
  CLI::App* sub = app.add_subcommand("chat-template", "Render a conversation with a model's chat template");
  sub->add_option("model", a->model, kModelHelp)->required();
  add_revision_option(*sub, a->revision);
  sub->add_option("--messages", a->messages, "JSON file with the list of messages")->required();
  sub->add_option("--tools", a->tools, "JSON file with the list of tools");
  sub->add_flag("--no-generation-prompt", a->no_generation_prompt, "add_generation_prompt = false");
  sub->add_option("--enable-thinking", a->enable_thinking, "true or false (Qwen3)");
  sub->add_option("--template", a->template_name, "name of one of several chat templates (default: default)");
  return [a] { return run_chat_template(*a); };
}

}  // namespace adallm::cli
