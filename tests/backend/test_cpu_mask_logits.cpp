// Backend::mask_logits on the CPU (structured output's reference): a clear bit makes that logit -inf,
// a set bit leaves it bit for bit; rows past 32 tokens use their next word; a wrong mask size is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "cpu_test_util.h"

namespace adallm::backend::test {
namespace {

TEST(CpuMaskLogits, ClearBitsBecomeMinusInfinity) {
  auto b = cpu();
  const int64_t rows = 2, vocab = 40;  // two words per row, the second partly used
  std::vector<float> logits(static_cast<size_t>(rows * vocab));
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i) * 0.5f - 7.0f;
  // Row 0: tokens 0, 5, 31 and 39; row 1: everything but 32.
  const std::vector<uint32_t> mask = {(1u << 0) | (1u << 5) | (1u << 31), 1u << 7, ~0u, ~1u};
  auto x = upload_f32(*b, logits, rows, vocab);
  b->mask_logits(x->view(), mask);
  const std::vector<float> got = read(*b, x->view());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t t = 0; t < vocab; ++t) {
      const bool allowed = (mask[static_cast<size_t>(r * 2 + t / 32)] >> (t % 32)) & 1u;
      const float v = got[static_cast<size_t>(r * vocab + t)];
      if (allowed) {
        EXPECT_EQ(v, logits[static_cast<size_t>(r * vocab + t)]) << r << ", " << t;
      } else {
        EXPECT_EQ(v, -std::numeric_limits<float>::infinity()) << r << ", " << t;
      }
    }
  }
  // The argmax of the masked rows: row 0's largest allowed token, row 1's last.
  auto ids = b->alloc(rows, 1, DType::I32);
  b->argmax_rows(x->view(), ids->view());
  EXPECT_EQ(read(*b, ids->view()), (std::vector<float>{39, 39}));
}

TEST(CpuMaskLogits, RefusesAMaskOfTheWrongSize) {
  auto b = cpu();
  auto x = upload_f32(*b, std::vector<float>(2 * 33, 0.0f), 2, 33);
  EXPECT_THROW(b->mask_logits(x->view(), std::vector<uint32_t>(2, ~0u)), Error);
  b->mask_logits(x->view(), std::vector<uint32_t>(4, ~0u));
}

}  // namespace
}  // namespace adallm::backend::test
