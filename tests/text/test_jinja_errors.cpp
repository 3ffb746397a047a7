// What a chat template cannot do must fail loudly: constructs the interpreter does not implement are
// refused by compile() (not by a later render), and runtime failures (raise_exception, Undefined misuse,
// type errors, sandbox refusals) are adallm::Error naming the template line. Python Jinja2 3.1.2 raises
// on these templates too, except recursive loops and *args calls, which it runs but no template we serve
// uses, so they are refused at load rather than half-implemented.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_template.h"

namespace adallm::text {
namespace {

std::string compile_error(const std::string& source) {
  try {
    ChatTemplate::compile(source);
  } catch (const Error& e) {
    return e.what();
  }
  return "(compiled without error)";
}

std::string render_error(const std::string& source, const char* context_json = "{}") {
  ChatTemplate t = ChatTemplate::compile(source);  // must compile: these fail only at render time
  try {
    t.render(nlohmann::ordered_json::parse(context_json));
  } catch (const Error& e) {
    return e.what();
  }
  return "(rendered without error)";
}

void expect_contains(const std::string& text, const std::string& part) {
  EXPECT_NE(text.find(part), std::string::npos) << "expected '" << part << "' in: " << text;
}

TEST(JinjaErrors, UnknownFilterOrTestFailsAtCompileTimeWithItsLine) {
  std::string e = compile_error("hello\n{% if true %}\n{{ x | frobnicate }}\n{% endif %}");
  expect_contains(e, "unknown filter 'frobnicate'");
  expect_contains(e, "template 'chat_template' line 3");
  e = compile_error("{% if x is frobnicated %}{% endif %}");
  expect_contains(e, "unknown test 'frobnicated'");
  expect_contains(e, "line 1");
}

TEST(JinjaErrors, UnsupportedStatementsAreNamed) {
  for (const char* word : {"include", "extends", "import", "block", "from", "do", "autoescape"}) {
    std::string e = compile_error(std::string("a\n\n{% ") + word + " 'x' %}");
    expect_contains(e, std::string("unsupported statement '") + word + "'");
    expect_contains(e, "line 3");
  }
  expect_contains(compile_error("{% for x in xs recursive %}{% endfor %}"), "recursive for loops are not supported");
  expect_contains(compile_error("{% break %}"), "'break' outside a for loop");
  expect_contains(compile_error("{{ f(*args) }}"), "*args and **kwargs in calls are not supported");
}

TEST(JinjaErrors, MalformedTemplatesFailAtCompileTime) {
  expect_contains(compile_error("{% if x %}never closed"), "looking for 'elif' or 'else' or 'endif'");
  expect_contains(compile_error("{% for x in y %}{% endif %}"), "unexpected 'endif' tag");
  expect_contains(compile_error("{{ 'open string }}"), "unterminated string literal");
  expect_contains(compile_error("{# never closed"), "unterminated comment");
  expect_contains(compile_error("{{ x"), "unterminated {{ expression");
  expect_contains(compile_error("{% raw %}x"), "unterminated {% raw %} block");
  expect_contains(compile_error("{{ 1 + }}"), "unexpected '}}' in expression");
  expect_contains(compile_error("{% set ns.a, b = 1 %}"), "expected end of statement '%}'");
}

TEST(JinjaErrors, HostileNestingFailsInsteadOfOverflowingTheStack) {
  expect_contains(compile_error("{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}"),
                  "nesting deeper than 200 levels");
  std::string chain = "{{ 1";
  for (int k = 0; k < 10000; ++k) chain += "+1";
  expect_contains(compile_error(chain + " }}"), "expression nested deeper than 256 levels");
  std::string ifs;
  for (int k = 0; k < 5000; ++k) ifs += "{% if x %}";
  expect_contains(compile_error(ifs), "nesting deeper than 200 levels");
}

TEST(JinjaErrors, RaiseExceptionCarriesTheMessageAndLine) {
  std::string e = render_error("{% if messages | length > 1 %}\n  {{ raise_exception('only one message') }}\n{% endif %}",
                               R"({"messages": [1, 2]})");
  expect_contains(e, "template 'chat_template' line 2: raise_exception: only one message");
}

TEST(JinjaErrors, UndefinedMisuseAndTypeErrorsFailLikeJinja2) {
  expect_contains(render_error("{{ x.y }}"), "'x' is undefined");
  expect_contains(render_error("{{ d.a.b }}", R"({"d": {}})"), "'dict object' has no attribute 'a'");
  expect_contains(render_error("{{ missing + 1 }}"), "'missing' is undefined");
  expect_contains(render_error("\n{{ 1 + 'a' }}"), "line 2: unsupported operand type(s) for +: 'int' and 'str'");
  expect_contains(render_error("{{ 'a' < 1 }}"), "'<' not supported between instances of 'str' and 'int'");
  expect_contains(render_error("{{ 1 / 0 }}"), "division by zero");
  expect_contains(render_error("{{ x | tojson }}"), "Object of type Undefined is not JSON serializable");
  expect_contains(render_error("{% for a, b in [1] %}{% endfor %}"), "'int' object is not iterable");
  expect_contains(render_error("{% set x = 1 %}{% set x.y = 2 %}"), "cannot assign attribute on non-namespace object 'x'");
  expect_contains(render_error("{{ 'abc'() }}"), "'str' object is not callable");
}

TEST(JinjaErrors, SandboxRefusesMutationAndHugeRanges) {
  expect_contains(render_error("{{ xs.append(3) }}", R"({"xs": [1]})"),
                  "access to attribute 'append' of 'list' object is unsafe.");
  expect_contains(render_error("{{ d.update({}) }}", R"({"d": {}})"),
                  "access to attribute 'update' of 'dict' object is unsafe.");
  expect_contains(render_error("{{ range(1000000) | length }}"),
                  "Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  expect_contains(render_error("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"), "macro recursion deeper than 100");
}

TEST(JinjaErrors, ContextMustBeAnObject) {
  ChatTemplate t = ChatTemplate::compile("x");
  EXPECT_THROW(t.render(nlohmann::json::array()), Error);
}

}  // namespace
}  // namespace adallm::text
