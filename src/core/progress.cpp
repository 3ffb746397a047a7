// Progress bar rendering: in-place redraw on terminals, decile lines otherwise.
#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <utility>

namespace adallm {

Progress::Progress(std::string label, uint64_t total, Unit unit, Mode mode, std::FILE* stream)
    : label_(std::move(label)), total_(total), unit_(unit), mode_(mode), stream_(stream) {
  if (mode_ == Mode::automatic) mode_ = isatty(fileno(stream_)) ? Mode::terminal : Mode::lines;
  start_ = std::chrono::steady_clock::now();
  last_draw_ = start_ - std::chrono::seconds(1);
  if (mode_ == Mode::terminal) draw(false);
}

// Destroyed before finish(): the work failed or was abandoned. End a terminal bar's line so that the error
// message that follows starts on its own line, and claim nothing more.
Progress::~Progress() {
  if (finished_) return;
  finished_ = true;
  if (mode_ == Mode::terminal) {
    std::fputc('\n', stream_);
    std::fflush(stream_);
  }
}

void Progress::advance(uint64_t amount_done) {
  if (finished_) return;
  done_ = std::min(total_, done_ + amount_done);
  if (mode_ == Mode::silent) return;
  const auto now = std::chrono::steady_clock::now();
  if (mode_ == Mode::terminal) {
    if (now - last_draw_ >= std::chrono::milliseconds(100)) draw(false);
  } else if (total_ > 0) {
    const int decile = static_cast<int>(done_ * 10 / total_);
    if (decile != last_decile_ && decile < 10) {
      last_decile_ = decile;
      draw(false);
    }
  }
}

void Progress::skip(uint64_t amount_done) {
  if (finished_) return;
  const uint64_t before = done_;
  done_ = std::min(total_, done_ + amount_done);
  skipped_ += done_ - before;
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (mode_ != Mode::silent) draw(true);
}

std::string Progress::amount(uint64_t value) const {
  char buf[64];
  if (unit_ == Unit::bytes) {
    const double v = static_cast<double>(value);
    if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2f GB", v / 1e9);
    else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.1f MB", v / 1e6);
    else if (v >= 1e3) std::snprintf(buf, sizeof buf, "%.1f kB", v / 1e3);
    else std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(value));
  } else {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(value));
  }
  return buf;
}

// " 85.2 MB/s ETA 17s": the rate of this run's bytes (skip()ped ones left out) and, before the end, the
// time the rest takes at that rate. Nothing before any byte has moved, nor in the first second but at
// the end: a rate from the first few chunks is noise.
std::string Progress::rate_and_eta(double seconds, bool final_line) const {
  const uint64_t moved = done_ - skipped_;
  if (unit_ != Unit::bytes || moved == 0 || seconds <= 0.0 || (!final_line && seconds < 1.0)) return "";
  const double rate = static_cast<double>(moved) / seconds;
  std::string text = " " + amount(static_cast<uint64_t>(rate)) + "/s";
  if (!final_line && done_ < total_) {
    const auto left = static_cast<long long>(static_cast<double>(total_ - done_) / rate + 0.5);
    char buf[32];
    if (left >= 3600) std::snprintf(buf, sizeof buf, " ETA %lldh%02lldm", left / 3600, left / 60 % 60);
    else if (left >= 60) std::snprintf(buf, sizeof buf, " ETA %lldm%02llds", left / 60, left % 60);
    else std::snprintf(buf, sizeof buf, " ETA %llds", left);
    text += buf;
  }
  return text;
}

void Progress::draw(bool final_line) {
  const auto now = std::chrono::steady_clock::now();
  last_draw_ = now;
  const double seconds = std::chrono::duration<double>(now - start_).count();
  const double fraction = total_ == 0 ? 1.0 : static_cast<double>(done_) / static_cast<double>(total_);
  const std::string counts = amount(done_) + "/" + amount(total_);
  const std::string rate = rate_and_eta(seconds, final_line);
  if (mode_ == Mode::terminal) {
    constexpr int width = 30;
    const int filled = static_cast<int>(fraction * width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stream_, "\r%s [%s] %5.1f%% %s %.1fs%s\x1b[K", label_.c_str(), bar.c_str(), fraction * 100.0,
                 counts.c_str(), seconds, rate.c_str());
    if (final_line) std::fputc('\n', stream_);
  } else {
    std::fprintf(stream_, "%s: %3d%% %s %.1fs%s%s\n", label_.c_str(), static_cast<int>(fraction * 100.0),
                 counts.c_str(), seconds, rate.c_str(), final_line ? " done" : "");
  }
  std::fflush(stream_);
}

}  // namespace adallm
