// adallm::Error renders as one line, `tensor T: message in FILE; hint`, and keeps the innermost value of
// each context field when outer layers add theirs while it unwinds.
#include "core/error.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace adallm {
namespace {

TEST(Error, MessageAloneRendersAsIs) {
  const Error e("expected F8_E4M3, got BF16");
  EXPECT_STREQ(e.what(), "expected F8_E4M3, got BF16");
  EXPECT_EQ(e.message(), "expected F8_E4M3, got BF16");
  EXPECT_TRUE(e.tensor_name().empty());
  EXPECT_TRUE(e.file_path().empty());
  EXPECT_TRUE(e.hint_text().empty());
}

TEST(Error, RendersTensorFileAndHintInOneLine) {
  const Error e = Error("expected F8_E4M3 [4096, 768], got BF16 [4096, 768]")
                      .tensor("model.layers.3.mlp.down_proj.weight_scale")
                      .file("model-00002-of-00004.safetensors")
                      .hint("is this an NVFP4 checkpoint?");
  EXPECT_STREQ(e.what(),
               "tensor model.layers.3.mlp.down_proj.weight_scale: expected F8_E4M3 [4096, 768], got BF16 "
               "[4096, 768] in model-00002-of-00004.safetensors; is this an NVFP4 checkpoint?");
  EXPECT_EQ(e.tensor_name(), "model.layers.3.mlp.down_proj.weight_scale");
  EXPECT_EQ(e.file_path(), "model-00002-of-00004.safetensors");
  EXPECT_EQ(e.hint_text(), "is this an NVFP4 checkpoint?");
}

TEST(Error, EachFieldRendersOnItsOwn) {
  EXPECT_STREQ(Error("m").tensor("t").what(), "tensor t: m");
  EXPECT_STREQ(Error("m").file("f").what(), "m in f");
  EXPECT_STREQ(Error("m").hint("h").what(), "m; h");
}

TEST(Error, KeepsTheInnermostValueOfEachField) {
  try {
    try {
      throw Error("bad shape").tensor("inner.weight").hint("inner hint");
    } catch (Error& e) {
      e.tensor("outer.weight").file("shard.safetensors").hint("outer hint");
      throw;
    }
  } catch (const Error& e) {
    EXPECT_EQ(e.tensor_name(), "inner.weight");
    EXPECT_EQ(e.file_path(), "shard.safetensors");  // unset inside, so the outer layer's value lands
    EXPECT_EQ(e.hint_text(), "inner hint");
    EXPECT_STREQ(e.what(), "tensor inner.weight: bad shape in shard.safetensors; inner hint");
    return;
  }
  FAIL() << "no Error reached the outer handler";
}

TEST(Error, IsAStdException) {
  try {
    throw Error("m").file("f");
  } catch (const std::exception& e) {
    EXPECT_STREQ(e.what(), "m in f");
  }
}

}  // namespace
}  // namespace adallm
