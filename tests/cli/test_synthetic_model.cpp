// cli/synthetic_model: the placeholder tokenizer that lets `adallm serve --synthetic` take requests. Text
// becomes its UTF-8 bytes, each byte one token whose id is the byte; every other id of the vocabulary
// decodes to " t<id>", so that whatever a random model samples comes back as text.
#include "cli/synthetic_model.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "test_util.h"
#include "text/tokenizer.h"

namespace adallm::cli {
namespace {

TEST(SyntheticTokenizer, TextIsBytesAndEveryIdDecodes) {
  test::TempDir dir;
  write_synthetic_tokenizer(dir / "tokenizer.json", 1000);
  const auto tokenizer = text::Tokenizer::load(dir / "tokenizer.json");
  EXPECT_EQ(tokenizer->vocab_size(), 1000);
  const std::string text = "def f(x):\n    return \"h\xC3\xA9\"";
  const std::vector<int32_t> ids = tokenizer->encode(text, true);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<uint8_t>(text[i])) << i;
  EXPECT_EQ(tokenizer->decode(ids), text);
  const std::vector<int32_t> high = {256, 300, 999};
  EXPECT_EQ(tokenizer->decode(high), " t256 t300 t999");
  EXPECT_THROW(write_synthetic_tokenizer(dir / "small.json", 255), Error);
}

}  // namespace
}  // namespace adallm::cli
