// A progress bar for long work (loading, quantizing, downloading). On a terminal it redraws one line in
// place at most ten times a second; elsewhere (CI logs, pipes) it prints a plain line at every 10% so a
// log stays readable. Byte counts also show the rate and, until the end, the time left. It writes to
// stderr so that stdout keeps only a command's real output.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace adallm {

class Progress {
 public:
  enum class Unit { items, bytes };
  enum class Mode { automatic, terminal, lines, silent };

  Progress(std::string label, uint64_t total, Unit unit = Unit::items, Mode mode = Mode::automatic,
           std::FILE* stream = stderr);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(uint64_t amount);
  // Work done before this run (the part of a download an earlier run left): counted as done, but not
  // in the rate, so that the time left is not underestimated.
  void skip(uint64_t amount);
  // Marks the work done and prints the final line (once). Without it, the destructor prints no final line.
  void finish();

  uint64_t done() const { return done_; }
  bool is_terminal() const { return mode_ == Mode::terminal; }

 private:
  void draw(bool final_line);
  std::string amount(uint64_t value) const;
  std::string rate_and_eta(double seconds, bool final_line) const;

  std::string label_;
  uint64_t total_;
  uint64_t done_ = 0;
  uint64_t skipped_ = 0;  // of done_, what skip() added
  Unit unit_;
  Mode mode_;
  std::FILE* stream_;
  int last_decile_ = -1;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_;
};

}  // namespace adallm
