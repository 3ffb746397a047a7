// Levelled logging to stderr. One line per call, prefixed with the level; the level comes from
// ADALLM_LOG_LEVEL (debug|info|warn|error) or the CLI's --log-level. Not a tracing system: hot paths
// must not log per token.
#pragma once

#include <sstream>
#include <string>
#include <string_view>

namespace adallm::log {

enum class Level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

void set_level(Level level);
Level level();
// Parses "debug", "info", "warn", "error" or "off"; throws adallm::Error naming the value otherwise.
Level parse_level(std::string_view text);
bool enabled(Level level);
void write(Level level, std::string_view message);

// log::info("loaded ", n, " tensors from ", path): arguments are streamed, no format strings to get wrong.
template <typename... Args>
void emit(Level lvl, const Args&... args) {
  if (!enabled(lvl)) return;
  std::ostringstream out;
  (out << ... << args);
  write(lvl, out.str());
}
template <typename... Args> void debug(const Args&... args) { emit(Level::debug, args...); }
template <typename... Args> void info(const Args&... args) { emit(Level::info, args...); }
template <typename... Args> void warn(const Args&... args) { emit(Level::warn, args...); }
template <typename... Args> void error(const Args&... args) { emit(Level::error, args...); }

}  // namespace adallm::log
