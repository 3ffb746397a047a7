// text/tool_calls: the Hermes parser on whole texts (calls, text around them, malformed and unclosed calls,
// arguments written back as Python's json.dumps), the same texts streamed split at every boundary (the
// result never depends on where pieces end, and content comes out as soon as it cannot start a call), and
// which format detect_tool_calls picks for the real chat templates and for made-up ones.
#include "text/tool_calls.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "test_util.h"
#include "text/model_text.h"
#include "streamed_text.h"
#include "tokenizer_files.h"

namespace adallm::text {
namespace {
namespace fs = std::filesystem;

using Output = HermesToolCallParser::Output;

std::string call(const std::string& body) { return "<tool_call>\n" + body + "\n</tool_call>"; }
const std::string kWeather = call(R"({"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}})");
const std::string kTime = call(R"({"name": "get_time", "arguments": {}})");
const std::string kBad = call(R"({"name": "get_weather", "arguments": {"city": }})");

struct Case {
  const char* what;
  std::string text;
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments
};

const std::vector<Case>& cases() {
  static const std::vector<Case> all = {
      {"no call", "Just an answer.\n", "Just an answer.\n", {}},
      {"one call", kWeather, "", {{"get_weather", R"({"city": "Paris", "unit": "celsius"})"}}},
      {"text before", "Let me check.\n\n" + kWeather, "Let me check.\n\n",
       {{"get_weather", R"({"city": "Paris", "unit": "celsius"})"}}},
      {"several calls", kWeather + "\n" + kTime, "",
       {{"get_weather", R"({"city": "Paris", "unit": "celsius"})"}, {"get_time", "{}"}}},
      {"text between and after is dropped", "A" + kTime + "mid" + kWeather + "\nI will wait.", "A",
       {{"get_time", "{}"}, {"get_weather", R"({"city": "Paris", "unit": "celsius"})"}}},
      {"arguments written as json.dumps",
       R"(<tool_call>{"arguments":{"b":[1,2.50,1e3,{"c":null}],"a":"\u00e9\ud83d\ude00"},"name":"f"}</tool_call>)", "",
       {{"f", R"({"b": [1, 2.5, 1000.0, {"c": null}], "a": "é😀"})"}}},
      {"other keys ignored", call(R"({"name": "f", "arguments": {"x": true}, "id": "abc"})"), "", {{"f", R"({"x": true})"}}},
      {"unicode content before", "Voilà — 東京 👋 " + kTime, "Voilà — 東京 👋 ", {{"get_time", "{}"}}},
      {"malformed first call: all is content", "x" + kBad + kTime, "x" + kBad + kTime, {}},
      {"malformed later call: it and the rest are content", kTime + "\n" + kBad + " tail" + kWeather,
       kBad + " tail" + kWeather, {{"get_time", "{}"}}},
      {"no name", call(R"({"arguments": {}})"), call(R"({"arguments": {}})"), {}},
      {"empty name", call(R"({"name": "", "arguments": {}})"), call(R"({"name": "", "arguments": {}})"), {}},
      {"name not a string", call(R"({"name": 7, "arguments": {}})"), call(R"({"name": 7, "arguments": {}})"), {}},
      {"no arguments", call(R"({"name": "f"})"), call(R"({"name": "f"})"), {}},
      {"arguments a string", call(R"({"name": "f", "arguments": "{}"})"), call(R"({"name": "f", "arguments": "{}"})"), {}},
      {"not an object", call("[1, 2]"), call("[1, 2]"), {}},
      {"empty call", "<tool_call></tool_call>", "<tool_call></tool_call>", {}},
      {"two objects in one call", call(R"({"name": "f", "arguments": {}} {"name": "g", "arguments": {}})"),
       call(R"({"name": "f", "arguments": {}} {"name": "g", "arguments": {}})"), {}},
      {"the closing tag inside a string cuts the call", call(R"({"name": "f", "arguments": {"s": "</tool_call>"}})"),
       call(R"({"name": "f", "arguments": {"s": "</tool_call>"}})"), {}},
      {"unclosed call that parses", "ok " + std::string("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": 1}}\n"),
       "ok ", {{"f", R"({"a": 1})"}}},
      {"unclosed call cut short", "ok <tool_call>\n{\"name\": \"f\", \"argu", "ok <tool_call>\n{\"name\": \"f\", \"argu", {}},
      {"partial tag at the end", "Hello <tool_ca", "Hello <tool_ca", {}},
      {"a lookalike tag", "use <tool_calls> or </tool_call> or <tool_cal", "use <tool_calls> or </tool_call> or <tool_cal", {}},
      {"partial tag after a call is dropped", kTime + "\n<tool_", "", {{"get_time", "{}"}}},
      {"nested too deep", call(R"({"name": "f", "arguments": {"a": )" + std::string(80, '[') + std::string(80, ']') + "}}"),
       call(R"({"name": "f", "arguments": {"a": )" + std::string(80, '[') + std::string(80, ']') + "}}"), {}},
  };
  return all;
}

void expect_output(const Case& c, const Output& out, const std::string& how) {
  SCOPED_TRACE(std::string(c.what) + ", " + how);
  EXPECT_EQ(out.content, c.content);
  ASSERT_EQ(out.calls.size(), c.calls.size());
  for (size_t i = 0; i < c.calls.size(); ++i) {
    EXPECT_EQ(out.calls[i].name, c.calls[i].first);
    EXPECT_EQ(out.calls[i].arguments, c.calls[i].second);
  }
}

