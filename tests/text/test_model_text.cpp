// text/model_text: special tokens in both spellings, chat template sources and their precedence, and the
// stop ids of generation_config.json, on a model directory built around the real Qwen3 tokenizer.json.
#include "text/model_text.h"

#include <gtest/gtest.h>

#include <fstream>

#include "core/error.h"
#include "test_util.h"
#include "tokenizer_files.h"

namespace adallm::text {
namespace {
namespace fs = std::filesystem;

fs::path make_model(const test::TempDir& dir, const std::string& tokenizer_config, const std::string& generation) {
  const fs::path tokenizer = test::tokenizer_json("qwen3");
  EXPECT_TRUE(fs::exists(tokenizer)) << "missing " << tokenizer << ": run scripts/test.sh";
  fs::create_symlink(tokenizer, dir / "tokenizer.json");
  if (!tokenizer_config.empty()) std::ofstream(dir / "tokenizer_config.json") << tokenizer_config;
  if (!generation.empty()) std::ofstream(dir / "generation_config.json") << generation;
  return dir.path();
}

TEST(ModelText, SpecialTokensStopIdsAndTemplateContext) {
  test::TempDir dir;
  make_model(dir,
             R"({"bos_token": null, "eos_token": {"content": "<|im_end|>", "lstrip": false},
                 "pad_token": "<|endoftext|>", "add_bos_token": false,
                 "chat_template": "{{ eos_token }}|{% for m in messages %}{{ m.content }}{% endfor %}|{{ pad_token }}"})",
             R"({"eos_token_id": [151645, 151643]})");
  const ModelText text = load_model_text(dir.path());
  EXPECT_EQ(text.bos_token, "");
  EXPECT_EQ(text.eos_token, "<|im_end|>");
  EXPECT_EQ(text.add_bos_token, false);
  EXPECT_EQ(text.eos_token_ids, (std::vector<int32_t>{151645, 151643}));  // the eos_token's id is not repeated
  ASSERT_TRUE(text.chat_template.has_value());
  const auto context = text.template_context(nlohmann::ordered_json::parse(R"([{"role": "user", "content": "hi"}])"), true);
  EXPECT_FALSE(context.contains("bos_token"));  // not named: undefined in the template, as in transformers
  EXPECT_EQ(text.chat_template->render(context), "<|im_end|>|hi|<|endoftext|>");
}

TEST(ModelText, ChatTemplateJinjaFileWinsAndNamedTemplatesAreSelectable) {
  test::TempDir dir;
  make_model(dir,
             R"({"eos_token": "<|im_end|>", "chat_template": [{"name": "default", "template": "A"},
                                                               {"name": "tool_use", "template": "B"}]})",
             R"({"eos_token_id": 151645})");
  EXPECT_EQ(load_model_text(dir.path(), "tool_use", false).chat_template->render(nlohmann::json::object()), "B");
  EXPECT_EQ(load_model_text(dir.path()).eos_token_ids, (std::vector<int32_t>{151645}));
  std::ofstream(dir / "chat_template.jinja") << "C";
  EXPECT_EQ(load_model_text(dir.path()).chat_template->render(nlohmann::json::object()), "C");
}

TEST(ModelText, BrokenFilesAreNamed) {
  test::TempDir dir;
  make_model(dir, R"({"eos_token": "<|not a token|>"})", "");
  try {
    load_model_text(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("eos_token \"<|not a token|>\" is not in the vocabulary"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("tokenizer_config.json"), std::string::npos);
  }
  std::ofstream(dir / "tokenizer_config.json") << "{}";
  std::ofstream(dir / "generation_config.json") << R"({"eos_token_id": "two"})";
  EXPECT_THROW(load_model_text(dir.path()), Error);
  fs::remove(dir / "tokenizer.json");
  try {
    load_model_text(dir.path());
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no tokenizer.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace adallm::text
