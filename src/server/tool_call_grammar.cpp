// tool_call_grammar: one alternative per callable tool, each its fixed prefix, the arguments' schema and
// the closing tag.
#include "server/tool_call_grammar.h"

#include "core/error.h"
#include "server/api_error.h"
#include "structured/json_schema.h"

namespace adallm::server {

using json = nlohmann::ordered_json;

std::shared_ptr<const structured::Grammar> tool_call_grammar(const json& tools, const std::string& name,
                                                             bool parallel, text::ToolCallFormat format) {
  const bool llama3 = format == text::ToolCallFormat::llama3_json;
  structured::GrammarBuilder b;
  const int32_t call = b.declare();
  const json none;
  try {
    for (size_t i = 0; i < tools.size(); ++i) {
      const json& function = tools[i].at("function");
      const std::string tool = function.at("name").get<std::string>();
      if (!name.empty() && tool != name) continue;
      const std::string path = "tools[" + std::to_string(i) + "].function.parameters";
      const json& parameters = function.contains("parameters") ? function.at("parameters") : none;
      structured::SchemaCompiler compiler(b, parameters, path);
      // No parameters: any object, as OpenAI takes a function without them.
      const int32_t arguments = parameters.is_null() ? compiler.any_object() : compiler.compile(parameters, path);
      std::vector<structured::Element> sequence =
          b.literal(llama3 ? "{\"name\": " + json(tool).dump() + ", \"parameters\": "
                           : "<tool_call>\n{\"name\": " + json(tool).dump() + ", \"arguments\": ");
      sequence.push_back(structured::GrammarBuilder::ref(arguments));
      b.literal(llama3 ? "}" : "}\n</tool_call>", sequence);
      b.alternative(call, sequence);
    }
    int32_t root = call;
    if (name.empty() && parallel) {
      const int32_t more = b.declare();  // (separator call)*
      std::vector<structured::Element> another = b.literal(llama3 ? "; " : "\n");
      another.push_back(structured::GrammarBuilder::ref(call));
      another.push_back(structured::GrammarBuilder::ref(more));
      b.alternative(more, {});
      b.alternative(more, another);
      root = b.rule({{structured::GrammarBuilder::ref(call), structured::GrammarBuilder::ref(more)}});
    }
    return std::make_shared<const structured::Grammar>(b.finish(root));
  } catch (const structured::SchemaError& e) {
    throw invalid_field(e.path(), e.problem());
  } catch (const Error& e) {
    throw invalid_field("tools", e.message());
  }
}

}  // namespace adallm::server
