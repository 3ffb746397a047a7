// Stop strings over streamed text: the serving layer pushes each detokenized piece and gets back only the
// text that can no longer turn into a stop string. A suffix that is the start of some stop string is held
// back until the next piece rules it in (the generation stops there; the stop string itself is never
// emitted) or out. Token-id stops are the engine's; this matcher sees text only.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace adallm::text {

// The length of the longest suffix of `text` that is a proper prefix of `tag`: the bytes a streaming
// matcher must hold back until the next piece rules the tag in or out. The one hold-back rule of the text
// path: stop strings here, and the tags of tool calls (text/tool_calls.h) and reasoning (text/reasoning.h).
size_t partial_tag_suffix(std::string_view text, std::string_view tag);

class StopStringMatcher {
 public:
  // Empty stop strings are not allowed (the request layer rejects them); an empty list never stops.
  explicit StopStringMatcher(std::vector<std::string> stop_strings);

  // Appends `piece` and returns the text now safe to emit. After a stop string matched, returns the
  // text before its earliest occurrence and stopped() turns true; later pushes return "".
  std::string push(std::string_view piece);
  // End of generation without a stop: returns what was held back.
  std::string flush();

  bool stopped() const { return stopped_; }
  const std::string& matched() const { return matched_; }  // the stop string that ended it

 private:
  std::vector<std::string> stops_;
  std::string pending_;  // text not yet emitted: a possible start of a stop string
  bool stopped_ = false;
  std::string matched_;
};

}  // namespace adallm::text
