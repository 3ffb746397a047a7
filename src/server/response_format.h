// response_format of chat and completion requests: "text" (nothing), "json_object" (any JSON object) and
// "json_schema" (the schema's grammar), compiled when the request is parsed so that a bad or unsupported
// schema is a 400 naming the field (response_format.json_schema.schema.properties.x.type) before anything
// is queued. Grammars are cached by schema text. Turning a grammar into a per-request TokenConstraint is
// the serving layer's (it has the tokenizer).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "structured/grammar.h"

namespace adallm::server {

struct ResponseFormat {
  std::string type;  // "json_object" or "json_schema"
  std::shared_ptr<const structured::Grammar> grammar;
};

// nullopt for {"type": "text"}; ApiError 400 naming the field for anything malformed or unsupported.
std::optional<ResponseFormat> parse_response_format(const nlohmann::ordered_json& v);

}  // namespace adallm::server
