// Structured output through the engine on the CPU backend: the tiny qwen3 fixture (vocab 256, random
// weights) over a byte vocabulary (token t is byte t, token 0 the end), constrained by JSON schemas whose
// documents are bounded, so every request must finish with finish_reason stop and a document that parses
// and satisfies its schema; greedy and sampled, batched with an unconstrained request.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend/cpu/cpu_backend.h"
#include "engine/engine_core.h"
#include "model/model.h"
#include "structured/json_schema.h"
#include "structured/token_mask.h"
#include "test_util.h"

namespace adallm::engine {
namespace {

using json = nlohmann::ordered_json;

constexpr int32_t kEnd = 0;

struct Loaded {
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<model::Model> model;
};

Loaded& qwen3() {
  static Loaded l;
  if (!l.model) {
    l.backend = backend::make_cpu_backend(2);
    l.model = model::Model::load(test::fixtures_dir() / "qwen3/bf16", *l.backend);
  }
  return l;
}

std::shared_ptr<const structured::Vocabulary> byte_vocabulary() {
  std::vector<std::optional<std::string>> bytes(256);
  for (int t = 1; t < 256; ++t) bytes[static_cast<size_t>(t)] = std::string(1, static_cast<char>(t));
  return std::make_shared<const structured::Vocabulary>(bytes, 256);
}

const char* kSchema = R"({"type":"object","properties":{
  "ok":{"type":"boolean"},
  "n":{"type":"integer","minimum":-5,"maximum":99},
  "tag":{"enum":["alpha","beta",null]},
  "name":{"type":"string","maxLength":6},
  "xs":{"type":"array","items":{"type":"boolean"},"maxItems":3}},
  "required":["ok","n","tag"],"additionalProperties":false})";

void expect_valid(const std::string& text) {
  const json doc = json::parse(text);  // throws (fails the test) when it is not JSON
  ASSERT_TRUE(doc.is_object()) << text;
  for (const auto& [key, value] : doc.items()) {
    EXPECT_TRUE(key == "ok" || key == "n" || key == "tag" || key == "name" || key == "xs") << text;
  }
  ASSERT_TRUE(doc.contains("ok") && doc["ok"].is_boolean()) << text;
  ASSERT_TRUE(doc.contains("n") && doc["n"].is_number_integer()) << text;
  EXPECT_GE(doc["n"].get<int>(), -5) << text;
  EXPECT_LE(doc["n"].get<int>(), 99) << text;
  ASSERT_TRUE(doc.contains("tag")) << text;
  EXPECT_TRUE(doc["tag"] == "alpha" || doc["tag"] == "beta" || doc["tag"].is_null()) << text;
  if (doc.contains("name")) {
    EXPECT_LE(doc["name"].get<std::string>().size(), 6u * 4) << text;
  }
  if (doc.contains("xs")) {
    EXPECT_LE(doc["xs"].size(), 3u) << text;
  }
}

TEST(ConstrainedEngine, OutputsParseAndMatchTheSchemaGreedyAndSampled) {
  Loaded& m = qwen3();
  EngineOptions o;
  o.max_model_len = 256;
  o.page_size = 8;
  o.num_pages = 128;
  o.max_num_seqs = 8;
  o.max_num_batched_tokens = 64;
  EngineCore core(*m.model, *m.backend, o);
  const auto grammar = std::make_shared<const structured::Grammar>(
      structured::compile_json_schema(json::parse(kSchema), "schema"));
  const auto object = std::make_shared<const structured::Grammar>(structured::json_object_grammar());
  const auto vocab = byte_vocabulary();

  std::map<int64_t, std::vector<int32_t>> out;
  std::map<int64_t, RequestOutput> last;
  std::map<int64_t, bool> constrained;
  for (int i = 0; i < 6; ++i) {
    GenerateRequest r;
    r.prompt = {static_cast<int32_t>(10 + i), 20, 30, static_cast<int32_t>(40 + 3 * i)};
    r.max_tokens = 180;
    r.stop_token_ids = {kEnd};
    if (i % 2 == 1) {
      r.sampling.temperature = 1.0f;
      r.sampling.seed = static_cast<uint64_t>(i);
    } else {
      r.sampling.temperature = 0.0f;
    }
    if (i < 5) r.constraint = std::make_shared<structured::JsonConstraint>(grammar, vocab, r.stop_token_ids);
    if (i == 4) r.logprobs = 2;  // logprobs with a mask: the raw distribution's, still reported
    const int64_t id = core.add(r);
    constrained[id] = i < 5;
  }
  // A json_object request alongside, with a bound it may hit (any object can go on forever).
  GenerateRequest free_object;
  free_object.prompt = {5, 6, 7};
  free_object.max_tokens = 60;
  free_object.sampling.temperature = 0.0f;
  free_object.constraint = std::make_shared<structured::JsonConstraint>(object, vocab, std::vector<int32_t>{kEnd});
  const int64_t object_id = core.add(free_object);

  for (int steps = 0; !core.idle() && steps < 2000; ++steps) {
    for (const RequestOutput& e : core.step()) {
      auto& tokens = out[e.request_id];
      tokens.insert(tokens.end(), e.tokens.begin(), e.tokens.end());
      if (e.finished()) last[e.request_id] = e;
    }
  }
  ASSERT_TRUE(core.idle());
  for (const auto& [id, is_constrained] : constrained) {
    SCOPED_TRACE("request " + std::to_string(id));
    if (!is_constrained) continue;
    ASSERT_EQ(last[id].finish_reason, FinishReason::stop) << last[id].error;
    std::string text;
    for (int32_t t : out[id]) {
      if (t != kEnd) text += static_cast<char>(t);
    }
    std::printf("request %lld: %s\n", static_cast<long long>(id), text.c_str());
    expect_valid(text);
    // The matcher finished at the closing brace: no end token was needed.
    EXPECT_EQ(out[id].back(), '}');
  }
  EXPECT_NE(last[object_id].finish_reason, FinishReason::error) << last[object_id].error;
  std::string prefix;
  for (int32_t t : out[object_id]) prefix += static_cast<char>(t);
  EXPECT_EQ(prefix.substr(0, 1), "{");
  if (last[object_id].finish_reason == FinishReason::stop) {
    EXPECT_TRUE(json::parse(prefix).is_object()) << prefix;
  }
}

}  // namespace
}  // namespace adallm::engine
