// Helpers of the structured-output tests: compile a schema, feed a document byte by byte.
#pragma once

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "structured/json_schema.h"
#include "structured/matcher.h"

namespace adallm::test {

inline std::shared_ptr<const structured::Grammar> schema_grammar(const std::string& schema) {
  return std::make_shared<const structured::Grammar>(
      structured::compile_json_schema(nlohmann::ordered_json::parse(schema), "schema"));
}

// The index of the first byte of `doc` the grammar refuses, or -1 when every byte is accepted.
inline int refused_at(const std::shared_ptr<const structured::Grammar>& g, const std::string& doc) {
  structured::Matcher m(g);
  for (size_t i = 0; i < doc.size(); ++i) {
    if (!m.advance(doc.substr(i, 1))) return static_cast<int>(i);
  }
  return -1;
}

// Every byte accepted, the whole complete; for objects, arrays and strings no strict prefix complete.
inline void expect_accepted(const std::shared_ptr<const structured::Grammar>& g, const std::string& doc) {
  structured::Matcher m(g);
  const bool closed = !doc.empty() && (doc.back() == '}' || doc.back() == ']' || doc.back() == '"');
  for (size_t i = 0; i < doc.size(); ++i) {
    ASSERT_TRUE(m.advance(doc.substr(i, 1))) << doc << ": byte " << i << " refused";
    if (closed && i + 1 < doc.size()) {
      EXPECT_FALSE(m.complete()) << doc << ": complete after " << i + 1 << " bytes";
    }
  }
  EXPECT_TRUE(m.complete()) << doc << ": not complete";
}

}  // namespace adallm::test
