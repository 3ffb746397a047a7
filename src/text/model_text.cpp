// Loading of a model directory's tokenizer, special tokens, chat template and stop ids.
#include "text/model_text.h"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace adallm::text {
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot open").file(path.string());
  try {
    return json::parse(in);
  } catch (const json::exception& e) {
    throw Error(std::string("invalid JSON: ") + e.what()).file(path.string());
  }
}

// "bos_token": "<s>" or {"content": "<s>", "lstrip": false, ...} (an AddedToken serialised by transformers).
std::string token_text(const json& config, const char* key, const fs::path& file) {
  const auto it = config.find(key);
  if (it == config.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) return (*it)["content"];
  throw Error(std::string("\"") + key + "\" must be a string or an object with \"content\", got " + it->dump())
      .file(file.string());
}

void add_unique(std::vector<int32_t>& ids, int32_t id) {
  if (std::find(ids.begin(), ids.end(), id) == ids.end()) ids.push_back(id);
}

}  // namespace

nlohmann::ordered_json ModelText::template_context(nlohmann::ordered_json messages, bool add_generation_prompt) const {
  nlohmann::ordered_json context;
  context["messages"] = std::move(messages);
  context["add_generation_prompt"] = add_generation_prompt;
  // Like transformers' special_tokens_map: a token the config does not name is not defined at all.
  for (const auto& [key, value] : special_tokens) context[key] = value;
  return context;
}

ModelText load_model_text(const fs::path& dir, std::string_view template_name, bool with_tokenizer) {
  if (!fs::is_directory(dir)) {
    throw Error("model directory not found").file(dir.string()).hint("give a directory holding tokenizer.json");
  }
  ModelText text;
  if (with_tokenizer) {
    const fs::path tokenizer_json = dir / "tokenizer.json";
    if (!fs::exists(tokenizer_json)) {
      throw Error("no tokenizer.json").file(dir.string()).hint("AdaLLM reads the fast-tokenizer file of the model");
    }
    text.tokenizer = Tokenizer::load(tokenizer_json);
  }

  const fs::path config_path = dir / "tokenizer_config.json";
  const json config = fs::exists(config_path) ? read_json(config_path) : json::object();
  {
    for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
      std::string value = token_text(config, key, config_path);
      if (!value.empty()) text.special_tokens.emplace_back(key, std::move(value));
    }
    text.bos_token = token_text(config, "bos_token", config_path);
    text.eos_token = token_text(config, "eos_token", config_path);
    if (const auto it = config.find("add_bos_token"); it != config.end() && it->is_boolean()) {
      text.add_bos_token = it->get<bool>();
    }
  }
  if (const fs::path jinja = dir / "chat_template.jinja"; fs::exists(jinja)) {
    std::ifstream in(jinja);
    std::stringstream source;
    source << in.rdbuf();
    text.chat_template = ChatTemplate::compile(source.str(), jinja.string());
  } else if (config.contains("chat_template")) {
    text.chat_template = ChatTemplate::from_tokenizer_config(config_path, template_name);
  }

  if (const fs::path gen = dir / "generation_config.json"; fs::exists(gen)) {
    const json generation = read_json(gen);
    if (const auto it = generation.find("eos_token_id"); it != generation.end() && !it->is_null()) {
      const json ids = it->is_array() ? *it : json::array({*it});
      for (const json& id : ids) {
        if (!id.is_number_integer()) {
          throw Error("eos_token_id must be an integer or a list of integers, got " + it->dump()).file(gen.string());
        }
        add_unique(text.eos_token_ids, id.get<int32_t>());
      }
    }
  }
  if (text.tokenizer && !text.eos_token.empty()) {
    const auto id = text.tokenizer->token_to_id(text.eos_token);
    if (!id) {
      throw Error("eos_token \"" + text.eos_token + "\" is not in the vocabulary").file(config_path.string());
    }
    add_unique(text.eos_token_ids, *id);
  }
  return text;
}

}  // namespace adallm::text
