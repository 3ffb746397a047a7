// The nesting depth of untrusted JSON text (request bodies, strings holding JSON, generated tool calls),
// checked before nlohmann parses it: parsing is iterative, but copying or walking a value (a template
// context, dump) recurses, and 100k nested arrays would overflow the stack there.
#pragma once

#include <cstddef>
#include <string_view>

namespace adallm::text {

// The deepest array/object nesting in `doc`, counted outside strings; stops counting past `limit`.
// `doc` need not be valid JSON.
size_t json_nesting_depth(std::string_view doc, size_t limit);

}  // namespace adallm::text
