// JSON Schema → Grammar: the subset that response_format json_schema and tool parameters use, compiled
// into a grammar of the compact JSON texts that satisfy it. Whitespace: none, except one optional space
// after each ':' and ',' (so no run of whitespace can go on forever). Object properties come in schema
// order. A keyword outside the subset is a SchemaError naming it, never ignored; docs/http-api.md lists
// the subset and the policy for what JSON Schema leaves open (absent additionalProperties, formats).
#pragma once

#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "structured/grammar.h"
#include "structured/regex.h"

namespace adallm::structured {

// A schema the compiler refuses: `path` is the offending field (the caller's prefix, then
// ".properties.x.type" style), `problem` what is wrong with it.
class SchemaError : public std::runtime_error {
 public:
  SchemaError(std::string path, const std::string& problem)
      : std::runtime_error(path + ": " + problem), path_(std::move(path)), problem_(problem) {}
  const std::string& path() const { return path_; }
  const std::string& problem() const { return problem_; }

 private:
  std::string path_;
  std::string problem_;
};

// Compiles schemas into rules of one GrammarBuilder; $ref resolves against `document` (the schema that
// holds the $defs / definitions), each target compiled once, so recursion through $ref works.
class SchemaCompiler {
 public:
  SchemaCompiler(GrammarBuilder& builder, const nlohmann::ordered_json& document, std::string document_path);

  // The rule of the JSON texts valid under `schema` (found at `path`). Throws SchemaError.
  int32_t compile(const nlohmann::ordered_json& schema, const std::string& path);
  int32_t any_value();
  int32_t any_object();
  int32_t space();  // the optional space after ':' and ','

 private:
  int32_t compile_ref(const std::string& ref, const std::string& path);
  int32_t compile_type(const std::string& type, const nlohmann::ordered_json& schema, const std::string& path);
  int32_t object(const nlohmann::ordered_json& schema, const std::string& path);
  int32_t array(const nlohmann::ordered_json& schema, const std::string& path);
  int32_t string(const nlohmann::ordered_json& schema, const std::string& path);
  int32_t integer(const nlohmann::ordered_json& schema, const std::string& path);
  int32_t number(const nlohmann::ordered_json& schema, const std::string& path);
  int32_t literal_value(const nlohmann::ordered_json& value);
  int32_t char_rule();
  int32_t chars();          // any run of string characters
  int32_t digits();         // any run of [0-9]
  int32_t natural();        // 0 | [1-9][0-9]*
  int32_t plain_string();   // any JSON string
  int32_t plain_number();   // any JSON number
  int32_t plain_integer();  // any JSON integer
  int32_t format(const std::string& name, const std::string& path);
  // `pattern` (json_pattern.cpp): the strings whose decoded content the regex `value` matches, at `path`.
  int32_t pattern(const nlohmann::ordered_json& value, const std::string& path);
  void regex(const RegexNode& node, std::vector<Element>& out);
  // One character of a string's content, from `set`: raw, or escaped as JSON allows.
  int32_t content_char(const CodepointSet& set);
  int32_t hex_range(uint32_t lo, uint32_t hi);  // the four hex digits of lo..hi, either case
  Element hex_digits(int lo, int hi);

  GrammarBuilder& b_;
  const nlohmann::ordered_json& document_;
  std::string document_path_;
  std::map<std::string, int32_t> refs_, shared_;  // $ref → rule; shared rules by name
};

// A grammar of the JSON texts valid under `schema`; errors name `path` (e.g.
// "response_format.json_schema.schema") and the keyword below it.
Grammar compile_json_schema(const nlohmann::ordered_json& schema, const std::string& path);
// Any JSON object (response_format json_object).
Grammar json_object_grammar();

}  // namespace adallm::structured
