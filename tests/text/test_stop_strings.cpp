// StopStringMatcher: text that might start a stop string is held back across pieces, a stop string split
// over piece boundaries is still found, the earliest of several wins, the stop string itself is never
// emitted, and without a stop every byte comes out exactly once; the hold-back rule itself
// (partial_tag_suffix), which the tool-call and reasoning parsers share.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "text/stop_strings.h"

namespace adallm::text {
namespace {

struct Fed {
  std::vector<std::string> emitted;  // what each push returned
  std::string text;                  // everything emitted, flush included
  bool stopped = false;
};

Fed feed(const std::vector<std::string>& stops, const std::vector<std::string>& pieces) {
  StopStringMatcher m(stops);
  Fed r;
  for (const std::string& p : pieces) {
    r.emitted.push_back(m.push(p));
    r.text += r.emitted.back();
  }
  r.stopped = m.stopped();
  r.text += m.flush();
  return r;
}

TEST(StopStrings, NoStopStringsPassesEverythingThrough) {
  const Fed r = feed({}, {"Hello", ", ", "world"});
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"Hello", ", ", "world"}));
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.text, "Hello, world");
}

TEST(StopStrings, TextWithoutStopIsEmittedOnceAndFlushed) {
  const Fed r = feed({"END"}, {"abc", "E", "N", "x", "yz", "EN"});
  EXPECT_FALSE(r.stopped);
  EXPECT_EQ(r.text, "abcENxyzEN");
  // "E" and "EN" are held back until ruled out; the trailing "EN" only comes out at flush.
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"abc", "", "", "ENx", "yz", ""}));
}

TEST(StopStrings, StopInsideOnePiece) {
  const Fed r = feed({"\n\n"}, {"line one\n\nline two"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "line one");
}

TEST(StopStrings, StopSplitAcrossPieces) {
  const Fed r = feed({"</answer>"}, {"42", "</", "ans", "wer", "> trailing"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"42", "", "", "", ""}));
  EXPECT_EQ(r.text, "42");
}

TEST(StopStrings, StopSplitOneByteAtATime) {
  std::vector<std::string> pieces;
  for (char c : std::string("xySTOPz")) pieces.emplace_back(1, c);
  const Fed r = feed({"STOP"}, pieces);
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "xy");
}

TEST(StopStrings, StopAtTheStart) {
  const Fed r = feed({"###"}, {"###", "more"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.emitted, (std::vector<std::string>{"", ""}));
}

TEST(StopStrings, EarliestOfSeveralWins) {
  const Fed r = feed({"world", "lo"}, {"hello world"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "hel");
}

TEST(StopStrings, LongestWinsAtTheSamePlace) {
  StopStringMatcher m({"ab", "abc"});
  EXPECT_EQ(m.push("xabcd"), "x");
  EXPECT_TRUE(m.stopped());
  EXPECT_EQ(m.matched(), "abc");
}

TEST(StopStrings, HoldsBackTheLongestPossibleStart) {
  // "aab" could start "aabx"; "ab" could start "abz": hold back from the earliest possible start.
  StopStringMatcher m({"aabx", "abz"});
  EXPECT_EQ(m.push("qaab"), "q");
  EXPECT_EQ(m.push("q"), "aabq");
  EXPECT_FALSE(m.stopped());
}

TEST(StopStrings, FalseStartThenRealStop) {
  const Fed r = feed({"abc"}, {"ab", "ab", "c!"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "ab");
}

TEST(StopStrings, MultiByteUtf8StopAcrossPieces) {
  // "世界" split between pieces; the emitted text stays valid UTF-8 (whole code points).
  const Fed r = feed({"世界"}, {"你好", "世", "界", "!"});
  EXPECT_TRUE(r.stopped);
  EXPECT_EQ(r.text, "你好");
  EXPECT_EQ(r.emitted[1], "");  // "世" might start the stop string
}

TEST(StopStrings, NothingAfterTheStop) {
  StopStringMatcher m({"."});
  EXPECT_EQ(m.push("a.b"), "a");
  EXPECT_EQ(m.push("more"), "");
  EXPECT_EQ(m.flush(), "");
  EXPECT_EQ(m.matched(), ".");
}

TEST(StopStrings, EmptyStopStringIsRefused) {
  EXPECT_THROW(StopStringMatcher({"ok", ""}), Error);
}

// The longest suffix that is a proper prefix of the tag: a whole tag is the caller's to find, not held.
TEST(StopStrings, PartialTagSuffix) {
  EXPECT_EQ(partial_tag_suffix("Hello </thi", "</think>"), 5u);
  EXPECT_EQ(partial_tag_suffix("Hello <", "</think>"), 1u);
  EXPECT_EQ(partial_tag_suffix("Hello </think>", "</think>"), 0u);
  EXPECT_EQ(partial_tag_suffix("</think", "</think>"), 7u);
  EXPECT_EQ(partial_tag_suffix("<<", "<<a"), 2u);
  EXPECT_EQ(partial_tag_suffix("a<<", "<<<"), 2u);
  EXPECT_EQ(partial_tag_suffix("", "</think>"), 0u);
  EXPECT_EQ(partial_tag_suffix("abc", ""), 0u);
  EXPECT_EQ(partial_tag_suffix("x", "x"), 0u);  // a one-byte tag has no proper prefix to hold
}

}  // namespace
}  // namespace adallm::text
