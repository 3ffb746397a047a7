// StopStringMatcher (see stop_strings.h). Emitted text never holds the start of a stop string, so every
// match starts inside pending_: searching pending_ alone is enough, and the text it returns ends on a
// UTF-8 boundary because both the pieces and the stop strings are whole UTF-8 sequences.
#include "text/stop_strings.h"

#include <algorithm>
#include <utility>

#include "core/error.h"

namespace adallm::text {

size_t partial_tag_suffix(std::string_view text, std::string_view tag) {
  if (tag.empty()) return 0;
  for (size_t len = std::min(tag.size() - 1, text.size()); len > 0; --len) {
    if (text.substr(text.size() - len) == tag.substr(0, len)) return len;
  }
  return 0;
}

StopStringMatcher::StopStringMatcher(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {
  for (const std::string& s : stops_) {
    if (s.empty()) throw Error("stop strings must not be empty");
  }
}

std::string StopStringMatcher::push(std::string_view piece) {
  if (stopped_) return "";
  pending_ += piece;
  if (stops_.empty()) return std::exchange(pending_, std::string());
  // The earliest occurrence of any stop string; among those starting at the same place, the longest.
  size_t best = std::string::npos;
  for (const std::string& s : stops_) {
    const size_t at = pending_.find(s);
    if (at != std::string::npos && (best == std::string::npos || at < best || (at == best && s.size() > matched_.size()))) {
      best = at;
      matched_ = s;
    }
  }
  if (best != std::string::npos) {
    stopped_ = true;
    std::string out = pending_.substr(0, best);
    pending_.clear();
    return out;
  }
  // Hold back the longest suffix of pending_ that is a proper prefix of some stop string.
  size_t hold = 0;
  for (const std::string& s : stops_) hold = std::max(hold, partial_tag_suffix(pending_, s));
  std::string out = pending_.substr(0, pending_.size() - hold);
  pending_.erase(0, pending_.size() - hold);
  return out;
}

std::string StopStringMatcher::flush() {
  if (stopped_) return "";
  return std::exchange(pending_, std::string());
}

}  // namespace adallm::text
