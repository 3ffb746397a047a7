// Token masks: equal to the brute force (a token is allowed iff the matcher accepts its bytes) on a small
// vocabulary and on Qwen3's; end tokens only on a complete document; the cost per step on Qwen3's
// 151,936 tokens (printed: docs/http-api.md quotes it); tokenizer token_bytes round trips.
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "structured/token_mask.h"
#include "structured_util.h"
#include "text/tokenizer_files.h"

namespace adallm::test {
namespace {

using structured::JsonConstraint;
using structured::Vocabulary;

bool bit(const std::vector<uint32_t>& mask, int32_t t) { return (mask[static_cast<size_t>(t) / 32] >> (t % 32)) & 1u; }

// Feeds `tokens` through a constraint, checking every step's mask against the brute force.
void check_masks(const std::shared_ptr<const structured::Grammar>& g, const std::vector<std::optional<std::string>>& bytes,
                 int32_t vocab_size, const std::vector<int32_t>& end_ids, const std::vector<int32_t>& tokens) {
  auto vocab = std::make_shared<const Vocabulary>(bytes, vocab_size);
  JsonConstraint c(g, vocab, end_ids);
  for (size_t step = 0; step <= tokens.size(); ++step) {
    std::vector<uint32_t> mask(vocab->words(), 0);
    c.allowed(mask);
    for (int32_t t = 0; t < vocab_size; ++t) {
      bool expected = false;
      if (std::find(end_ids.begin(), end_ids.end(), t) != end_ids.end()) {
        expected = c.matcher().complete();
      } else if (static_cast<size_t>(t) < bytes.size() && bytes[static_cast<size_t>(t)] &&
                 !bytes[static_cast<size_t>(t)]->empty()) {
        structured::Matcher& m = c.matcher();
        expected = m.walk(m.current(), *bytes[static_cast<size_t>(t)]) != structured::Matcher::kDead;
      }
      ASSERT_EQ(bit(mask, t), expected) << "step " << step << ", token " << t;
    }
    if (step == tokens.size()) break;
    ASSERT_TRUE(bit(mask, tokens[step])) << "step " << step;
    ASSERT_TRUE(c.accept(tokens[step])) << "step " << step;
  }
}

TEST(TokenMask, EqualsTheBruteForceOnASmallVocabulary) {
  const std::vector<std::optional<std::string>> bytes = {
      "{", "}", "{\"", "\"", "\":", "\": ", "ok", "true", "tr", "ue", "false", ",", " ", "1", "12", "\"}", "}\n",
      "\xC3\xA9", "\xC3", "\xA9", "a", "abc", std::nullopt, "", "n", "\"n", "\":\"", "-", "0", ".5", "]", "[", "[{"};
  const int32_t eos = 40, vocab_size = 41;  // ids past bytes.size() other than eos: padding, never allowed
  const auto token = [&](const std::string& s) {
    for (size_t i = 0; i < bytes.size(); ++i)
      if (bytes[i] == s) return static_cast<int32_t>(i);
    return -1;
  };
  const auto g = schema_grammar(
      R"({"type":"object","properties":{"ok":{"type":"boolean"},"n":{"type":"string"}},"required":["ok"],"additionalProperties":false})");
  check_masks(g, bytes, vocab_size, {eos},
              {token("{\""), token("ok"), token("\": "), token("tr"), token("ue"), token(","), token("\"n"),
               token("\":\""), token("\xC3"), token("\xA9"), token("abc"), token("\"}"), eos});
  const auto any = std::make_shared<const structured::Grammar>(structured::json_object_grammar());
  check_masks(any, bytes, vocab_size, {eos}, {token("{\""), token("a"), token("\": "), token("[{"), token("}"),
                                              token("]"), token("}")});
}

TEST(TokenMask, EndTokensOnlyOnACompleteDocumentAndFinishedAfterTheLastByte) {
  const std::vector<std::optional<std::string>> bytes = {"1", "2", "}", "{}", std::nullopt};
  auto vocab = std::make_shared<const Vocabulary>(bytes, 5);
  JsonConstraint number(schema_grammar(R"({"type":"integer"})"), vocab, {4});
  std::vector<uint32_t> mask(1, 0);
  number.allowed(mask);
  EXPECT_EQ(mask[0], 0b00011u);
  EXPECT_FALSE(number.accept(4));  // EOS before any digit
  ASSERT_TRUE(number.accept(0));
  mask[0] = 0;
  number.allowed(mask);
  EXPECT_EQ(mask[0], 0b10011u);  // more digits, or the end
  EXPECT_FALSE(number.finished());
  ASSERT_TRUE(number.accept(4));
  EXPECT_TRUE(number.finished());

  JsonConstraint object(std::make_shared<const structured::Grammar>(structured::json_object_grammar()), vocab, {4});
  ASSERT_TRUE(object.accept(3));
  EXPECT_TRUE(object.finished());  // nothing may follow "{}": the engine stops without waiting for EOS
}

TEST(TokenMask, TokenBytesOfEncodedTextJoinToTheText) {
  const std::string text = "Héllo wörld 日本語 😀 {\"a\": [1, 2]}\n\ttabs";
  for (const char* family : {"qwen3", "llama3_1", "gemma3"}) {
    SCOPED_TRACE(family);
    const text::Tokenizer* tok = load_family(family);
    ASSERT_NE(tok, nullptr);
    std::string joined;
    for (int32_t id : tok->encode(text, false)) joined += tok->token_bytes(id).value();
    EXPECT_EQ(joined, text);
  }
}

// Qwen3's vocabulary: the masks of a generation equal the brute force at a few steps, and the cost per
// step is printed (a cache miss walks the trie; a hit copies the cached mask).
TEST(TokenMask, Qwen3VocabularyMaskCost) {
  const text::Tokenizer* tok = load_family("qwen3");
  ASSERT_NE(tok, nullptr);
  const int32_t vocab_size = 151936;
  std::vector<std::optional<std::string>> bytes(static_cast<size_t>(tok->vocab_size()));
  for (int32_t t = 0; t < tok->vocab_size(); ++t) {
    if (!tok->is_special(t)) bytes[static_cast<size_t>(t)] = tok->token_bytes(t);
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto vocab = std::make_shared<const Vocabulary>(bytes, vocab_size);
  const double build_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  const auto g = schema_grammar(
      R"({"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0},)"
      R"("tags":{"type":"array","items":{"type":"string"}},"address":{"type":"object","properties":)"
      R"({"city":{"type":"string"},"zip":{"type":"string"}},"required":["city","zip"],"additionalProperties":false}},)"
      R"("required":["name","age","tags","address"],"additionalProperties":false})");
  const std::string doc =
      R"({"name": "Ada Lovelace, Countess of Lovelace", "age": 36, "tags": ["mathematician", "writer", )"
      R"("the first programmer"], "address": {"city": "London", "zip": "W1J 7NT"}})";
  const std::vector<int32_t> tokens = tok->encode(doc, false);
  const int32_t eos = *tok->token_to_id("<|im_end|>");
  JsonConstraint c(g, vocab, {eos});
  double miss_ms = 0, hit_ms = 0, worst_ms = 0;
  int misses = 0, hits = 0;
  for (size_t step = 0; step <= tokens.size(); ++step) {
    std::vector<uint32_t> mask(vocab->words(), 0);
    const int64_t before = c.cache_misses();
    const auto s = std::chrono::steady_clock::now();
    c.allowed(mask);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count();
    worst_ms = std::max(worst_ms, ms);
    if (c.cache_misses() > before) {
      miss_ms += ms;
      ++misses;
    } else {
      hit_ms += ms;
      ++hits;
    }
    if (step % 9 == 0) {  // brute force at some steps
      for (int32_t t = 0; t < tok->vocab_size(); ++t) {
        bool expected = t == eos ? c.matcher().complete() : false;
        if (t != eos && bytes[static_cast<size_t>(t)] && !bytes[static_cast<size_t>(t)]->empty()) {
          structured::Matcher& m = c.matcher();
          expected = m.walk(m.current(), *bytes[static_cast<size_t>(t)]) != structured::Matcher::kDead;
        }
        ASSERT_EQ(bit(mask, t), expected) << "step " << step << ", token " << t;
      }
    }
    if (step == tokens.size()) {
      EXPECT_TRUE(bit(mask, eos));
      break;
    }
    ASSERT_TRUE(bit(mask, tokens[step])) << "step " << step << ": " << tok->decode(std::span(&tokens[step], 1));
    ASSERT_TRUE(c.accept(tokens[step]));
  }
  EXPECT_TRUE(c.finished());
  std::printf("qwen3 vocabulary (%d tokens): trie built in %.1f ms; %zu steps: %d trie walks, mean %.2f ms; "
              "%d cache hits, mean %.3f ms; worst step %.2f ms; %zu matcher states\n",
              vocab_size, build_ms, tokens.size() + 1, misses, misses ? miss_ms / misses : 0.0, hits,
              hits ? hit_ms / hits : 0.0, worst_ms, c.matcher().num_states());
}

}  // namespace
}  // namespace adallm::test