bool same(const Case& c, const Output& out) {
  if (out.content != c.content || out.calls.size() != c.calls.size()) return false;
  for (size_t i = 0; i < c.calls.size(); ++i) {
    if (out.calls[i].name != c.calls[i].first || out.calls[i].arguments != c.calls[i].second) return false;
  }
  return true;
}

Output streamed(const std::string& text, const std::vector<size_t>& cuts) {
  HermesToolCallParser parser;
  Output out;
  test::push_cut(parser, text, cuts, out);
  EXPECT_EQ(parser.num_calls(), out.calls.size());
  return out;
}

TEST(HermesToolCalls, WholeTexts) {
  for (const Case& c : cases()) expect_output(c, parse_hermes_tool_calls(c.text), "at once");
}

TEST(HermesToolCalls, SplitAtEveryBoundary) {
  for (const Case& c : cases()) {
    test::for_every_cut(
        c.text.size(), 160, [&](const std::vector<size_t>& cuts) { return streamed(c.text, cuts); },
        [&](const Output& out, const std::string& how) { expect_output(c, out, how); },
        [&](const Output& out) { return same(c, out); });
  }
}

// Content is released as soon as it cannot be the start of a call; a call as soon as it is closed.
TEST(HermesToolCalls, ReleasesEarly) {
  HermesToolCallParser parser;
  Output out;
  parser.push("Let me check <tool", out);
  EXPECT_EQ(out.content, "Let me check ");
  parser.push("s>", out);  // not a tag after all
  EXPECT_EQ(out.content, "Let me check <tools>");
  parser.push(" <", out);
  EXPECT_EQ(out.content, "Let me check <tools> ");
  parser.push("tool_call>\n{\"name\": \"f\", \"arguments\": {}}\n</tool_ca", out);
  EXPECT_TRUE(out.calls.empty());
  parser.push("ll>", out);
  ASSERT_EQ(out.calls.size(), 1u);
  EXPECT_EQ(out.calls[0].name, "f");
  parser.push("\nbye", out);
  parser.flush(out);
  parser.push("more", out);  // after the end: nothing
  parser.flush(out);
  EXPECT_EQ(out.content, "Let me check <tools> ");
  EXPECT_EQ(out.calls.size(), 1u);
}

// ---- detection --------------------------------------------------------------------------------------------

fs::path npm_model_dir(const std::string& family) { return test::tokenizer_json(family).parent_path(); }

TEST(DetectToolCalls, RealTemplates) {
  const ToolCallSupport qwen3 = detect_tool_calls(load_model_text(npm_model_dir("qwen3")));
  EXPECT_TRUE(qwen3.template_renders_tools);
  EXPECT_EQ(qwen3.format, ToolCallFormat::hermes);
  EXPECT_EQ(std::string(tool_call_format_name(qwen3.format)), "hermes");
  for (const fs::path& dir : {npm_model_dir("llama3_1"), npm_model_dir("gemma3"), test::demo_model_dir() / "nvfp4"}) {
    SCOPED_TRACE(dir.string());
    const ToolCallSupport s = detect_tool_calls(load_model_text(dir));
    EXPECT_FALSE(s.template_renders_tools);  // these templates ignore tools
    EXPECT_EQ(s.format, ToolCallFormat::none);
  }
}

const std::string kChatML =
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";

TEST(DetectToolCalls, MadeUpTemplates) {
  {
    test::TempDir dir;  // tools rendered, calls in another format
    const ToolCallSupport s = detect_tool_calls(load_model_text(test::demo_model_with_template(
        dir, "{% if tools %}[AVAILABLE_TOOLS]{{ tools | tojson }}[/AVAILABLE_TOOLS]{% endif %}" + kChatML)));
    EXPECT_TRUE(s.template_renders_tools);
    EXPECT_EQ(s.format, ToolCallFormat::none);
    EXPECT_NE(s.problem.find("format this server cannot parse"), std::string::npos) << s.problem;
  }
  {
    test::TempDir dir;  // the template teaches <tool_call>; the vocabulary does not have it: text tags
    const ToolCallSupport s = detect_tool_calls(load_model_text(test::demo_model_with_template(
        dir, "{% if tools %}Call tools as <tool_call>{...}</tool_call>: {{ tools | tojson }}\n{% endif %}" + kChatML)));
    EXPECT_TRUE(s.template_renders_tools);
    EXPECT_EQ(s.format, ToolCallFormat::hermes);
  }
  {
    test::TempDir dir;  // the tags are special tokens: the detokenizer would drop them
    const nlohmann::json added = nlohmann::json::parse(
        R"([{"id": 4096, "content": "<tool_call>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true},
            {"id": 4097, "content": "</tool_call>", "single_word": false, "lstrip": false, "rstrip": false,
             "normalized": false, "special": true}])");
    const ToolCallSupport s = detect_tool_calls(load_model_text(
        test::demo_model_with_template(dir, "{% if tools %}{{ tools | tojson }}\n{% endif %}" + kChatML, added)));
    EXPECT_TRUE(s.template_renders_tools);
    EXPECT_EQ(s.format, ToolCallFormat::none);
    EXPECT_NE(s.problem.find("special tokens"), std::string::npos) << s.problem;
  }
  {
    test::TempDir dir;  // a template that refuses the probe is judged by its source
    const ToolCallSupport s = detect_tool_calls(load_model_text(test::demo_model_with_template(
        dir, "{% if messages[0].role != 'system' %}{{ raise_exception('a system message first') }}{% endif %}"
             "{% if tools %}<tool_call>{{ tools | tojson }}{% endif %}" + kChatML)));
    EXPECT_TRUE(s.template_renders_tools);
    EXPECT_EQ(s.format, ToolCallFormat::hermes);
  }
}

}  // namespace
}  // namespace adallm::text
