// Jinja2 syntax as transformers runs it: literals and Python printing, operators, whitespace control
// with trim_blocks + lstrip_blocks, loops, set/namespace, macros, call and filter blocks. Every expected
// string below was produced by Python Jinja2 3.1.2 (ImmutableSandboxedEnvironment(trim_blocks=True,
// lstrip_blocks=True, extensions=[loopcontrols]) with transformers' tojson), not written by hand.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_template.h"
#include "jinja_test_util.h"

namespace adallm::text {
namespace {

const JinjaCase kSyntaxCases[] = {
    {"{{ 1.0 }} {{ 1e16 }} {{ 0.00001 }} {{ 2.5e-3 }} {{ 123456789.125 }} {{ [1,\"a\",none,true,{\"k\":2.5}] }} {{ (1,) }} {{ none }} {{ True }} {{ () }}",
     "{}",
     "1.0 1e+16 1e-05 0.0025 123456789.125 [1, 'a', None, True, {'k': 2.5}] (1,) None True ()"},
    {"{{ \"it's\" }} {{ [\"it's\", \"q\\\"x\", \"a\\nb\", \"\\u00e9\\t\"] }} {{ {\"a\": [1, (2, 3)]} }}",
     "{}",
     "it's [\"it's\", 'q\"x', 'a\\nb', 'é\\t'] {'a': [1, (2, 3)]}"},
    {"{{ \"x\" ~ 1.5 ~ none ~ true }}|{{ \"ab\"[::-1] }}|{{ \"héllo\"[1:3] }}|{{ [1,2,3][-1] }}|{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 2 ** 10 }} {{ 7 / 2 }} {{ 4 / 2 }} {{ 2 ** -1 }} {{ 2 ** 3 ** 2 }} {{ 7.5 // 2 }} {{ -7.5 % 2 }}",
     "{}",
     "x1.5NoneTrue|ba|él|3|3 -4 2 1024 3.5 2.0 0.5 64 3.0 0.5"},
    {"{{ [1,2,3,4,5][1:4] }}{{ [1,2,3,4,5][::2] }}{{ [1,2,3,4,5][-2:] }}{{ [1,2,3,4,5][:-2] }}{{ [1,2,3,4,5][4:1:-1] }}{{ \"héllo wörld\"[::-2] }}{{ \"abc\"[5:] }}",
     "{}",
     "[2, 3, 4][1, 3, 5][4, 5][1, 2, 3][5, 4, 3]drwolh"},
    {"{{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ -2 ** 2 }} {{ not true or true }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ \"a\" * 3 }} {{ [1] * 2 }} {{ 1 == 1.0 }} {{ \"a\" < \"b\" }} {{ 1 in [1.0] }} {{ \"a\" in \"cat\" }} {{ \"k\" in {\"k\":1} }} {{ 2 not in [1] }}",
     "{}",
     "5.0 9 4 True True False aaa [1, 1] True True True True True True"},
    {"{{ 0 or \"x\" }} {{ 1 and \"y\" }} {{ \"\" and 1 }} {{ none or none }} {{ [] or {} }}",
     "{}",
     "x y  None {}"},
    {"{{ \"yes\" if x else \"no\" }} {{ \"yes\" if y }}|{{ x if x is defined else \"undef\" }}",
     "{\"x\": 0}",
     "no |0"},
    {"{{ 1_000 }} {{ 1.5e3 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 10 / 4 }} {{ 1e100 }} {{ 3.0 * 2 }} {{ 2 * 0.5 }}",
     "{}",
     "1000 1500.0 0.30000000000000004 0.3333333333333333 2.5 1e+100 6.0 1.0"},
    {"{{ 'a' 'b' \"c\" }} {{ '\\x41\\u00e9\\101\\q' }}",
     "{}",
     "abc AéA\\q"},
    {"{% if true %}\n  {{ 'x' }}\n  {% endif %}\nend",
     "{}",
     "  x\nend"},
    {"a\n  {% if true %}\n    b\n  {% endif %}\nc\n",
     "{}",
     "a\n    b\nc"},
    {"a  {%- if true -%}  b  {%- endif -%}  c",
     "{}",
     "abc"},
    {"a\n  {%+ if true %}\n    b\n  {%+ endif +%}\nc",
     "{}",
     "a\n      b\n  \nc"},
    {"x {# comment #}\ny\n  {# c2 #}\nz {#- c3 -#}  w",
     "{}",
     "x y\nzw"},
    {"{% raw %}{{ not parsed }} {% if %}{% endraw %}\n  {% raw -%}  a {{ b }}  {%- endraw %}!",
     "{}",
     "{{ not parsed }} {% if %}a {{ b }}!"},
    {"{{ 'a' }}\n{{ 'b' }}\n  {{- 'c' -}}  \n\n d",
     "{}",
     "a\nbcd"},
    {"  {% for i in [1,2] %}\n    {{ i }}\n  {% endfor %}\n",
     "{}",
     "    1\n    2\n"},
    {"{% for i in [1,2] %}{{ i }}{% endfor %}\n\n\n",
     "{}",
     "12\n"},
    {"\t{% if true %}x{% endif %}\n  \t{%- if true %}y{% endif %}",
     "{}",
     "xy"},
    {"line1\r\nline2\r\n{% if true %}\r\nz\r\n{% endif %}\r\n",
     "{}",
     "line1\nline2\nz\n"},
    {"{%- set x = 1 -%}\n\n   {{ x }}   \n",
     "{}",
     "1   "},
    {"{% if true %}a{% else %}b{% endif %}{% if false %}a{% elif 1 %}c{% else %}b{% endif %}{% if none %}{% elif '' %}{% else %}e{% endif %}",
     "{}",
     "ace"},
    {"{% for x in xs %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}-{{ x }};{% endfor %}",
     "{\"xs\": [\"a\", \"b\", \"c\"]}",
     "10TrueFalse332-a;21FalseFalse321-b;32FalseTrue310-c;"},
    {"{% for x in [] %}x{% else %}empty{% endfor %}{% for x in [1] %}{{ x }}{% else %}no{% endfor %}",
     "{}",
     "empty1"},
    {"{% for x in range(10) if x is odd %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}",
     "{}",
     "1:1/5 3:2/5 5:3/5 7:4/5 9:5/5 "},
    {"{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k in d %}{{ k }}{% endfor %}{% for a, b in [(1, 2), [3, 4]] %}{{ a + b }}{% endfor %}",
     "{\"d\": {\"z\": 1, \"a\": [2], \"m\": null}}",
     "z=1;a=[2];m=None;zam37"},
    {"{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}",
     "{}",
     "0134"},
    {"{% for i in [1,2] %}{% if i == 2 %}[{{ x }}]{% endif %}{% set x = i %}{% endfor %}[{{x}}]",
     "{}",
     "[][]"},
    {"{% set x = 5 %}{% for i in [1] %}{{ x }}{% set x = 7 %}{{ x }}{% endfor %}{{ x }}",
     "{}",
     "575"},
    {"{% for a in [1,2] %}{% for b in \"xy\" %}{{ loop.index }}{{ a }}{{ b }}{{ loop.depth }} {% endfor %}{{ loop.index }}|{% endfor %}",
     "{}",
     "11x1 21y1 1|12x1 22y1 2|"},
    {"{% for x in \"héllo\" %}{{ x }}.{% endfor %}{% for x in [1,2,3] %}{{ loop.previtem }}<{{ x }}>{{ loop.nextitem }} {{ loop.cycle(\"o\", \"e\") }};{% endfor %}",
     "{}",
     "h.é.l.l.o.<1>2 o;1<2>3 e;2<3> o;"},
    {"{% for m in messages[::-1] %}{{ (messages|length - 1) - loop.index0 }}{{ m }}{% endfor %}",
     "{\"messages\": [\"a\", \"b\", \"c\"]}",
     "2c1b0a"},
    {"{% set ns = namespace(a=1, b=\"x\") %}{% set ns.a = ns.a + 1 %}{% for i in [1,2] %}{% set ns.b = ns.b ~ i %}{% endfor %}{{ ns.a }}{{ ns.b }}{{ ns }}",
     "{}",
     "2x12<Namespace {'a': 2, 'b': 'x12'}>"},
    {"{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = 1, 2 %}{{ t }}{% set content %}  block {{ a }} {% endset %}[{{ content }}]{% set c2 | upper | trim %} xy {% endset %}[{{ c2 }}]",
     "{}",
     "12(1, 2)[  block 1 ][XY]"},
    {"{% macro greet(name, greeting=\"Hello\") %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet(\"A\") }} {{ greet(\"B\", \"Hi\") }} {{ greet(greeting=\"Yo\", name=\"C\") }}",
     "{}",
     "Hello, A! Hi, B! Yo, C!"},
    {"{% macro m(a) %}[{{ a }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ m(1, 2, 3, x=4) }}",
     "{}",
     "[1(2, 3){'x': 4}]"},
    {"{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap(\"b\") %}inner {{ 1 + 1 }}{% endcall %}",
     "{}",
     "<b>inner 2</b>"},
    {"{% macro li(x) %}{{ caller(x * 2) }}{% endmacro %}{% call(v) li(21) %}v={{ v }}{% endcall %}",
     "{}",
     "v=42"},
    {"{% filter upper %}hello {{ \"world\" }}{% endfilter %}{% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }}",
     "{}",
     "HELLO WORLD3"},
    {"{% set x = [1, 2] %}{% set y = x + [3] %}{{ y }}{{ x }}{% set d = {\"a\": 1} %}{{ d }}{{ dict(a=1, b=2) }}{{ namespace(x=1).x }}",
     "{}",
     "[1, 2, 3][1, 2]{'a': 1}{'a': 1, 'b': 2}1"},
    {"{{ 'a' }}  \n  {% if true %}\n  x\n{% endif %}",
     "{}",
     "a  \n  x\n"},
    {"{%- for m in messages %}\n  {{- m }}\n{%- endfor %}\n",
     "{\"messages\": [1, 2]}",
     "12"},
    {"  {{ 'v' }}\n  {% set x = 1 %}\n  {{ x }}",
     "{}",
     "  v\n  1"},
    {"{% if true -%}\n\n  a  \n{%- endif %}|",
     "{}",
     "a|"},
    {"a {#- c #} b {# c -#}\n c",
     "{}",
     "a b c"},
    {"{% for x in [1,2] -%}\n  {{ x }}\n{%- endfor %}",
     "{}",
     "12"},
    {"<{% for x in [1,2] %}\n{{ x }}\n{% endfor %}>",
     "{}",
     "<1\n2\n>"},
    {"{{- ' lead' }}  {{ 'x' -}}\n\n  {%- if true %}  y{% endif %}",
     "{}",
     " lead  x  y"},
    {"   {%- if true %}z{% endif %}\n   {% if true -%}   w{% endif %}",
     "{}",
     "zw"},
    {"{{ \"a\" }}{%+ if true %}\n b{% endif %}\n    {%+ if true %}c{% endif %}",
     "{}",
     "a b    c"},
    {"x\n  {#- comment #}\n  {# comment #}\ny",
     "{}",
     "xy"},
    {"{% raw %}\n  {% endraw %}|\n  {% raw %}a{% endraw %}",
     "{}",
     "\n|\na"},
    {"{% set x -%}\n  hi\n{%- endset %}[{{ x }}]",
     "{}",
     "[hi]"},
    {"{% macro f(a, b=[1]) -%}\n  {{ a }}{{ b }}\n{%- endmacro %}\n{{ f(1) }}\n{{ f(2, b='x') }}",
     "{}",
     "1[1]\n2x"},
};

TEST(JinjaSyntax, MatchesPythonJinja2) { expect_cases(std::begin(kSyntaxCases), std::end(kSyntaxCases)); }

TEST(JinjaSyntax, TemplateIsParsedOnceAndRenderedManyTimes) {
  ChatTemplate t = ChatTemplate::compile("{% for m in messages %}{{ m }},{% endfor %}");
  EXPECT_EQ(t.render(nlohmann::json{{"messages", {1, 2}}}), "1,2,");
  EXPECT_EQ(t.render(nlohmann::json{{"messages", {"x"}}}), "x,");
  ChatTemplate copy = t;
  EXPECT_EQ(copy.render(nlohmann::json{{"messages", nlohmann::json::array()}}), "");
}

TEST(JinjaSyntax, GenerationBlockRendersItsBody) {
  // transformers' AssistantTracker extension adds {% generation %}; rendering a prompt it is transparent.
  EXPECT_EQ(render("{% for m in ms %}{% generation %}<{{ m }}>{% endgeneration %}{% endfor %}", R"({"ms": [1, 2]})"),
            "<1><2>");
}

TEST(JinjaSyntax, PlainJsonSortsKeysOrderedJsonKeepsThem) {
  // nlohmann::json stores objects sorted; ordered_json keeps request order as Python dicts do.
  const char* src = "{{ d | tojson }}";
  EXPECT_EQ(ChatTemplate::compile(src).render(nlohmann::ordered_json::parse(R"({"d": {"z": 1, "a": 2}})")),
            "{\"z\": 1, \"a\": 2}");
  EXPECT_EQ(ChatTemplate::compile(src).render(nlohmann::json::parse(R"({"d": {"z": 1, "a": 2}})")),
            "{\"a\": 2, \"z\": 1}");
}

}  // namespace
}  // namespace adallm::text
