// Table-driven Jinja tests: each case is a template, a JSON context and the output Python Jinja2 3.1.2
// produced with transformers' settings.
#pragma once

#include <gtest/gtest.h>

#include <exception>
#include <string>

#include <nlohmann/json.hpp>

#include "text/chat_template.h"

namespace adallm::text {

struct JinjaCase {
  const char* source;
  const char* context_json;
  const char* expected;  // rendered by Python Jinja2 3.1.2 set up as transformers does
};

inline std::string render(const char* source, const char* context_json) {
  return ChatTemplate::compile(source).render(nlohmann::ordered_json::parse(context_json));
}

inline void expect_cases(const JinjaCase* begin, const JinjaCase* end) {
  for (const JinjaCase* c = begin; c != end; ++c) {
    SCOPED_TRACE(std::string("template: ") + c->source);
    try {
      EXPECT_EQ(render(c->source, c->context_json), c->expected);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
    }
  }
}

}  // namespace adallm::text
