// Chat requests with tools rendered through the server's path (parse_chat_request, chat_template_context,
// the model's chat template) against Python Jinja2 given what vLLM hands transformers for the same request
// (tests/oracles/requests.mjs, render_jinja2.py): tool schemas as written, tool-call arguments decoded by
// Python's json.loads and written back by tojson (numbers, escapes, key order), null content beside calls,
// tool results. Qwen3's template (Hermes calls) and Meta's Llama 3.1 template (tests/data/templates: JSON
// calls, tools in the first user message). Missing oracle outputs fail, never skip.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "server/api_error.h"
#include "server/openai_request.h"
#include "server/serving.h"
#include "text/model_text.h"
#include "test_util.h"
#include "text/oracle_data.h"

namespace adallm::server {
namespace {

namespace oracle = adallm::test::oracle;

void check_requests(const std::string& family) {
  std::vector<nlohmann::ordered_json> rows;
  try {
    rows = oracle::read_jsonl<nlohmann::ordered_json>(oracle::oracle_dir() / "templates" / (family + ".requests.jsonl"));
  } catch (const std::exception& e) {
    FAIL() << e.what();
  }
  ASSERT_GE(rows.size(), 20u) << oracle::kRegenerateHint;
  ASSERT_TRUE(rows[0].contains("expected_python")) << "no Python Jinja2 renders: " << oracle::kRegenerateHint;

  std::map<std::string, text::ModelText> models;  // by tokenizer_config path (and template file)
  test::TempDir dir;
  size_t failures = 0;
  for (const auto& row : rows) {
    const std::string id = row.at("id").get<std::string>() + " (" + row.at("description").get<std::string>() + ")";
    SCOPED_TRACE(id);
    const std::string config = row.at("tokenizer_config");
    const std::string file = row.value("chat_template_file", "");
    const std::string key = config + "|" + file;
    if (!models.count(key)) {
      if (file.empty()) {
        models.emplace(key, text::load_model_text(std::filesystem::path(config).parent_path(), "default", false));
      } else {  // the package's special tokens, our template file: a chat_template.jinja beside them
        const std::filesystem::path model = dir / std::to_string(models.size());
        std::filesystem::create_directories(model);
        std::filesystem::copy_file(config, model / "tokenizer_config.json");
        std::filesystem::copy_file(file, model / "chat_template.jinja");
        models.emplace(key, text::load_model_text(model, "default", false));
      }
    }
    const text::ModelText& model = models.at(key);
    std::string got;
    try {
      const ChatRequest request = parse_chat_request(row.at("request").dump());
      got = model.chat_template->render(chat_template_context(request, model));
    } catch (const ApiError& e) {
      ADD_FAILURE() << "the request was refused: " << e.message();
      ++failures;
      continue;
    } catch (const Error& e) {
      if (row.at("expected_python").is_null()) continue;  // the template raised in Python too
      ADD_FAILURE() << "threw adallm::Error: " << e.what();
      ++failures;
      continue;
    }
    ASSERT_TRUE(row.at("expected_python").is_string())
        << "rendered where Python Jinja2 raised " << row.at("expected_python_error");
    const std::string want = row.at("expected_python");
    if (got != want) {
      size_t i = 0;
      while (i < want.size() && i < got.size() && want[i] == got[i]) ++i;
      const size_t from = i > 60 ? i - 60 : 0;
      ADD_FAILURE() << "first difference at byte " << i << "\n  expected ..."
                    << oracle::escaped(std::string_view(want).substr(from, 160)) << "\n  got      ..."
                    << oracle::escaped(std::string_view(got).substr(from, 160));
      ++failures;
    }
  }
  EXPECT_EQ(failures, 0u) << failures << " of " << rows.size() << " requests differ";
}

TEST(ChatTemplateRequests, ToolRequestsRenderAsVllmHandsThemToTransformers) { check_requests("qwen3"); }

TEST(ChatTemplateRequests, Llama31ToolRequestsRenderAsVllmHandsThemToTransformers) { check_requests("llama3_1"); }

}  // namespace
}  // namespace adallm::server
