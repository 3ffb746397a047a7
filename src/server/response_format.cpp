// parse_response_format: the field's shape (OpenAI's: json_schema {name, schema, description?, strict?}),
// then the schema compiled through structured/json_schema.h, with a small cache by schema text.
#include "server/response_format.h"

#include <list>
#include <mutex>
#include <utility>

#include "server/request_fields.h"
#include "structured/json_schema.h"

namespace adallm::server {
namespace {

using namespace fields;

constexpr size_t kCachedGrammars = 64;
constexpr size_t kMaxNameBytes = 64;  // OpenAI's: [a-zA-Z0-9_-]{1,64}

// The grammar of `schema`, compiled once per distinct schema text among the recent ones.
std::shared_ptr<const structured::Grammar> compile_cached(const json& schema, const std::string& path) {
  static std::mutex mutex;
  static std::list<std::pair<std::string, std::shared_ptr<const structured::Grammar>>> cache;  // most recent first
  const std::string key = schema.dump();
  {
    const std::lock_guard lock(mutex);
    for (auto it = cache.begin(); it != cache.end(); ++it) {
      if (it->first == key) {
        cache.splice(cache.begin(), cache, it);
        return it->second;
      }
    }
  }
  std::shared_ptr<const structured::Grammar> grammar;
  try {
    grammar = std::make_shared<const structured::Grammar>(structured::compile_json_schema(schema, path));
  } catch (const structured::SchemaError& e) {
    throw invalid_field(e.path(), e.problem());
  }
  const std::lock_guard lock(mutex);
  cache.emplace_front(key, grammar);
  if (cache.size() > kCachedGrammars) cache.pop_back();
  return grammar;
}

}  // namespace

std::optional<ResponseFormat> parse_response_format(const json& v) {
  if (!v.is_object()) wrong_type("response_format", "an object", v);
  const auto type = v.find("type");
  if (type == v.end()) throw invalid_field("response_format.type", "missing");
  const std::string kind = get_string("response_format.type", *type);
  if (kind == "text" || kind == "json_object") {
    if (v.size() != 1) throw invalid_field("response_format", "type \"" + kind + "\" takes no other field");
    if (kind == "text") return std::nullopt;
    static const auto object = std::make_shared<const structured::Grammar>(structured::json_object_grammar());
    return ResponseFormat{kind, object};
  }
  if (kind != "json_schema") {
    throw invalid_field("response_format.type", "expected \"text\", \"json_object\" or \"json_schema\", got \"" + kind + "\"");
  }
  const json* schema = nullptr;
  bool has_name = false;
  each_field("response_format", v, {
      {"type", [](const std::string&, const json&) {}},
      {"json_schema",
       [&](const std::string& field, const json& js) {
         if (!js.is_object()) wrong_type(field, "an object", js);
         each_field(field, js, {
             {"name",
              [&](const std::string& f, const json& n) {
                const std::string name = get_string(f, n);
                if (name.empty() || name.size() > kMaxNameBytes) {
                  throw invalid_field(f, "must have 1 to " + std::to_string(kMaxNameBytes) + " bytes");
                }
                has_name = true;
              }},
             {"description", [](const std::string& f, const json& d) { get_string(f, d); }},
             // strict or not, the output is held to the schema: there is no best-effort mode.
             {"strict", [](const std::string& f, const json& s) { get_bool(f, s); }},
             {"schema", [&](const std::string&, const json& s) { schema = &s; }},
         });
       }},
  });
  if (!v.contains("json_schema") || v["json_schema"].is_null()) throw invalid_field("response_format.json_schema", "missing");
  if (!has_name) throw invalid_field("response_format.json_schema.name", "missing");
  if (schema == nullptr) throw invalid_field("response_format.json_schema.schema", "missing");
  return ResponseFormat{kind, compile_cached(*schema, "response_format.json_schema.schema")};
}

}  // namespace adallm::server
