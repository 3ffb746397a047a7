// JSON schema → grammar → matcher: documents accepted byte by byte, refusals at the right byte, and
// schemas refused with the keyword's path.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "structured/json_schema.h"
#include "structured_util.h"

namespace adallm::test {
namespace {

struct Case {
  const char* schema;
  std::vector<std::string> valid;
  std::vector<std::pair<std::string, int>> invalid;  // document, the byte refused (-1: all accepted, incomplete)
};

const std::vector<Case> kCases = {
    {R"({"type":"object","properties":{"ok":{"type":"boolean"}},"required":["ok"],"additionalProperties":false})",
     {R"({"ok":true})", R"({"ok": false})"},
     {{R"({})", 1}, {R"({"ok":1})", 6}, {R"({"ok":true,"x":1})", 10}, {R"( {"ok":true})", 0}, {R"({"ok":  true})", 7},
      {R"({"ok":true)", -1}}},
    {R"({"type":"object","properties":{"a":{"type":"integer"},"b":{"type":"string"},"c":{"type":"null"}},"required":["b"]})",
     {R"({"b":""})", R"({"a":1,"b":"x"})", R"({"a":-20, "b":"x", "c":null})", R"({"b":"y","c":null})"},
     {{R"({"a":1})", 6}, {R"({"b":"x","a":1})", 10}, {R"({"a":01,"b":""})", 6}, {R"({"a":1.5,"b":""})", 6}}},
    {R"({"type":"array","items":{"type":"number"},"minItems":1,"maxItems":3})",
     {"[0]", "[1.5,-2e10, 3E+2]", "[0.25,1,2]"},
     {{"[]", 1}, {"[1,2,3,4]", 6}, {"[1.]", 3}, {"[-]", 2}, {"[1e]", 3}}},
    {R"({"type":"array","prefixItems":[{"type":"string"},{"type":"integer"}],"items":false})",
     {"[]", R"(["a"])", R"(["a",1])"},
     {{R"(["a",1,2])", 6}, {R"([1])", 1}}},
    {R"({"type":"array","prefixItems":[{"const":"x"}],"items":{"type":"boolean"},"minItems":2})",
     {R"(["x",true])", R"(["x",true,false])"},
     {{R"(["x"])", 4}, {R"(["y",true])", 2}}},
    {R"({"enum":["red","green",3,null,{"k":[1]}]})",
     {R"("red")", R"("green")", "3", "null", R"({"k":[1]})"},
     {{R"("blue")", 1}, {"4", 0}, {R"({"k": [1]})", 5}}},
    {R"({"type":["string","null"],"maxLength":2})",
     {R"("")", R"("ab")", "null", R"("é\n")"},
     {{R"("abc")", 3}, {"1", 0}}},
    {R"({"type":"string","minLength":2,"maxLength":3})",
     {R"("ab")", R"("abc")", R"("日本")", R"("\u00e9x")"},
     {{R"("a")", 2}, {R"("abcd")", 4}}},
    {R"({"type":"string"})",
     {R"("")", R"("tab\there \"q\" \\ \/ \u12aF")", "\"\xF0\x9F\x98\x80\""},
     {{"\"a\nb\"", 2}, {R"("\x")", 2}, {R"("\u12g")", 5}, {"\"\xC0\x80\"", 1}, {"\"\xED\xA0\x80\"", 2}, {"\"\xFF\"", 1}}},
    {R"({"anyOf":[{"type":"integer"},{"type":"object","properties":{"n":{"type":"integer"}},"required":["n"],"additionalProperties":false}]})",
     {"12", R"({"n":3})"},
     {{R"({"m":3})", 2}, {"true", 0}}},
    {R"({"oneOf":[{"type":"string","maxLength":1},{"type":"string","minLength":1}]})",
     {R"("")", R"("a")", R"("abc")"},
     {}},
    {R"({"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"],"additionalProperties":false}},"$ref":"#/$defs/node"})",
     {R"({"v":1,"next":null})", R"({"v":1,"next":{"v":2,"next":{"v":3,"next":null}}})"},
     {{R"({"v":1,"next":{"v":2}})", 20}}},
    {R"({"definitions":{"t":{"type":"array","items":{"$ref":"#"}}},"$ref":"#/definitions/t"})",
     {"[]", "[[],[[]]]"},
     {{"[1]", 1}}},
    {R"({"type":"integer","minimum":-15,"maximum":120})",
     {"-15", "-9", "-1", "0", "7", "99", "100", "120", "15"},
     {{"-16", 2}, {"121", 2}, {"-0", 1}, {"01", 1}, {"1000", 3}}},
    {R"({"type":"integer","exclusiveMinimum":9})",
     {"10", "11", "99", "100", "123456789"},
     {{"9", -1}, {"-1", 0}, {"0", 0}}},
    {R"({"type":"integer","maximum":-3})",
     {"-3", "-4", "-10", "-99999"},
     {{"-2", -1}, {"0", 0}, {"3", 0}}},
    {R"({"type":"number","minimum":0})",
     {"0", "0.5", "12e-3"},
     {{"-1", 0}}},
    {R"({"type":"string","format":"date-time"})",
     {R"("2024-02-29T23:59:60Z")", R"("1999-12-31T00:00:00.123+05:30")"},
     {{R"("2024-13-01T00:00:00Z")", 7}, {R"("2024-01-01 00:00:00Z")", 11}, {R"("2024-01-01T24:00:00Z")", 13}}},
    {R"({"type":"string","format":"uuid"})",
     {R"("123e4567-e89b-12d3-a456-426614174000")"},
     {{R"("123e4567e89b")", 9}}},
    {R"({"type":"object"})",
     {"{}", R"({"a":[1,{"b":null}], "c":"d"})", R"({"x":{}})"},
     {{"[]", 0}, {R"({"a" :1})", 4}}},
    {R"({"type":"object","properties":{"id":{"type":"integer"}},"required":["id"],"additionalProperties":{"type":"string"}})",
     {R"({"id":1})", R"({"id":1,"x":"y", "z":"w"})"},
     {{R"({"id":1,"x":2})", 12}, {R"({"x":"y"})", 2}}},
    {R"({"type":"object","properties":{"a":{"type":"boolean"},"b":{"type":"boolean"}}})",
     {"{}", R"({"a":true})", R"({"b":true})", R"({"a":true,"b":false})"},
     {{R"({,"b":true})", 1}, {R"({"a":true,})", 10}}},
    {R"(true)", {"1", R"({"a":[]})", R"("s")", "null"}, {{"nul", -1}}},
    {R"({"type":"array","items":{"type":"integer"}})", {"[]", "[1]", "[1, 2,3]"}, {{"[1,]", 3}, {"[,1]", 1}}},
};

TEST(JsonSchema, DocumentsAcceptedAndRefusedAtTheRightByte) {
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.schema);
    const auto g = schema_grammar(c.schema);
    for (const std::string& doc : c.valid) expect_accepted(g, doc);
    for (const auto& [doc, at] : c.invalid) {
      EXPECT_EQ(refused_at(g, doc), at) << doc;
      if (at < 0) {
        structured::Matcher m(g);
        ASSERT_TRUE(m.advance(doc));
        EXPECT_FALSE(m.complete()) << doc;
      }
    }
  }
}

