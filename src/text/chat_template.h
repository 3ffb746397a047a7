// Chat templates of Hugging Face tokenizer_config.json files, rendered byte-identically to Python Jinja2
// as transformers configures it (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols,
// json.dumps-style tojson, raise_exception, strftime_now). Parsing and checking happen in compile(), so an
// unsupported construct is a load error; tokenizing the rendered prompt is the tokenizer's job.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace adallm::text {

namespace jinja {
struct Template;
}

class ChatTemplate {
 public:
  // Parses the template; a construct the interpreter does not implement is an adallm::Error naming it
  // (and the line), at load time, not a wrong prompt later.
  static ChatTemplate compile(std::string source, std::string name = "chat_template");
  // tokenizer_config.json: chat_template as a string, or a list of {name, template}; `name` picks one.
  static ChatTemplate from_tokenizer_config(const std::filesystem::path& tokenizer_config_json,
                                            std::string_view name = "default");
  // context: {"messages": [...], "tools": [...]?, "add_generation_prompt": bool, "bos_token": "...",
  // "eos_token": "...", plus any extra variables (enable_thinking...)}. Errors from raise_exception or
  // type errors are adallm::Error with the template line.
  // nlohmann::json keeps object keys sorted, so dicts (tool schemas) print in key order; pass an
  // ordered_json to keep the order of the request, as Python's dicts do.
  std::string render(const nlohmann::json& context) const;
  std::string render(const nlohmann::ordered_json& context) const;

  const std::string& name() const { return name_; }
  const std::string& source() const { return source_; }

 private:
  ChatTemplate() = default;

  std::string name_;
  std::string source_;
  std::shared_ptr<const jinja::Template> template_;  // shared: ChatTemplate copies stay cheap
};

}  // namespace adallm::text
