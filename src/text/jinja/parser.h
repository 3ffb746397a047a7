// Parses a Jinja2 token stream into the AST (ast.h) with Jinja2's grammar and precedence. Everything the
// interpreter cannot run is refused here, at load time: unknown statements (include, extends, import,
// block, do...), unknown filters and tests, recursive loops, each as an adallm::Error naming the construct
// and its line.
#pragma once

#include <string>
#include <string_view>

#include "text/jinja/ast.h"

namespace adallm::text::jinja {

Template parse_template(std::string_view source, const std::string& name);

}  // namespace adallm::text::jinja
