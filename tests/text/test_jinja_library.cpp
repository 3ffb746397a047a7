// The Jinja2 library chat templates reach: filters (tojson as transformers overrides it, trim, join,
// selectattr/map, dictsort, indent...), tests (defined, string, number, iterable...) and Python's str,
// dict and list methods. Every expected string below was produced by Python Jinja2 3.1.2 configured as
// transformers does (see test_jinja_syntax.cpp), not written by hand.
#include <gtest/gtest.h>

#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "text/chat_template.h"

namespace adallm::text {
namespace {

struct JinjaCase {
  const char* source;
  const char* context_json;
  const char* expected;  // rendered by Python Jinja2 3.1.2 set up as transformers does
};

std::string render(const char* source, const char* context_json) {
  return ChatTemplate::compile(source).render(nlohmann::ordered_json::parse(context_json));
}

void expect_cases(const JinjaCase* begin, const JinjaCase* end) {
  for (const JinjaCase* c = begin; c != end; ++c) {
    SCOPED_TRACE(std::string("template: ") + c->source);
    try {
      EXPECT_EQ(render(c->source, c->context_json), c->expected);
    } catch (const std::exception& e) {
      ADD_FAILURE() << "threw: " << e.what();
    }
  }
}

const JinjaCase kLibraryCases[] = {
    {"{{ \"  hi  \" | trim }}|{{ \"xxhixx\" | trim(\"x\") }}|{{ [1,2,3] | length }}|{{ \"héllo\" | length }}|{{ {\"a\":1} | count }}|{{ \"Hello World\" | lower }}{{ \"abc\" | upper }}|{{ \"hello wORLD-foo(bar\" | title }}|{{ \"hELLO world\" | capitalize }}",
     "{}",
     "hi|hi|3|5|1|hello worldABC|Hello World-Foo(Bar|Hello world"},
    {"{{ \"a-b-c\" | replace(\"-\", \"+\") }}|{{ \"aaa\" | replace(\"a\", \"b\", 2) }}|{{ [1, \"a\", none] | join(\", \") }}|{{ \"abc\" | join(\"-\") }}|{{ [3,1,2] | first }}{{ [3,1,2] | last }}{{ \"xyz\" | first }}|{{ [] | first }}|",
     "{}",
     "a+b+c|bba|1, a, None|a-b-c|32x||"},
    {"{{ x | default(\"d\") }}|{{ none | default(\"d\") }}|{{ \"\" | default(\"d\", true) }}|{{ 0 | d(\"z\", boolean=true) }}|{{ x | default }}",
     "{}",
     "d|None|d|z|"},
    {"{{ data | tojson }}|{{ data | tojson(indent=2) }}|{{ \"<é>&'\\\"\\n\\u0001\" | tojson }}|{{ [1.0, 2.5, 1e20, none, true] | tojson }}|{{ {} | tojson }}{{ [] | tojson(indent=2) }}|{{ data | tojson(sort_keys=true) }}|{{ data | tojson(separators=(\",\", \":\")) }}|{{ {\"a\": {}} | tojson(indent=4) }}",
     "{\"data\": {\"z\": 1, \"a\": [\"x\", {\"n\": null}], \"é\": \"ü\"}}",
     "{\"z\": 1, \"a\": [\"x\", {\"n\": null}], \"é\": \"ü\"}|{\n  \"z\": 1,\n  \"a\": [\n    \"x\",\n    {\n      \"n\": null\n    }\n  ],\n  \"é\": \"ü\"\n}|\"<é>&'\\\"\\n\\u0001\"|[1.0, 2.5, 1e+20, null, true]|{}[]|{\"a\": [\"x\", {\"n\": null}], \"z\": 1, \"é\": \"ü\"}|{\"z\":1,\"a\":[\"x\",{\"n\":null}],\"é\":\"ü\"}|{\n    \"a\": {}\n}"},
    {"{{ 3 | string }}{{ 3 | string | length }}{{ \"42\" | int + 1 }}|{{ \"4.7\" | int }}|{{ \"x\" | int }}|{{ \"x\" | int(7) }}|{{ 4.9 | int }}|{{ \"2.5\" | float }}|{{ 3 | float }}|{{ \"a\" | float }}|{{ \"0x1A\" | int(0, 16) }}|{{ true | int }}",
     "{}",
     "3143|4|0|7|4|2.5|3.0|0.0|26|1"},
    {"{{ \"abc\" | list }}{{ {\"a\":1,\"b\":2} | list }}|{{ {\"b\":1,\"a\":2} | items | list }}|{{ {\"b\":1,\"A\":2,\"c\":0} | dictsort }}|{{ {\"b\":1,\"A\":2,\"c\":0} | dictsort(by=\"value\", reverse=true) }}",
     "{}",
     "['a', 'b', 'c']['a', 'b']|[('b', 1), ('a', 2)]|[('A', 2), ('b', 1), ('c', 0)]|[('A', 2), ('b', 1), ('c', 0)]"},
    {"{{ users | selectattr(\"active\") | map(attribute=\"name\") | join(\",\") }}|{{ users | rejectattr(\"active\") | map(attribute=\"name\") | list }}|{{ users | selectattr(\"role\", \"equalto\", \"admin\") | list | length }}|{{ [1,2,3,4] | select(\"odd\") | list }}|{{ [1,2,3,4] | reject(\"even\") | list }}|{{ [1,2,3] | map(\"string\") | join }}|{{ users | map(attribute=\"missing\", default=\"-\") | join }}",
     "{\"users\": [{\"name\": \"a\", \"active\": true, \"role\": \"admin\"}, {\"name\": \"b\", \"active\": false, \"role\": \"user\"}, {\"name\": \"c\", \"active\": 1, \"role\": \"admin\"}]}",
     "a,c|['b']|2|[1, 3]|[1, 3]|123|---"},
    {"{{ [3,1,2] | sort }}{{ [3,1,2] | sort(reverse=true) }}{{ [\"b\",\"A\",\"c\"] | sort }}{{ [\"b\",\"A\",\"c\"] | sort(case_sensitive=true) }}{{ users | sort(attribute=\"age\") | map(attribute=\"n\") | list }}{{ [1,2,1,\"a\",\"A\"] | unique | list }}{{ [1,2,3] | reverse | list }}{{ \"abc\" | reverse }}",
     "{\"users\": [{\"n\": \"x\", \"age\": 3}, {\"n\": \"y\", \"age\": 1}]}",
     "[1, 2, 3][3, 2, 1]['A', 'b', 'c']['A', 'b', 'c']['y', 'x'][1, 2, 'a'][3, 2, 1]cba"},
    {"{{ \"<a href='x'>&</a>\" | escape }}|{{ \"<b>\" | e }}|{{ \"<b>\" | safe }}|{{ \"a\\nb\\n\\nc\" | indent }}|{{ \"a\\nb\" | indent(2, true) }}|{{ \"a\\n\\nb\" | indent(width=\"> \", blank=true) }}|{{ \"one two  three\" | wordcount }}",
     "{}",
     "&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt;|&lt;b&gt;|<b>|a\n    b\n\n    c|  a\n  b|a\n> \n> b|3"},
    {"{{ [1, 5, 3] | max }}{{ [1, 5, 3] | min }}{{ [1, 2.5] | sum }}{{ -3 | abs }}{{ 2.5 | round }}{{ 3.14159 | round(2) }}{{ 7 | round }}{{ 2.7 | round(method=\"floor\") }}|{{ \"%s-%d\" | format(\"a\", 3) }}|{{ {\"a\": 1} | attr(\"a\") }}|{{ [1,[2]] | pprint }}",
     "{}",
     "513.532.03.1472.0|a-3||[1, [2]]"},
    {"{{ 1 is number }}{{ true is number }}{{ true is integer }}{{ 1.0 is float }}{{ \"a\" is string }}{{ {} is mapping }}{{ [] is iterable }}{{ \"a\" is iterable }}{{ 1 is iterable }}{{ x is iterable }}{{ {} is sequence }}{{ none is none }}{{ x is undefined }}{{ false is false }}{{ 0 is false }}{{ true is true }}{{ true is boolean }}{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(2) }}",
     "{}",
     "TrueTrueFalseTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueFalseTrueTrueTrueTrueTrueFalse"},
    {"{{ 1 is eq 1 }}{{ 1 is ne 2 }}{{ 1 is lt 2 }}{{ 2 is ge 2 }}{{ \"a\" is in \"cat\" }}{{ 2 is in [1,2] }}{{ none is sameas none }}{{ \"abc\" is lower }}{{ \"ABC\" is upper }}{{ x is not defined }}{{ 1 is not string }}{{ range is callable }}{{ 1 is not none and 2 is number }}",
     "{}",
     "TrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrueTrue"},
    {"{{ \"  a b  \".strip() }}|{{ \"xxaxx\".strip(\"x\") }}|{{ \"\\n\\nab\\n\".lstrip(\"\\n\") }}|{{ \"ab  \".rstrip() }}|{{ \"hello\".startswith(\"he\") }}{{ \"hello\".endswith((\"x\", \"lo\")) }}|{{ \"a b  c\".split() }}|{{ \"a,b,,c\".split(\",\") }}|{{ \"a,b,c\".split(\",\", 1) }}|{{ \"a,b,c\".rsplit(\",\", 1) }}|{{ \" a b \".split(none, 1) }}|{{ \"a b c\".rsplit(none, 1) }}",
     "{}",
     "a b|a|ab\n|ab|TrueTrue|['a', 'b', 'c']|['a', 'b', '', 'c']|['a', 'b,c']|['a,b', 'c']|['a', 'b ']|['a b', 'c']"},
    {"{{ \"abc\".replace(\"b\", \"x\") }}|{{ \"Hello\".upper() }}{{ \"Hello\".lower() }}|{{ \"hello world\".title() }}{{ \"1st place\".title() }}|{{ \"hELLO\".capitalize() }}|{{ \"héllo\".find(\"l\") }}{{ \"abc\".find(\"z\") }}{{ \"abcabc\".rfind(\"b\") }}|{{ \"aaa\".count(\"a\") }}|{{ \", \".join([\"a\", \"b\"]) }}|{{ \"{} and {}\".format(1, \"b\") }}{{ \"{0}{0}{x}\".format(5, x=\"y\") }}|{{ \"123\".isdigit() }}{{ \"ab\".isalpha() }}|{{ \"ab\\ncd\".splitlines() }}",
     "{}",
     "axc|HELLOhello|Hello World1St Place|Hello|2-14|3|a, b|1 and b55y|TrueTrue|['ab', 'cd']"},
    {"{{ d.get(\"a\") }}{{ d.get(\"z\") }}{{ d.get(\"z\", 5) }}|{{ d.keys() | list }}|{{ d.values() | list }}|{{ d.items() | list }}|{{ [1,2,2].count(2) }}{{ [1,2,3].index(3) }}|{{ \"%s is %d\" % (\"x\", 4) }}{{ \"%.1f\" if false else \"%s%%\" % 5 }}",
     "{\"d\": {\"a\": 1, \"b\": [2]}}",
     "1None5|['a', 'b']|[1, [2]]|[('a', 1), ('b', [2])]|22|x is 45%"},
    {"{{ message.content.split(\"</think>\")[-1].lstrip(\"\\n\") }}|{{ message.content.split(\"</think>\")[0].rstrip(\"\\n\").split(\"<think>\")[-1].lstrip(\"\\n\") }}",
     "{\"message\": {\"content\": \"<think>\\nreason\\n</think>\\n\\nanswer\"}}",
     "answer|reason"},
    {"{{ \"ünïcödé\".upper() }}|{{ \"ÀÉÎ\".lower() }}|{{ \"\\u3000x\\u00a0\" | trim }}|{{ \"\\u200bx\" | trim }}|{{ \"日本語\"[1] }}{{ \"日本語\" | length }}",
     "{}",
     "ÜNÏCÖDÉ|àéî|x|​x|本3"},
    {"{{ none.x }}",
     "{}",
     ""},
    {"{%- if not tools is defined %}{%- set tools = none %}{%- endif %}{{ tools }}|{{ builtin_tools | reject(\"equalto\", \"code_interpreter\") | join(\", \") }}",
     "{\"builtin_tools\": [\"brave_search\", \"code_interpreter\", \"wolfram\"]}",
     "None|brave_search, wolfram"},
    {"{%- for message in messages %}{%- if message[\"role\"] == \"user\" and loop.index0 % 2 == 0 %}U{% elif message.role == \"assistant\" %}A{% endif %}{{ message[\"content\"] is none }}{%- endfor %}",
     "{\"messages\": [{\"role\": \"user\", \"content\": null}, {\"role\": \"assistant\", \"content\": \"x\"}]}",
     "UTrueAFalse"},
    {"{{ (messages | selectattr(\"role\", \"equalto\", \"system\") | list | length) > 0 }}|{{ messages | map(attribute=\"role\") | unique | list }}|{{ messages[-1][\"role\"] }}|{{ messages[1:] | length }}",
     "{\"messages\": [{\"role\": \"system\"}, {\"role\": \"user\"}, {\"role\": \"user\"}]}",
     "True|['system', 'user']|user|2"},
    {"{{ tool | tojson(indent=4) }}",
     "{\"tool\": {\"name\": \"f\", \"params\": {\"a\": [1, 2, {\"b\": null}], \"e\": [], \"o\": {}}, \"s\": \"ü \"}}",
     "{\n    \"name\": \"f\",\n    \"params\": {\n        \"a\": [\n            1,\n            2,\n            {\n                \"b\": null\n            }\n        ],\n        \"e\": [],\n        \"o\": {}\n    },\n    \"s\": \"ü \"\n}"},
    {"{{ x | tojson(ensure_ascii=true) }}|{{ 1.5 | tojson }}|{{ \"a\" | tojson }}|{{ none | tojson }}|{{ (1, 2) | tojson }}",
     "{\"x\": \"é😀\\u0007\"}",
     "\"\\u00e9\\ud83d\\ude00\\u0007\"|1.5|\"a\"|null|[1, 2]"},
    {"{{ message.content if message.content is string else message.content | map(attribute=\"text\") | join(\"\") }}",
     "{\"message\": {\"content\": [{\"text\": \"a\"}, {\"text\": \"b\"}]}}",
     "ab"},
    {"{{ '%Y' }}{{ messages | length is even }}{{ 10 // 3 * 3 }}{{ 2 - -1 }}{{ -x | abs }}{{ not x }}",
     "{\"messages\": [1, 2], \"x\": 3}",
     "%YTrue933False"},
    {"{% set ns = namespace(found=false) %}{% for m in messages %}{% if m == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }}",
     "{\"messages\": [1, 2]}",
     "True"},
    {"{{ 'a' if x == 1 else 'b' if x == 2 else 'c' }}{{ [x, 2][0] }}{{ {'k': x}['k'] }}{{ {'k': x}.k }}{{ x ~ '' }}",
     "{\"x\": 2}",
     "b2222"},
    {"{% for a, b in d | dictsort %}{{ a }}{{ b }}{% endfor %}{% for item in d.items() | list | reverse %}{{ item[0] }}{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": 2}}",
     "a2b1ab"},
    {"{{ 'Hello {name}'.format(name='W') }}|{{ 'x'.center(5) if false else 'y' }}|{{ ' x '.strip() ~ '|' }}{{ 'A.B'.lower().split('.') }}",
     "{}",
     "Hello W|y|x|['a', 'b']"},
    {"{{ 1.0 | int }}{{ 3.7 | round(0) }}{{ 1e3 | int }}{{ 0.1 * 3 }}{{ -0.0 }}{{ 1e-7 }}{{ 12345678901234567.0 }}",
     "{}",
     "14.010000.30000000000000004-0.01e-071.2345678901234568e+16"},
    {"{{ messages|length }}{{ messages|count }}{{ 'abc'|length }}{{ none|string }}{{ true|string|lower }}",
     "{\"messages\": []}",
     "003Nonetrue"},
    {"{{ x.a }}{{ x['b'] }}{{ x.get('c', 'dflt') }}{{ x.items()|length }}{{ x.keys()|first }}",
     "{\"x\": {\"a\": 1, \"b\": \"B\", \"items\": 5}}",
     "1Bdflt3a"},
    {"{% for i in range(3) %}{{ i }}{% endfor %}{% for i in range(1, 7, 2) %}{{ i }}{% endfor %}{% for i in range(5, 0, -2) %}{{ i }}{% endfor %}{{ range(3) | list }}",
     "{}",
     "012135531[0, 1, 2]"},
    {"{%- if messages[0]['role'] == 'system' -%}{%- set system_message = messages[0]['content'] -%}{%- set loop_messages = messages[1:] -%}{%- else -%}{%- set loop_messages = messages -%}{%- endif -%}{{ system_message }}|{{ loop_messages | length }}",
     "{\"messages\": [{\"role\": \"system\", \"content\": \"S\"}, {\"role\": \"user\", \"content\": \"u\"}]}",
     "S|1"},
    {"{{ '\\n'.join(['a', 'b']) }}|{{ 'a\\tb' }}|{{ '\\'' }}{{ \"\\\"\" }}",
     "{}",
     "a\nb|a\tb|'\""},
    {"{{ [1, 2] == [1, 2] }}{{ (1, 2) == [1, 2] }}{{ {'a': 1} == {'a': 1.0} }}{{ none == false }}{{ 0 == false }}{{ '1' == 1 }}{{ x == y }}",
     "{}",
     "TrueFalseTrueFalseTrueFalseTrue"},
    {"{{ 'x' in u }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "False"},
    {"{{ u | length }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "0"},
    {"{% for x in u %}a{% else %}e{% endfor %}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "e"},
    {"{{ u | list }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "[]"},
    {"{{ u | first }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ u == none }}{{ u == u2 }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "FalseTrue"},
    {"{{ u | trim }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ u | string }}|{{ u ~ 'a' }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "|a"},
    {"{{ u is none }}{{ u is string }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "FalseFalse"},
    {"{{ u | default(none) }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "None"},
    {"{{ u | join(',') }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ u | upper }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ u | items | list }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "[]"},
    {"{{ not u }}{{ u or 'z' }}{{ u and 'z' }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "Truez"},
    {"{{ [u] }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "[Undefined]"},
    {"{{ u is defined and u.x }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "False"},
    {"{% if u %}y{% else %}n{% endif %}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "n"},
    {"{{ u | selectattr('a') | list }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "[]"},
    {"{{ u | map(attribute='a') | list }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "[]"},
    {"{{ u | sort }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "[]"},
    {"{{ d['x'] is defined }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "False"},
    {"{{ l[9] is defined }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "False"},
    {"{{ l[9] ~ '' }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ s.nomethod }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ d.items is defined }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "True"},
    {"{{ (u if false) is defined }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "False"},
    {"{{ loop }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
    {"{{ range(3)[1] }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "1"},
    {"{{ 'abc'[1:] }}{{ 'abc'[10] ~ '' }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     "bc"},
    {"{{ [1,2][1.0] }}",
     "{\"d\": {}, \"l\": [1], \"s\": \"str\"}",
     ""},
};

TEST(JinjaLibrary, MatchesPythonJinja2) { expect_cases(std::begin(kLibraryCases), std::end(kLibraryCases)); }

TEST(JinjaLibrary, StrftimeNowFormatsTheCurrentDate) {
  std::string year = render("{{ strftime_now('%Y') }}", "{}");
  ASSERT_EQ(year.size(), 4u);
  EXPECT_GE(std::stoi(year), 2024);
  EXPECT_EQ(render("{{ strftime_now('%d %b %Y') | length }}", "{}"), "11");
}

}  // namespace
}  // namespace adallm::text
