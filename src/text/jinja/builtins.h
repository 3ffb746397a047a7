// The built-in library the interpreter calls into: Jinja2 filters (filters.cpp), tests (tests.cpp) and
// Python methods on str/dict/list (methods.cpp), each behaving as Jinja2 3.1 + Python 3 do. The
// parser asks is_known_* so that an unknown name fails at load time.
#pragma once

#include <string>
#include <string_view>

#include "text/jinja/value.h"

namespace adallm::text::jinja {

bool is_known_filter(std::string_view name);
bool is_known_test(std::string_view name);

// Errors are thrown as std::runtime_error (the interpreter adds template name and line).
Value apply_filter(Interpreter& interp, const std::string& name, Value input, CallArgs& args);
bool apply_test(Interpreter& interp, const std::string& name, const Value& subject, CallArgs& args);
// Returns false when `object` has no such method (the caller then falls back to attribute lookup).
bool call_method(const Value& object, const std::string& name, CallArgs& args, Value& result);
bool has_method(const Value& object, const std::string& name);
// Python's "fmt % args" for %s %r %d %i %f %%; other conversions are an error.
std::string percent_format(const std::string& fmt, const std::vector<Value>& args);

// Shared argument helpers: positional index or keyword name, else the default.
const Value* find_arg(CallArgs& args, size_t index, std::string_view keyword);
Value arg_or(CallArgs& args, size_t index, std::string_view keyword, Value fallback);

// Python's str.strip family on code points; chars empty = whitespace.
std::string py_strip(const std::string& s, const Value& chars, bool left, bool right);
std::string py_lower(const std::string& s);
std::string py_upper(const std::string& s);

}  // namespace adallm::text::jinja
