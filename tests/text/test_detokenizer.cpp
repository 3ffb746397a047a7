// IncrementalDetokenizer: the concatenated pieces equal Tokenizer::decode of all ids and each piece is
// valid UTF-8, on random id sequences (byte-level halves of characters, Gemma3 byte-fallback runs,
// special tokens) for the three real tokenizer files.
#include <gtest/gtest.h>

#include <random>

#include "text/detokenizer.h"
#include "text/utf8.h"
#include "tokenizer_files.h"

namespace adallm::text {
namespace {

void check_sequence(const Tokenizer& t, const std::vector<int32_t>& ids, bool skip) {
  IncrementalDetokenizer d(t, skip);
  std::string streamed;
  for (int32_t id : ids) {
    const std::string piece = d.push(id);
    ASSERT_TRUE(utf8::is_valid(piece));
    streamed += piece;
  }
  streamed += d.flush();
  ASSERT_EQ(streamed, t.decode(ids, skip)) << "ids[0]=" << ids[0] << " size " << ids.size();
}

void random_sequences(const std::string& name, int32_t byte_lo, int32_t byte_hi) {
  const Tokenizer* t = test::load_family(name);
  ASSERT_NE(t, nullptr);
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> any(0, t->vocab_size() - 1), bytes(byte_lo, byte_hi), kind(0, 3);
  for (int seq = 0; seq < 300; ++seq) {
    std::vector<int32_t> ids(1 + rng() % 24);
    for (int32_t& id : ids) id = kind(rng) == 0 ? bytes(rng) : any(rng);
    check_sequence(*t, ids, seq % 2 == 0);
  }
  // Real text, streamed token by token.
  for (const std::string s :
       {"Hello, world! 中文测试 👋🏽 👨‍👩‍👧", " spaces   and\ttabs\n", "é ä ñ ß"})
    check_sequence(*t, t->encode(s, true), false);
}

TEST(IncrementalDetokenizer, Qwen3RandomSequences) { random_sequences("qwen3", 0, 255); }
TEST(IncrementalDetokenizer, Llama31RandomSequences) { random_sequences("llama3_1", 0, 255); }
TEST(IncrementalDetokenizer, Gemma3RandomSequences) { random_sequences("gemma3", 238, 238 + 255); }

TEST(IncrementalDetokenizer, HoldsIncompleteCharacters) {
  const Tokenizer* t = test::load_family("gemma3");
  ASSERT_NE(t, nullptr);
  const auto e4 = t->token_to_id("<0xE4>"), b8 = t->token_to_id("<0xB8>"), ad = t->token_to_id("<0xAD>");
  ASSERT_TRUE(e4 && b8 && ad);
  IncrementalDetokenizer d(*t, false);
  EXPECT_EQ(d.push(9259), "Hello");
  EXPECT_EQ(d.push(*e4), "");
  EXPECT_EQ(d.push(*b8), "");
  EXPECT_EQ(d.push(*ad), "");  // a byte run may still grow: held until a non-byte token
  EXPECT_EQ(d.push(9259), "中Hello");
  EXPECT_EQ(d.flush(), "");

  const Tokenizer* q = test::load_family("qwen3");
  ASSERT_NE(q, nullptr);
  // Byte-level "中" = E4 B8 AD, streamed as tokens "ä¸" (E4 B8) and "Ń" (AD).
  const auto first = q->token_to_id("\xC3\xA4\xC2\xB8"), second = q->token_to_id("\xC5\x83");
  ASSERT_TRUE(first && second);
  IncrementalDetokenizer dq(*q, false);
  EXPECT_EQ(dq.push(*first), "");
  EXPECT_EQ(dq.push(*second), "中");
  EXPECT_EQ(dq.push(*first), "");
  EXPECT_EQ(dq.flush(), "\xEF\xBF\xBD");  // an incomplete tail decodes as from_utf8_lossy does
}

}  // namespace
}  // namespace adallm::text
