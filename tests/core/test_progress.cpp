// Progress in `lines` mode (what CI logs and pipes see): one plain line per new decile and a final
// `done` line, written to the stream it was given; `silent` writes nothing. Timings vary, so lines are
// matched with the seconds field as a pattern.
#include "core/progress.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace adallm {
namespace {

// A tmpfile that reads back what was written to it.
class CapturedStream {
 public:
  CapturedStream() : file_(std::tmpfile()) {}
  ~CapturedStream() {
    if (file_ != nullptr) std::fclose(file_);
  }
  CapturedStream(const CapturedStream&) = delete;
  CapturedStream& operator=(const CapturedStream&) = delete;

  std::FILE* get() const { return file_; }
  std::vector<std::string> lines() const {
    std::fflush(file_);
    std::rewind(file_);
    std::vector<std::string> out;
    std::string line;
    for (int c = std::fgetc(file_); c != EOF; c = std::fgetc(file_)) {
      if (c == '\n') {
        out.push_back(line);
        line.clear();
      } else {
        line.push_back(static_cast<char>(c));
      }
    }
    if (!line.empty()) out.push_back(line + "<no newline>");
    std::fseek(file_, 0, SEEK_END);
    return out;
  }

 private:
  std::FILE* file_;
};

void expect_line(const std::string& line, const std::string& pattern) {
  EXPECT_TRUE(std::regex_match(line, std::regex(pattern))) << "line: '" << line << "'\npattern: " << pattern;
}

TEST(Progress, LinesModePrintsOneLinePerDecileAndAFinalDoneLine) {
  CapturedStream out;
  ASSERT_NE(out.get(), nullptr);
  {
    Progress progress("quantize", 100, Progress::Unit::items, Progress::Mode::lines, out.get());
    EXPECT_FALSE(progress.is_terminal());
    progress.advance(5);   // decile 0: first line
    progress.advance(4);   // still decile 0: nothing
    progress.advance(1);   // decile 1
    progress.advance(25);  // decile 3 (deciles skipped in one step print once)
    progress.advance(65);  // 100%: left to finish()
    EXPECT_EQ(progress.done(), 100u);
    ASSERT_EQ(out.lines().size(), 3u);
    progress.finish();
    progress.finish();  // once only
  }  // the destructor does not print again
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 4u);
  expect_line(lines[0], R"(quantize:   5% 5/100 \d+\.\ds)");
  expect_line(lines[1], R"(quantize:  10% 10/100 \d+\.\ds)");
  expect_line(lines[2], R"(quantize:  35% 35/100 \d+\.\ds)");
  expect_line(lines[3], R"(quantize: 100% 100/100 \d+\.\ds done)");
}

TEST(Progress, LinesModeCountsBytesAndClampsAtTotal) {
  CapturedStream out;
  {
    Progress progress("load", 3000000, Progress::Unit::bytes, Progress::Mode::lines, out.get());
    progress.advance(1500000);
    progress.advance(9000000);  // past the total: clamped
    EXPECT_EQ(progress.done(), 3000000u);
    progress.finish();
  }
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 2u);
  // Bytes carry the rate at the end (and, after the first second, with the time left before it).
  expect_line(lines[0], R"(load:  50% 1\.5 MB/3\.0 MB \d+\.\ds)");
  expect_line(lines[1], R"(load: 100% 3\.0 MB/3\.0 MB \d+\.\ds [\d.]+ [kMG]?B/s done)");
}

TEST(Progress, BytesShowTheRateAndTimeLeftAfterTheFirstSecond) {
  CapturedStream out;
  {
    Progress progress("download", 1000, Progress::Unit::bytes, Progress::Mode::lines, out.get());
    progress.advance(100);
    std::this_thread::sleep_for(std::chrono::milliseconds(1050));
    progress.advance(400);
  }
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 2u);
  expect_line(lines[0], R"(download:  10% 100 B/1\.0 kB \d+\.\ds)");
  // About 470 B/s (less on a loaded machine); the other 500 B take as long again.
  expect_line(lines[1], R"(download:  50% 500 B/1\.0 kB \d+\.\ds \d{2,3} B/s ETA \d+s)");
}

// A resumed download: what an earlier run fetched counts as done but not in the rate, so a run that
// fetched nothing shows none.
TEST(Progress, SkippedBytesAreDoneButNotInTheRate) {
  CapturedStream out;
  {
    Progress progress("download", 1000, Progress::Unit::bytes, Progress::Mode::lines, out.get());
    progress.skip(600);
    progress.skip(600);  // clamped at the total
    EXPECT_EQ(progress.done(), 1000u);
    progress.finish();
  }
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 1u);
  expect_line(lines[0], R"(download: 100% 1\.0 kB/1\.0 kB \d+\.\ds done)");
}

TEST(Progress, EmptyWorkPrintsOnlyTheDoneLine) {
  CapturedStream out;
  {
    Progress progress("nothing", 0, Progress::Unit::items, Progress::Mode::lines, out.get());
    progress.finish();
  }
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 1u);
  expect_line(lines[0], R"(nothing: 100% 0/0 \d+\.\ds done)");
}

TEST(Progress, AutomaticModeOnAFileIsLines) {
  CapturedStream out;
  {
    Progress progress("auto", 10, Progress::Unit::items, Progress::Mode::automatic, out.get());
    EXPECT_FALSE(progress.is_terminal());
    progress.advance(10);
    progress.finish();
  }
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 1u);
  expect_line(lines[0], R"(auto: 100% 10/10 \d+\.\ds done)");
}

// Work that failed never reaches finish(): no "done" line may claim otherwise.
TEST(Progress, AbandonedWorkPrintsNoDoneLine) {
  CapturedStream out;
  {
    Progress progress("quantize", 100, Progress::Unit::items, Progress::Mode::lines, out.get());
    progress.advance(50);
  }
  const std::vector<std::string> lines = out.lines();
  ASSERT_EQ(lines.size(), 1u);
  expect_line(lines[0], R"(quantize:  50% 50/100 \d+\.\ds)");
}

TEST(Progress, SilentModePrintsNothing) {
  CapturedStream out;
  {
    Progress progress("quiet", 100, Progress::Unit::items, Progress::Mode::silent, out.get());
    for (int i = 0; i < 10; ++i) progress.advance(10);
    EXPECT_EQ(progress.done(), 100u);
    progress.finish();
  }
  EXPECT_TRUE(out.lines().empty());
  std::fseek(out.get(), 0, SEEK_END);
  EXPECT_EQ(std::ftell(out.get()), 0L);
}

}  // namespace
}  // namespace adallm
