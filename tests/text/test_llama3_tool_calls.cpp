// text/tool_calls, Llama 3 JSON: the parser on whole texts (one call, calls separated by ";", a python tag,
// "arguments" for "parameters", answers that are no call, malformed first and later calls, cut-off
// objects, braces inside strings), the same texts streamed split at every boundary and byte by byte, what
// is released early, and detection from Meta's Llama 3.1 chat template (tests/data/templates).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "test_util.h"
#include "text/model_text.h"
#include "text/tool_calls.h"
#include "streamed_text.h"
#include "tokenizer_files.h"

namespace adallm::text {
namespace {
namespace fs = std::filesystem;

const std::string kWeather = R"({"name": "get_weather", "parameters": {"city": "Paris", "unit": "celsius"}})";
const std::string kWeatherArgs = R"({"city": "Paris", "unit": "celsius"})";
const std::string kTime = R"({"name": "get_time", "parameters": {}})";

struct Case {
  const char* what;
  std::string text;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"no call", "The weather is fine.", "The weather is fine.", {}},
      {"one call", kWeather, "", {{"get_weather", kWeatherArgs}}},
      {"whitespace around", "\n " + kWeather + " \n", "", {{"get_weather", kWeatherArgs}}},
      {"a python tag first", "<|python_tag|>" + kWeather, "", {{"get_weather", kWeatherArgs}}},
      {"two calls (vLLM's separator)", kWeather + "; " + kTime, "", {{"get_weather", kWeatherArgs}, {"get_time", "{}"}}},
      {"separator without spaces, and a trailing one", kTime + ";" + kWeather + ";\n", "",
       {{"get_time", "{}"}, {"get_weather", kWeatherArgs}}},
      {"arguments for parameters", R"({"name": "f", "arguments": {"x": 1}})", "", {{"f", R"({"x": 1})"}}},
      {"arguments written as json.dumps", R"({"parameters":{"b":[1,2.50,1e3],"a":"\u00e9"},"name":"f"})", "",
       {{"f", R"({"b": [1, 2.5, 1000.0], "a": "é"})"}}},
      {"braces and quotes inside strings", R"({"name": "f", "parameters": {"s": "}{ \"}\" \\"}})", "",
       {{"f", R"({"s": "}{ \"}\" \\"})"}}},
      {"text before the object: no call", "Sure: " + kWeather, "Sure: " + kWeather, {}},
      {"text after the object: no call", kWeather + " Done.", kWeather + " Done.", {}},
      {"first object no call: all content", R"({"name": "f"}; )" + kTime, R"({"name": "f"}; )" + kTime, {}},
      {"a JSON answer that is no call", R"({"answer": 42})", R"({"answer": 42})", {}},
      {"empty name", R"({"name": "", "parameters": {}})", R"({"name": "", "parameters": {}})", {}},
      {"parameters a string", R"({"name": "f", "parameters": "{}"})", R"({"name": "f", "parameters": "{}"})", {}},
      {"a later object no call: it and the rest are content", kTime + "; {\"oops\": 1} tail", "{\"oops\": 1} tail",
       {{"get_time", "{}"}}},
      {"a later part not an object", kTime + "; and then", "and then", {{"get_time", "{}"}}},
      {"cut off inside the object", R"({"name": "f", "parameters": {"a": )", R"({"name": "f", "parameters": {"a": )", {}},
      {"a later call cut off", kTime + "; {\"name\": \"g\"", "{\"name\": \"g\"", {{"get_time", "{}"}}},
      {"invalid JSON with balanced braces", R"({"name": "f", "parameters": {a}})", R"({"name": "f", "parameters": {a}})",
       {}},
      {"only whitespace", " \n", " \n", {}},
      {"a python tag alone", "<|python_tag|>", "<|python_tag|>", {}},
      {"a partial python tag", "<|python", "<|python", {}},
      {"unicode content", "Voilà — 東京 👋", "Voilà — 東京 👋", {}},
  };
  return all;
}

