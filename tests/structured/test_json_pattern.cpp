// `pattern`: the compiled grammar against JavaScript's RegExp (tests/oracles/patterns.mjs writes the cases
// into ADALLM_ORACLE_DIR), each string written three ways (raw UTF-8, \u escapes past ASCII, \u escapes
// for everything); refusals that name `...pattern`; the spellings JSON allows; and the grammar's size.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "structured/json_schema.h"
#include "structured/matcher.h"
#include "structured_util.h"
#include "text/oracle_data.h"

namespace adallm::test {
namespace {

using json = nlohmann::ordered_json;

std::shared_ptr<const structured::Grammar> pattern_grammar(const std::string& pattern) {
  const json schema = {{"type", "string"}, {"pattern", pattern}};
  return std::make_shared<const structured::Grammar>(structured::compile_json_schema(schema, "schema"));
}

bool accepts(const std::shared_ptr<const structured::Grammar>& g, const std::string& doc) {
  structured::Matcher m(g);
  return m.advance(doc) && m.complete();
}

// The JSON text of `s` with every code point escaped as \uXXXX (a surrogate pair past the BMP).
std::string all_escaped(const std::string& s) {
  static const char* kHex = "0123456789abcdef";
  const auto unit = [&](std::string& out, uint32_t u) {
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(u >> shift) & 0xF];
  };
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<uint8_t>(s[i]);
    const int n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    uint32_t c = n == 1 ? b : b & (0x7F >> n);
    for (int k = 1; k < n; ++k) c = (c << 6) | (static_cast<uint8_t>(s[i + static_cast<size_t>(k)]) & 0x3F);
    i += static_cast<size_t>(n);
    if (c >= 0x10000) {
      unit(out, 0xD800 + ((c - 0x10000) >> 10));
      unit(out, 0xDC00 + ((c - 0x10000) & 0x3FF));
    } else {
      unit(out, c);
    }
  }
  return out + "\"";
}

TEST(JsonPattern, AgreesWithJavaScriptRegExpOnEveryOracleCase) {
  const auto rows = oracle::read_jsonl(oracle::oracle_dir() / "patterns" / "cases.jsonl");
  std::map<std::string, std::shared_ptr<const structured::Grammar>> grammars;
  size_t matching = 0, checked = 0, disagreements = 0;
  for (const auto& row : rows) {
    const std::string pattern = row.at("pattern"), text = row.at("string");
    const bool matches = row.at("matches");
    auto& g = grammars[pattern];
    if (!g) {
      try {
        g = pattern_grammar(pattern);
      } catch (const std::exception& e) {
        ADD_FAILURE() << "pattern " << pattern << " (JavaScript accepts it) refused: " << e.what();
        g = pattern_grammar("^$");  // keeps the loop going; its cases then count as disagreements if wrong
      }
    }
    matching += matches;
    const nlohmann::json s = text;
    for (const std::string& doc : {s.dump(), s.dump(-1, ' ', /*ensure_ascii=*/true), all_escaped(text)}) {
      ++checked;
      if (accepts(g, doc) != matches && ++disagreements <= 30) {
        ADD_FAILURE() << "pattern " << nlohmann::json(pattern).dump() << ", document " << doc << ": RegExp says "
                      << (matches ? "match" : "no match") << ", the grammar " << (matches ? "refuses" : "accepts");
      }
    }
  }
  EXPECT_EQ(disagreements, 0u);
  // The oracle file holds what patterns.mjs writes: enough cases on both sides to mean something.
  EXPECT_GE(grammars.size(), 60u);
  EXPECT_GE(rows.size(), 3000u);
  EXPECT_GE(matching, 500u);
  EXPECT_GE(rows.size() - matching, 1500u);
  EXPECT_EQ(checked, 3 * rows.size());
}

