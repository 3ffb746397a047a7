// Log sink: stderr, serialised by a mutex so that lines from several threads never interleave.
#include "core/log.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace adallm::log {
namespace {

Level initial_level() {
  const char* env = std::getenv("ADALLM_LOG_LEVEL");
  if (env == nullptr || *env == '\0') return Level::info;
  try {
    return parse_level(env);
  } catch (const Error&) {
    std::fprintf(stderr, "[warn] ignoring ADALLM_LOG_LEVEL=%s: expected debug, info, warn, error or off\n", env);
    return Level::info;
  }
}

std::atomic<Level>& current() {
  static std::atomic<Level> value{initial_level()};
  return value;
}

std::mutex& sink_mutex() {
  static std::mutex m;
  return m;
}

const char* tag(Level level) {
  switch (level) {
    case Level::debug: return "debug";
    case Level::info: return "info";
    case Level::warn: return "warn";
    case Level::error: return "error";
    case Level::off: break;
  }
  return "log";
}

}  // namespace

void set_level(Level level) { current().store(level); }
Level level() { return current().load(); }

Level parse_level(std::string_view text) {
  if (text == "debug") return Level::debug;
  if (text == "info") return Level::info;
  if (text == "warn" || text == "warning") return Level::warn;
  if (text == "error") return Level::error;
  if (text == "off") return Level::off;
  throw Error("unknown log level \"" + std::string(text) + "\"").hint("use debug, info, warn, error or off");
}

bool enabled(Level lvl) { return lvl != Level::off && static_cast<int>(lvl) >= static_cast<int>(level()); }

void write(Level lvl, std::string_view message) {
  std::lock_guard<std::mutex> lock(sink_mutex());
  std::fprintf(stderr, "[%s] %.*s\n", tag(lvl), static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
}

}  // namespace adallm::log
