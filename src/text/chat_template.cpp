// Loads a chat template (from source or tokenizer_config.json) and renders it with the jinja/ interpreter.
// The template is parsed once; render() is const and keeps no state, so one ChatTemplate can serve
// concurrent requests.
#include "text/chat_template.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "text/jinja/interpreter.h"
#include "text/jinja/parser.h"

namespace adallm::text {

ChatTemplate ChatTemplate::compile(std::string source, std::string name) {
  ChatTemplate t;
  t.template_ = std::make_shared<const jinja::Template>(jinja::parse_template(source, name));
  t.name_ = std::move(name);
  t.source_ = std::move(source);
  return t;
}

ChatTemplate ChatTemplate::from_tokenizer_config(const std::filesystem::path& path, std::string_view name) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open tokenizer config").file(path.string());
  std::stringstream buf;
  buf << in.rdbuf();
  nlohmann::json config;
  try {
    config = nlohmann::json::parse(buf.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("tokenizer config is not valid JSON: ") + e.what()).file(path.string());
  }
  if (!config.is_object() || !config.contains("chat_template")) {
    throw Error("tokenizer config has no chat_template").file(path.string())
        .hint("the model has no chat template; pass a prompt without one");
  }
  const auto& ct = config["chat_template"];
  if (ct.is_string()) {
    if (name != "default") {
      throw Error("chat template '" + std::string(name) + "' not found, the config has a single unnamed template")
          .file(path.string());
    }
    try {
      return compile(ct.get<std::string>(), "chat_template");
    } catch (Error& e) {
      throw e.file(path.string());
    }
  }
  if (!ct.is_array()) throw Error("chat_template must be a string or a list of {name, template}, got " + std::string(ct.type_name())).file(path.string());
  std::string names;
  for (const auto& entry : ct) {
    if (!entry.is_object() || !entry.contains("name") || !entry.contains("template") ||
        !entry["name"].is_string() || !entry["template"].is_string()) {
      throw Error("chat_template list entries must be {\"name\": string, \"template\": string}").file(path.string());
    }
    std::string entry_name = entry["name"].get<std::string>();
    if (entry_name == name) {
      try {
        return compile(entry["template"].get<std::string>(), entry_name);
      } catch (Error& e) {
        throw e.file(path.string());
      }
    }
    names += (names.empty() ? "" : ", ") + entry_name;
  }
  throw Error("chat template '" + std::string(name) + "' not found, expected one of: " + names).file(path.string());
}

std::string ChatTemplate::render(const nlohmann::json& context) const {
  if (!context.is_object()) throw Error("chat template context must be a JSON object, got " + std::string(context.type_name()));
  return jinja::Interpreter(*template_).render(jinja::Value::from_json(context));
}

std::string ChatTemplate::render(const nlohmann::ordered_json& context) const {
  if (!context.is_object()) throw Error("chat template context must be a JSON object, got " + std::string(context.type_name()));
  return jinja::Interpreter(*template_).render(jinja::Value::from_json(context));
}

}  // namespace adallm::text