TEST(JsonPattern, RefusedConstructsNameThePattern) {
  // pattern → a word the message must contain
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"((a)\1)", "backreference"},
      {R"(^(?<y>\d+)\k<y>$)", "named groups"},
      {R"(\k<y>)", "named backreference"},
      {"a(?=b)", "lookahead"},
      {"a(?!b)", "lookahead"},
      {"(?<=a)b", "lookbehind"},
      {"(?<!a)b", "lookbehind"},
      {"(?i)abc", "flags"},
      {"(?i:abc)", "flags"},
      {"a^b", "'^'"},
      {"(^a)", "'^'"},
      {"a$b", "'$'"},
      {"(a$)", "'$'"},
      {"^^a", "'^'"},
      {R"(\bword\b)", "word boundaries"},
      {R"(a\B)", "word boundaries"},
      {"a{4097}", "4096"},
      {"a{1,5000}", "4096"},
      {"a{99999999999999999999999}", "4096"},
      {"(a{4096}){17}", "exceed"},
      {"a.{0,65}b", "many places"},
      {"^.*x{0,100}$", "many places"},
      {"^(?:a|ab){1,100}$", "many places"},
      {"^(?:x*x{0,100},){1,3}$", "many places"},
      {"[]", "matches no string"},
      {R"(^[^\s\S]$)", "matches no string"},
      {R"(\p{L})", "property"},
      {R"(\cA)", "control"},
      {R"(\e)", "unknown escape"},
      {R"(\01)", "octal"},
      {"(a", "')'"},
      {"a)", "')'"},
      {"[a", "']'"},
      {"*a", "nothing to repeat"},
      {"a**", "nothing to repeat"},
      {"a{2", "incomplete"},
      {"a{,2}", "incomplete"},
      {"a{3,2}", "out of order"},
      {"[z-a]", "out of order"},
      {R"([\d-z])", "range"},
      {R"(\x4)", "hex"},
      {R"(\u12)", "hex"},
      {R"(\u{110000})", "10FFFF"},
      {R"(\uD800)", "surrogate"},
      {"]", "\\]"},
      {"}", "\\}"},
      {"a\\", "'\\'"},
      {std::string(65, '(') + std::string(65, ')'), "nested"},
  };
  for (const auto& [pattern, word] : cases) {
    SCOPED_TRACE(pattern);
    try {
      pattern_grammar(pattern);
      ADD_FAILURE() << "compiled; expected a refusal";
    } catch (const structured::SchemaError& e) {
      EXPECT_EQ(e.path(), "schema.pattern") << e.what();
      EXPECT_NE(e.problem().find(word), std::string::npos) << e.what();
      EXPECT_NE(e.problem().find("pattern"), std::string::npos) << e.what();
    }
  }
}

TEST(JsonPattern, ALongRefusedPatternIsQuotedShort) {
  const std::string pattern = std::string(100000, 'a') + "\\1";
  try {
    pattern_grammar(pattern);
    ADD_FAILURE() << "compiled; expected a refusal";
  } catch (const structured::SchemaError& e) {
    EXPECT_EQ(e.path(), "schema.pattern");
    EXPECT_LT(e.problem().size(), 300u) << e.problem().substr(0, 300);
    EXPECT_NE(e.problem().find("(100002 bytes)"), std::string::npos) << e.problem().substr(0, 300);
    EXPECT_NE(e.problem().find("backreference"), std::string::npos) << e.problem().substr(0, 300);
  }
}

TEST(JsonPattern, NotJointlyWithLengthsOrFormatAndOnlyAString) {
  const std::vector<std::pair<const char*, const char*>> cases = {
      {R"({"type":"string","pattern":"^a+$","maxLength":3})", "schema.maxLength"},
      {R"({"type":"string","pattern":"^a+$","minLength":1})", "schema.minLength"},
      {R"({"type":"string","pattern":"^a+$","format":"date"})", "schema.format"},
      {R"({"type":"string","pattern":5})", "schema.pattern"},
      {R"({"type":"object","properties":{"id":{"type":"string","pattern":"(a)\\1"}}})", "schema.properties.id.pattern"},
      {R"({"type":"integer","pattern":"^1$"})", "schema.pattern"},
  };
  for (const auto& [schema, path] : cases) {
    try {
      structured::compile_json_schema(json::parse(schema), "schema");
      ADD_FAILURE() << schema << ": compiled; expected a refusal at " << path;
    } catch (const structured::SchemaError& e) {
      EXPECT_EQ(e.path(), path) << schema << ": " << e.what();
    }
  }
}

TEST(JsonPattern, EveryJsonSpellingOfAMatchingStringIsAccepted) {
  const auto quote = pattern_grammar(R"(^a"b\\c/$)");  // content: a " b \ c /
  for (const char* doc : {R"("a\"b\\c/")", R"("a\u0022b\u005cc\/")", R"("\u0061\"b\\c\u002F")"}) {
    expect_accepted(quote, doc);
  }
  EXPECT_EQ(refused_at(quote, R"("a"b)"), 2);  // a raw quote ends the string, and "a" does not match
  const auto controls = pattern_grammar(R"(^\n\t\x01$)");
  for (const char* doc : {R"("\n\t\u0001")", R"("\u000A\u0009\u0001")"}) expect_accepted(controls, doc);
  EXPECT_EQ(refused_at(controls, "\"\n"), 1);  // a raw newline is not JSON
  const auto emoji = pattern_grammar("^😀$");
  for (const char* doc : {"\"😀\"", R"("\ud83d\ude00")", R"("\uD83D\uDE00")"}) expect_accepted(emoji, doc);
  EXPECT_EQ(refused_at(emoji, R"("\ud83d\ude01")"), 12);
}

