// Conformance of text::ChatTemplate with Python Jinja2 set up as transformers sets it up (the truth) on the
// generated conversations of tests/oracles/ (50+ per family: tools, tool calls and responses, reasoning,
// enable_thinking, multimodal content, raise_exception). @huggingface/jinja's render is in the same file
// but only reported on: where it differs from Python, Python wins. Missing oracle outputs fail, never skip.
#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/chat_template.h"
#include "text/oracle_data.h"

namespace adallm::text {
namespace {

namespace oracle = adallm::test::oracle;

// The first differing byte of two renders, shown with some context on both sides.
std::string first_difference(const std::string& want, const std::string& got) {
  size_t i = 0;
  while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
  const size_t from = i > 40 ? i - 40 : 0;
  return "first difference at byte " + std::to_string(i) + "\n    expected ..." +
         oracle::escaped(std::string_view(want).substr(from, 120)) + "\n    got      ..." +
         oracle::escaped(std::string_view(got).substr(from, 120));
}

// Renders one conversation; an empty optional means it matched, else the failure to report.
std::optional<std::string> check_row(const ChatTemplate& tmpl, const nlohmann::ordered_json& row) {
  const auto& want = row.at("expected_python");
  std::string got;
  try {
    got = tmpl.render(row.at("context"));
  } catch (const Error& e) {
    if (want.is_string()) return std::string("threw adallm::Error: ") + e.what();
    // raise_exception("...") messages (the ones @huggingface/jinja raised identically) must reach the user.
    const std::string message = row.at("expected_python_error");
    if (row.value("expected_error", "") == message && std::string(e.what()).find(message) == std::string::npos) {
      return "error message lacks " + oracle::escaped(message) + ": " + e.what();
    }
    return std::nullopt;
  } catch (const std::exception& e) {
    return std::string("threw a non-adallm exception: ") + e.what();
  }
  if (!want.is_string()) {
    return "rendered " + oracle::escaped(got, 80) + " where Python Jinja2 raised " +
           oracle::escaped(row.at("expected_python_error").get<std::string>());
  }
  if (got != want.get<std::string>()) return first_difference(want.get<std::string>(), got);
  return std::nullopt;
}

class ChatTemplateConformance : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatTemplateConformance, RenderMatchesPythonJinja2) {
  std::vector<nlohmann::ordered_json> rows;
  try {
    rows = oracle::load_template_oracle(GetParam());
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  ASSERT_GE(rows.size(), 50u) << oracle::kRegenerateHint;
  ASSERT_TRUE(rows[0].contains("expected_python")) << "no Python Jinja2 renders: " << oracle::kRegenerateHint;

  std::map<std::string, ChatTemplate> templates;  // by tokenizer_config path
  size_t failures = 0, js_differs = 0;
  std::string report;
  for (const auto& row : rows) {
    const std::string config = row.at("tokenizer_config");
    if (!templates.count(config)) {
      try {
        templates.emplace(config, ChatTemplate::from_tokenizer_config(config));
      } catch (const std::exception& e) {
        FAIL() << "loading the chat template of " << config << ": " << e.what();
      }
    }
    if (row.value("expected", nlohmann::ordered_json()) != row.at("expected_python")) ++js_differs;
    if (auto failure = check_row(templates.at(config), row)) {
      if (++failures <= 20) {
        report += "  " + row.at("id").get<std::string>() + " (" + row.at("description").get<std::string>() +
                  "): " + *failure + "\n";
      }
    }
  }
  EXPECT_EQ(failures, 0u) << GetParam() << ": " << failures << " of " << rows.size()
                          << " conversations differ from Python Jinja2 (@huggingface/jinja differs from Python on "
                          << js_differs << "; first 20 below)\n"
                          << report;
}

INSTANTIATE_TEST_SUITE_P(Oracle, ChatTemplateConformance, ::testing::Values("qwen3", "llama3_1", "gemma3"),
                         [](const auto& param_info) { return param_info.param; });

}  // namespace
}  // namespace adallm::text