TEST(JsonSchema, AJsonObjectGrammarTakesAnyObjectOnly) {
  const auto g = std::make_shared<const structured::Grammar>(structured::json_object_grammar());
  for (const char* doc : {"{}", R"({"a":1})", R"({"a": {"b": [true, null, "x", -1.5e3]}, "c": []})"}) {
    expect_accepted(g, doc);
  }
  EXPECT_EQ(refused_at(g, "[1]"), 0);
  EXPECT_EQ(refused_at(g, "\"x\""), 0);
  EXPECT_EQ(refused_at(g, "{\"a\":1}\n"), 7);
  // After the closing brace nothing may follow: the matcher reports it finished.
  structured::Matcher m(g);
  ASSERT_TRUE(m.advance("{}"));
  EXPECT_TRUE(m.complete());
  EXPECT_FALSE(m.can_continue());
}

TEST(JsonSchema, WhitespaceIsBoundedSoNoOutputRunsForever) {
  const auto g = schema_grammar(R"({"type":"object"})");
  EXPECT_EQ(refused_at(g, "{ }"), 1);
  EXPECT_EQ(refused_at(g, "{\"a\":  1}"), 6);
  EXPECT_EQ(refused_at(g, "{\"a\":\n1}"), 5);
  EXPECT_EQ(refused_at(g, "{\"a\":1 }"), 6);
}

TEST(JsonSchema, UnsupportedOrBadSchemasNameTheKeywordAndItsPath) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"type":"string","pattern":"^(a)\\1$"})", "schema.pattern"},
      {R"({"type":"object","properties":{"x":{"type":"strin"}}})", "schema.properties.x.type"},
      {R"({"type":"object","properties":{"x":{"type":"string","format":"email"}}})", "schema.properties.x.format"},
      {R"({"type":"object","properties":{"x":{"type":"number","maximum":3}}})", "schema.properties.x.maximum"},
      {R"({"type":"object","required":["y"],"properties":{"x":{}}})", "schema.required"},
      {R"({"type":"object","patternProperties":{}})", "schema.patternProperties"},
      {R"({"type":"array","items":{"type":"integer","multipleOf":2}})", "schema.items.multipleOf"},
      {R"({"type":"integer","minLength":2})", "schema.minLength"},
      {R"({"$ref":"#/$defs/missing"})", "schema.$ref"},
      {R"({"$ref":"#"})", "schema"},
      {R"({"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"anyOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"})", "schema"},
      {R"({"anyOf":[{"type":"string"}],"type":"string"})", "schema.type"},
      {R"({"allOf":[{"type":"string"},{"maxLength":3}]})", "schema.allOf"},
      {R"({"type":"array","minItems":5,"maxItems":2})", "schema.minItems"},
      {R"({"type":"string","maxLength":100000})", "schema.maxLength"},
      {R"({"type":"object","properties":{"x":false}})", "schema.properties.x"},
      {R"({"not":{"type":"string"}})", "schema.not"},
      {R"({"type":"integer","minimum":5,"maximum":4})", "schema"},
      {R"("string")", "schema"},
  };
  for (const auto& [schema, path] : cases) {
    try {
      structured::compile_json_schema(nlohmann::ordered_json::parse(schema), "schema");
      ADD_FAILURE() << schema << ": compiled; expected a refusal at " << path;
    } catch (const structured::SchemaError& e) {
      EXPECT_EQ(e.path(), path) << schema << ": " << e.what();
    }
  }
}

}  // namespace
}  // namespace adallm::test
