// The checks every field of a request body goes through (server/openai_request.cpp, server/chat_fields.cpp):
// a JSON value's type and range, or an ApiError 400 whose message starts with the field's name, so that a
// client sees which one. Callers treat null as "not given" before they get here.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace adallm::server::fields {

using json = nlohmann::ordered_json;

std::string type_name(const json& v);  // "an integer", "a string"... for messages
[[noreturn]] void wrong_type(const std::string& field, const char* expected, const json& v);
// A number in [lo, hi] (open at lo when lo_open); infinities fail.
float ranged(const std::string& field, const json& v, double lo, double hi, bool lo_open = false);
int64_t get_int(const std::string& field, const json& v);  // fits int64
int64_t int_at_least(const std::string& field, const json& v, int64_t lo, int64_t hi);
bool get_bool(const std::string& field, const json& v);
std::string get_string(const std::string& field, const json& v);
// A field of OpenAI's API this server does not implement yet; `what` replaces "this field" in the message.
[[noreturn]] void not_supported(const std::string& field, const std::string& what = "");

// The handler of each key of an object field, given "FIELD.key" and the value.
using FieldHandlers =
    std::map<std::string, std::function<void(const std::string& field, const json& value)>, std::less<>>;
// Runs the handler of each key of `object` (an object) whose value is not null; a key without one is an
// "unknown field" 400.
void each_field(const std::string& field, const json& object, const FieldHandlers& handlers);

}  // namespace adallm::server::fields