TEST(JsonPattern, RefusedAtTheFirstByteThatCannotMatch) {
  const auto digits = pattern_grammar(R"(^\d{3}-\d{4}$)");
  expect_accepted(digits, R"("555-1234")");
  EXPECT_EQ(refused_at(digits, R"("55-1234")"), 3);
  EXPECT_EQ(refused_at(digits, R"("555-12345")"), 9);
  const auto words = pattern_grammar("^(foo|bar)+baz?$");
  expect_accepted(words, R"("foobarbaz")");
  EXPECT_EQ(refused_at(words, R"("foobaq")"), 6);
  // Unanchored: anything around a match, and nothing refused before the string ends.
  const auto anywhere = pattern_grammar("ab");
  EXPECT_EQ(refused_at(anywhere, R"("xxabyy")"), -1);
  EXPECT_EQ(refused_at(anywhere, R"("xxa")"), 4);  // the string may not end before "ab" came
  structured::Matcher m(anywhere);
  ASSERT_TRUE(m.advance(R"("xxa)"));
  EXPECT_FALSE(m.complete());
  EXPECT_EQ(refused_at(pattern_grammar("^a"), R"("ba")"), 1);
  EXPECT_EQ(refused_at(pattern_grammar("a$"), R"("ab)"), -1);  // "ab…a" may still come
  EXPECT_EQ(refused_at(pattern_grammar("a$"), R"("ab")"), 3);
}

TEST(JsonPattern, KeywordsAroundThePattern) {
  // Without "type", pattern makes it a string schema; with a type list, other types stay allowed.
  const auto implied = schema_grammar(R"({"pattern":"^x+$"})");
  expect_accepted(implied, R"("xx")");
  EXPECT_EQ(refused_at(implied, "1"), 0);
  const auto nullable = schema_grammar(R"({"type":["string","null"],"pattern":"^[0-9]{2}$"})");
  expect_accepted(nullable, "null");
  expect_accepted(nullable, R"("42")");
  EXPECT_EQ(refused_at(nullable, R"("4x")"), 2);
  const auto in_object = schema_grammar(
      R"({"type":"object","properties":{"id":{"type":"string","pattern":"^[a-z]{2}\\d$"}},"required":["id"],"additionalProperties":false})");
  expect_accepted(in_object, R"({"id":"ab1"})");
  EXPECT_EQ(refused_at(in_object, R"({"id":"abc"})"), 9);
}

TEST(JsonPattern, RepeatsThatCannotOverlapAreNotCountedAsAmbiguous) {
  // Each compiles: the bounded repeats start where every parse agrees ('@', '.', the anchored start), or
  // their optional copies stay within the cap of 64 live ones.
  for (const char* pattern : {"a.{0,64}b", R"(^\w+@\w{1,64}\.com$)",
                              R"(^[a-zA-Z0-9._%+-]{1,64}@[a-z]{1,255}\.[a-z]{2,63}$)", R"(^[a-z]{1,4096}$)",
                              R"(^\d{1,3}(\.\d{1,3}){3}$)", R"(^.*\d{1,10}$)", R"(^(ab){0,2000}$)",
                              R"(^(?:foo|bar){1,100}$)", R"(^(?:\d+,){1,500}$)", R"(^(a+b){1,100}$)"}) {
    SCOPED_TRACE(pattern);
    EXPECT_NO_THROW(pattern_grammar(pattern));
  }
}

TEST(JsonPattern, UnicodeClassesStayCompact) {
  // A class over all of Unicode is a few UTF-8 byte-range sequences and hex-digit ranges, not one
  // alternative per code point; the grammar of "any character but a quote or a backslash" is small.
  for (const char* pattern : {R"(^[^"\\]*$)", "^.+$", R"(^[^\s]$)", R"(^[\u0100-\u{10FFFF}]$)", R"(^\W\S\D$)"}) {
    SCOPED_TRACE(pattern);
    const auto g = pattern_grammar(pattern);
    EXPECT_LT(g->code.size(), 1000u);
    EXPECT_LT(g->sets.size(), 120u);
  }
  // An unanchored side absorbs what the pattern may have there: \d{1,4096} anywhere is one digit anywhere.
  EXPECT_LT(pattern_grammar(R"(\d{1,4096})")->code.size(), 200u);
  EXPECT_LT(pattern_grammar(R"(^a(?:b{0,4096}))")->code.size(), 200u);
  // Large but within the caps: a 4096-character word compiles and takes a 4096-character string.
  const auto long_word = pattern_grammar("^[a-z]{4096}$");
  EXPECT_TRUE(accepts(long_word, "\"" + std::string(4096, 'q') + "\""));
  EXPECT_FALSE(accepts(long_word, "\"" + std::string(4095, 'q') + "\""));
}

}  // namespace
}  // namespace adallm::test