ToolCallOutput streamed(const std::string& text, const std::vector<size_t>& cuts) {
  Llama3JsonToolCallParser parser;
  ToolCallOutput out;
  test::push_cut(parser, text, cuts, out);
  EXPECT_EQ(parser.num_calls(), out.calls.size());
  return out;
}

bool same(const Case& c, const ToolCallOutput& out) {
  if (out.content != c.content || out.calls.size() != c.calls.size()) return false;
  for (size_t i = 0; i < c.calls.size(); ++i) {
    if (out.calls[i].name != c.calls[i].first || out.calls[i].arguments != c.calls[i].second) return false;
  }
  return true;
}

void expect_output(const Case& c, const ToolCallOutput& out, const std::string& how) {
  SCOPED_TRACE(std::string(c.what) + ", " + how);
  EXPECT_EQ(out.content, c.content);
  ASSERT_EQ(out.calls.size(), c.calls.size());
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(out.calls[i].name, c.calls[i].first);
    EXPECT_EQ(out.calls[i].arguments, c.calls[i].second);
  }
}

TEST(Llama3JsonToolCalls, WholeTexts) {
  for (const Case& c : cases()) expect_output(c, parse_llama3_json_tool_calls(c.text), "at once");
}

TEST(Llama3JsonToolCalls, SplitAtEveryBoundary) {
  for (const Case& c : cases()) {
    test::for_every_cut(
        c.text.size(), 120, [&](const std::vector<size_t>& cuts) { return streamed(c.text, cuts); },
        [&](const ToolCallOutput& out, const std::string& how) { expect_output(c, out, how); },
        [&](const ToolCallOutput& out) { return same(c, out); });
  }
}

// An answer that is no call streams at once; a call comes out once the ";" after it (or the end) is there.
TEST(Llama3JsonToolCalls, ReleasesEarly) {
  {
    Llama3JsonToolCallParser parser;
    ToolCallOutput out;
    parser.push("\n", out);
    EXPECT_EQ(out.content, "");
    parser.push("The answer", out);
    EXPECT_EQ(out.content, "\nThe answer");
  }
  Llama3JsonToolCallParser parser;
  ToolCallOutput out;
  parser.push(kTime, out);
  EXPECT_TRUE(out.calls.empty());  // text may still follow it, which would make it content
  parser.push(" ;", out);
  ASSERT_EQ(out.calls.size(), 1u);
  parser.push(R"( {"name": "f", "parameters": {"x": "}"})", out);
  EXPECT_EQ(out.calls.size(), 1u);
  parser.push("}", out);
  EXPECT_EQ(out.calls.size(), 1u);
  parser.flush(out);
  ASSERT_EQ(out.calls.size(), 2u);
  EXPECT_EQ(out.calls[1].arguments, R"({"x": "}"})");
  EXPECT_EQ(out.content, "");
  EXPECT_EQ(make_tool_call_parser(ToolCallFormat::none), nullptr);
  EXPECT_NE(make_tool_call_parser(ToolCallFormat::llama3_json), nullptr);
}

// Meta's Llama 3.1 template (committed under tests/data/templates, its source named in the README there)
// with the Llama 3.1 tokenizer: tools are rendered and calls are read as Llama 3 JSON.
TEST(DetectToolCalls, Llama31Template) {
  test::TempDir dir;
  const fs::path npm = test::tokenizer_json("llama3_1").parent_path();
  fs::copy_file(npm / "tokenizer.json", dir / "tokenizer.json");
  fs::copy_file(npm / "tokenizer_config.json", dir / "tokenizer_config.json");
  fs::copy_file(fs::path(ADALLM_TEST_DIR) / "data" / "templates" / "llama-3.1-instruct.jinja",
                dir / "chat_template.jinja");
  const ToolCallSupport s = detect_tool_calls(load_model_text(dir.path()));
  EXPECT_TRUE(s.template_renders_tools);
  EXPECT_EQ(s.format, ToolCallFormat::llama3_json);
  EXPECT_EQ(std::string(tool_call_format_name(s.format)), "llama3_json");
}

}  // namespace
}  // namespace adallm::text
