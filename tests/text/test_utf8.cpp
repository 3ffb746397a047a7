// UTF-8 repair (from_utf8_lossy semantics), NFC and the PCRE2 whitespace rewrite used by the tokenizer.
#include <gtest/gtest.h>

#include "text/regex.h"
#include "text/unicode_nfc.h"
#include "text/utf8.h"

namespace adallm::text {
namespace {

const std::string kFffd = "\xEF\xBF\xBD";

TEST(Utf8, ValidatesAndDecodes) {
  EXPECT_TRUE(utf8::is_valid("a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80"));
  EXPECT_FALSE(utf8::is_valid("\xC0\x80"));          // overlong
  EXPECT_FALSE(utf8::is_valid("\xED\xA0\x80"));      // surrogate
  EXPECT_FALSE(utf8::is_valid("\xF4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(utf8::is_valid("\xE4\xB8"));          // truncated
  const std::string s = "\xF0\x9F\x98\x80z";
  size_t pos = 0;
  EXPECT_EQ(utf8::next(s, pos), U'\U0001F600');
  EXPECT_EQ(pos, 4u);
  std::string out;
  for (char32_t c : {U'a', U'\u00e9', U'\u4e2d', U'\U0001F600'}) utf8::append(out, c);
  EXPECT_EQ(out, "a\xC3\xA9\xE4\xB8\xAD\xF0\x9F\x98\x80");
}

TEST(Utf8, LossyReplacesMaximalSubparts) {
  EXPECT_EQ(utf8::to_valid_lossy("ok"), "ok");
  EXPECT_EQ(utf8::to_valid_lossy("a\xFF"
                                 "b"),
            "a" + kFffd + "b");
  EXPECT_EQ(utf8::to_valid_lossy("\xF0\x9F\x98"), kFffd);  // one truncated sequence → one U+FFFD
  EXPECT_EQ(utf8::to_valid_lossy("\xE4\xB8"
                                 "x"),
            kFffd + "x");
  EXPECT_EQ(utf8::to_valid_lossy("\xC0\x80"), kFffd + kFffd);              // C0 is never a lead byte
  EXPECT_EQ(utf8::to_valid_lossy("\xED\xA0\x80"), kFffd + kFffd + kFffd);  // surrogate: ED then 2 strays
  EXPECT_EQ(utf8::to_valid_lossy("\x80\x80"), kFffd + kFffd);
  EXPECT_TRUE(utf8::ends_with_replacement("x" + kFffd));
  EXPECT_FALSE(utf8::ends_with_replacement("x"));
}

TEST(Utf8, WhitespaceIsRustCharIsWhitespace) {
  for (char32_t c : {U'\t', U'\n', U'\x0b', U'\f', U'\r', U' ', U'\u0085', U'\u00a0', U'\u1680', U'\u2000', U'\u200a',
                     U'\u2028', U'\u2029', U'\u202f', U'\u205f', U'\u3000'})
    EXPECT_TRUE(utf8::is_whitespace(c)) << static_cast<uint32_t>(c);
  for (char32_t c : {U'a', U'\u180e', U'\u200b', U'\ufeff'}) EXPECT_FALSE(utf8::is_whitespace(c));
}

TEST(Nfc, ComposesReordersAndKeepsCompatibilityForms) {
  EXPECT_EQ(nfc("e\xCC\x81"), "\xC3\xA9");                                 // e + U+0301 → é
  EXPECT_EQ(nfc("A\xCC\x8A"), "\xC3\x85");                                 // A + ring → Å (U+00C5)
  EXPECT_EQ(nfc("\xE2\x84\xAB"), "\xC3\x85");                              // U+212B ANGSTROM SIGN → U+00C5
  EXPECT_EQ(nfc("\xE1\x84\x80\xE1\x85\xA1\xE1\x86\xA8"), "\xEA\xB0\x81");  // Hangul jamo L V T → 각
  // a + U+0308 (ccc 230) + U+0323 (ccc 220) → ordered dot below first, composes to ạ then + U+0308.
  EXPECT_EQ(nfc("a\xCC\x88\xCC\xA3"), "\xE1\xBA\xA1\xCC\x88");
  EXPECT_EQ(nfc("\xEF\xAC\x81"), "\xEF\xAC\x81");  // ﬁ ligature: compatibility only
  EXPECT_EQ(nfc("plain ascii"), "plain ascii");
}

TEST(Regex, WhitespaceMatchesOnigurumaNotPcre2) {
  EXPECT_EQ(Regex::rewrite_whitespace("a\\sb"),
            "a[\\t\\n\\x0b\\f\\r\\x20\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}"
            "\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}]b");
  const Regex space("\\s+");
  EXPECT_TRUE(space.find_all("\xE1\xA0\x8E").empty());  // U+180E is \s for PCRE2, not for Oniguruma
  const auto m = space.find_all(
      "a \xE3\x80\x80"
      "b");  // U+3000 is
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0], (std::pair<size_t, size_t>{1, 5}));
  const Regex class_neg("[^\\s\\p{L}]+");
  ASSERT_EQ(class_neg.find_all("ab12 \xE1\xA0\x8E").size(), 2u);  // "12" and U+180E
}

TEST(Regex, BadPatternIsAnError) {
  try {
    Regex r("(unclosed");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("does not compile"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace adallm::text
