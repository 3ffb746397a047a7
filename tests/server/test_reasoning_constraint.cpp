// server/reasoning_constraint: the reasoning is free (every id allowed, nothing finishes it), the grammar
// governs from the token after the one that completes </think>, whether that tag is one token or split
// over several, and the answer then ends as the grammar's does.
#include "server/reasoning_constraint.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

#include "server/response_format.h"

namespace adallm::server {
namespace {

constexpr int32_t kVocabSize = 40;  // past one 32-bit word: the free mask must stop at the vocabulary
enum Token : int32_t { kSplitOpen = 0, kSplitClose = 1, kBrace = 2, kClose = 3, kX = 4, kThinkEnd = 5, kEos = 7 };

std::shared_ptr<const structured::Vocabulary> vocabulary() {
  std::vector<std::optional<std::string>> bytes(kVocabSize);
  bytes[kSplitOpen] = "</";
  bytes[kSplitClose] = "think>";
  bytes[kBrace] = "{";
  bytes[kClose] = "}";
  bytes[kX] = "x";
  bytes[kThinkEnd] = "</think>";
  return std::make_shared<const structured::Vocabulary>(bytes, kVocabSize);  // kEos: special, no bytes
}

std::vector<uint32_t> mask(TokenConstraint& c) {
  std::vector<uint32_t> m((kVocabSize + 31) / 32, 0u);
  c.allowed(m);
  return m;
}

bool allows(const std::vector<uint32_t>& m, int32_t t) { return (m[static_cast<size_t>(t) / 32] >> (t % 32)) & 1u; }

AfterReasoningConstraint gate(const std::shared_ptr<const structured::Vocabulary>& v) {
  const auto format = parse_response_format(nlohmann::ordered_json{{"type", "json_object"}});
  return AfterReasoningConstraint("</think>", v,
                                  std::make_shared<structured::JsonConstraint>(format->grammar, v,
                                                                               std::vector<int32_t>{kEos}));
}

TEST(AfterReasoningConstraint, FreeUntilTheTagThenTheGrammar) {
  const auto v = vocabulary();
  for (const std::vector<int32_t>& tag : {std::vector<int32_t>{kSplitOpen, kSplitClose}, std::vector<int32_t>{kThinkEnd}}) {
    SCOPED_TRACE(tag.size());
    AfterReasoningConstraint c = gate(v);
    EXPECT_EQ(mask(c), (std::vector<uint32_t>{~0u, 0xFFu}));  // every id of the 40, not one more
    for (const int32_t t : {kX, kSplitOpen, kX, kEos}) EXPECT_TRUE(c.accept(t));  // "</" then "x": no tag
    EXPECT_FALSE(c.answering());
    EXPECT_FALSE(c.finished());
    for (size_t i = 0; i < tag.size(); ++i) {
      EXPECT_FALSE(c.answering());
      EXPECT_TRUE(c.accept(tag[i]));
    }
    EXPECT_TRUE(c.answering());
    const std::vector<uint32_t> answer = mask(c);
    EXPECT_TRUE(allows(answer, kBrace));
    EXPECT_FALSE(allows(answer, kX));
    EXPECT_FALSE(allows(answer, kEos));  // an empty answer is no JSON object
    EXPECT_FALSE(allows(answer, kThinkEnd));
    EXPECT_TRUE(c.accept(kBrace));
    EXPECT_FALSE(c.finished());
    EXPECT_TRUE(c.accept(kClose));
    EXPECT_TRUE(allows(mask(c), kEos));
    EXPECT_FALSE(c.accept(kX));  // the grammar's refusal passes through
  }
}

}  // namespace
}  // namespace adallm::server
