// Recursive descent over Jinja2's expression grammar; see expression_parser.h for the precedence ladder.
#include "text/jinja/expression_parser.h"

#include "text/jinja/builtins.h"

namespace adallm::text::jinja {

bool ExpressionParser::at_expression_end() const {
  const Token& t = cur();
  if (t.type == TokenType::BlockEnd || t.type == TokenType::VariableEnd || t.type == TokenType::Eof) return true;
  if (t.type == TokenType::Operator && (t.value == ")" || t.value == "]" || t.value == "}")) return true;
  return false;
}

// Jinja2's parse_tuple: "a, b" without parentheses makes a tuple (used by {{ }}, set and for).
ExprPtr ExpressionParser::parse_tuple(bool with_condexpr, bool stop_at_if) {
  int line = cur().line;
  std::vector<ExprPtr> items;
  bool is_tuple = false;
  while (true) {
    if (!items.empty()) {
      if (!is_op(",")) break;
      advance();
      is_tuple = true;
      if (at_expression_end() || (stop_at_if && is_name("if"))) break;
    }
    items.push_back(with_condexpr ? parse_expression(true) : parse_or());
    if (stop_at_if && is_name("if")) break;
  }
  if (!is_tuple) return std::move(items[0]);
  auto t = node(ExprKind::Tuple, line);
  t->children = std::move(items);
  return finish(std::move(t));
}

ExprPtr ExpressionParser::parse_expression(bool with_condexpr) {
  DepthGuard guard(*this);
  ExprPtr e = parse_or();
  while (with_condexpr && is_name("if")) {
    int line = cur().line;
    advance();
    ExprPtr cond = parse_or();
    ExprPtr other;
    if (is_name("else")) {
      advance();
      other = parse_expression(true);
    }
    auto c = node(ExprKind::CondExpr, line);
    c->children.push_back(std::move(e));
    c->children.push_back(std::move(cond));
    c->children.push_back(std::move(other));
    e = finish(std::move(c));
  }
  return e;
}

ExprPtr ExpressionParser::binary(ExprKind kind, std::string op, ExprPtr l, ExprPtr r, int line) {
  auto b = node(kind, line);
  b->name = std::move(op);
  b->children.push_back(std::move(l));
  b->children.push_back(std::move(r));
  return finish(std::move(b));
}

ExprPtr ExpressionParser::parse_or() {
  ExprPtr e = parse_and();
  while (is_name("or")) {
    int line = cur().line;
    advance();
    e = binary(ExprKind::Or, "or", std::move(e), parse_and(), line);
  }
  return e;
}
ExprPtr ExpressionParser::parse_and() {
  ExprPtr e = parse_not();
  while (is_name("and")) {
    int line = cur().line;
    advance();
    e = binary(ExprKind::And, "and", std::move(e), parse_not(), line);
  }
  return e;
}
ExprPtr ExpressionParser::parse_not() {
  DepthGuard guard(*this);
  if (is_name("not")) {
    auto n = node(ExprKind::Not, cur().line);
    advance();
    n->children.push_back(parse_not());
    return finish(std::move(n));
  }
  return parse_compare();
}
ExprPtr ExpressionParser::parse_compare() {
  int line = cur().line;
  ExprPtr first = parse_math1();
  std::vector<std::string> ops;
  std::vector<ExprPtr> operands;
  while (true) {
    std::string op;
    const Token& t = cur();
    if (t.type == TokenType::Operator &&
        (t.value == "==" || t.value == "!=" || t.value == "<" || t.value == ">" || t.value == "<=" || t.value == ">=")) {
      op = t.value;
      advance();
    } else if (is_name("in")) {
      op = "in";
      advance();
    } else if (is_name("not") && peek().type == TokenType::Name && peek().value == "in") {
      op = "notin";
      advance();
      advance();
    } else {
      break;
    }
    ops.push_back(op);
    operands.push_back(parse_math1());
  }
  if (ops.empty()) return first;
  auto c = node(ExprKind::Compare, line);
  c->children.push_back(std::move(first));
  for (auto& o : operands) c->children.push_back(std::move(o));
  c->ops = std::move(ops);
  return finish(std::move(c));
}
ExprPtr ExpressionParser::parse_math1() {
  ExprPtr e = parse_concat();
  while (is_op("+") || is_op("-")) {
    std::string op = cur().value;
    int line = cur().line;
    advance();
    e = binary(ExprKind::Binary, op, std::move(e), parse_concat(), line);
  }
  return e;
}
ExprPtr ExpressionParser::parse_concat() {
  ExprPtr e = parse_math2();
  while (is_op("~")) {
    int line = cur().line;
    advance();
    e = binary(ExprKind::Concat, "~", std::move(e), parse_math2(), line);
  }
  return e;
}
ExprPtr ExpressionParser::parse_math2() {
  ExprPtr e = parse_pow();
  while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
    std::string op = cur().value;
    int line = cur().line;
    advance();
    e = binary(ExprKind::Binary, op, std::move(e), parse_pow(), line);
  }
  return e;
}
ExprPtr ExpressionParser::parse_pow() {
  ExprPtr e = parse_unary(true);
  while (is_op("**")) {
    int line = cur().line;
    advance();
    e = binary(ExprKind::Binary, "**", std::move(e), parse_unary(true), line);
  }
  return e;
}
ExprPtr ExpressionParser::parse_unary(bool with_filter) {
  DepthGuard guard(*this);
  int line = cur().line;
  ExprPtr e;
  if (is_op("-") || is_op("+")) {
    e = node(is_op("-") ? ExprKind::Neg : ExprKind::Pos, line);
    advance();
    e->children.push_back(parse_unary(false));
    e = finish(std::move(e));
  } else {
    e = parse_primary();
  }
  e = parse_postfix(std::move(e));
  if (with_filter) e = parse_filter_expr(std::move(e));
  return e;
}

ExprPtr ExpressionParser::parse_primary() {
  const Token t = cur();
  if (t.type == TokenType::Name) {
    advance();
    if (t.value == "true" || t.value == "True") return constant(Value::from_bool(true), t.line);
    if (t.value == "false" || t.value == "False") return constant(Value::from_bool(false), t.line);
    if (t.value == "none" || t.value == "None") return constant(Value::none(), t.line);
    auto n = node(ExprKind::Name, t.line);
    n->name = t.value;
    return n;
  }
  if (t.type == TokenType::String) {
    std::string s;
    while (cur().type == TokenType::String) {  // adjacent literals concatenate
      s += cur().value;
      advance();
    }
    return constant(Value::from_string(std::move(s)), t.line);
  }
  if (t.type == TokenType::Integer) {
    advance();
    try {
      return constant(Value::from_int(std::stoll(t.value)), t.line);
    } catch (const std::out_of_range&) {
      fail_at("integer literal " + t.value + " does not fit in 64 bits", t.line);
    }
  }
  if (t.type == TokenType::Float) {
    advance();
    return constant(Value::from_float(std::stod(t.value)), t.line);
  }
  if (is_op("(")) {
    advance();
    if (is_op(")")) {
      advance();
      return node(ExprKind::Tuple, t.line);
    }
    ExprPtr e = parse_tuple(true);
    expect_op(")");
    return e;
  }
  if (is_op("[")) {
    advance();
    auto l = node(ExprKind::List, t.line);
    while (!is_op("]")) {
      if (!l->children.empty()) expect_op(",");
      if (is_op("]")) break;
      l->children.push_back(parse_expression(true));
    }
    advance();
    return finish(std::move(l));
  }
  if (is_op("{")) {
    advance();
    auto d = node(ExprKind::Dict, t.line);
    while (!is_op("}")) {
      if (!d->children.empty()) expect_op(",");
      if (is_op("}")) break;
      d->children.push_back(parse_expression(true));
      expect_op(":");
      d->children.push_back(parse_expression(true));
    }
    advance();
    return finish(std::move(d));
  }
  fail("unexpected " + describe(t) + " in expression");
}

ExprPtr ExpressionParser::constant(Value v, int line) {
  auto c = node(ExprKind::Const, line);
  c->constant = std::move(v);
  return c;
}

ExprPtr ExpressionParser::parse_postfix(ExprPtr e) {
  while (true) {
    int line = cur().line;
    if (is_op(".")) {
      advance();
      if (cur().type == TokenType::Integer) {
        auto g = node(ExprKind::Getitem, line);
        g->children.push_back(std::move(e));
        g->children.push_back(constant(Value::from_int(std::stoll(cur().value)), line));
        advance();
        e = finish(std::move(g));
        continue;
      }
      auto g = node(ExprKind::Getattr, line);
      g->name = expect_name();
      g->children.push_back(std::move(e));
      e = finish(std::move(g));
    } else if (is_op("[")) {
      advance();
      e = parse_subscript(std::move(e), line);
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr ExpressionParser::parse_subscript(ExprPtr obj, int line) {
  ExprPtr parts[3];
  bool slice = false;
  int idx = 0;
  while (!is_op("]")) {
    if (is_op(":")) {
      slice = true;
      if (++idx > 2) fail("too many ':' in slice");
      advance();
      continue;
    }
    if (is_op(",")) fail("multi-dimensional subscripts are not supported");
    parts[idx] = parse_expression(true);
  }
  advance();
  if (!slice) {
    if (!parts[0]) fail_at("empty subscript []", line);
    auto g = node(ExprKind::Getitem, line);
    g->children.push_back(std::move(obj));
    g->children.push_back(std::move(parts[0]));
    return finish(std::move(g));
  }
  auto s = node(ExprKind::Slice, line);
  s->children.push_back(std::move(obj));
  for (auto& p : parts) s->children.push_back(std::move(p));
  return finish(std::move(s));
}

void ExpressionParser::parse_call_args(Expr& call) {
  expect_op("(");
  bool first = true;
  while (!is_op(")")) {
    if (!first) expect_op(",");
    first = false;
    if (is_op(")")) break;
    if (is_op("*") || is_op("**")) fail("*args and **kwargs in calls are not supported");
    if (cur().type == TokenType::Name && peek().type == TokenType::Operator && peek().value == "=") {
      std::string key = cur().value;
      advance();
      advance();
      call.kwargs.emplace_back(key, parse_expression(true));
    } else {
      if (!call.kwargs.empty()) fail("positional argument after keyword argument");
      call.children.push_back(parse_expression(true));
    }
  }
  advance();
}

ExprPtr ExpressionParser::parse_call(ExprPtr callee) {
  auto c = node(ExprKind::Call, cur().line);
  c->children.push_back(std::move(callee));
  parse_call_args(*c);
  return finish(std::move(c));
}

// `input` null: a filter block or {% set x | f %}, whose input is the rendered body.
ExprPtr ExpressionParser::parse_filter_chain(ExprPtr input, bool first_without_bar) {
  bool first = true;
  while (is_op("|") || (first && first_without_bar)) {
    if (is_op("|")) advance();
    first = false;
    int line = cur().line;
    std::string name = expect_name();
    while (is_op(".")) {
      advance();
      name += "." + expect_name();
    }
    if (!is_known_filter(name)) fail_at("unknown filter '" + name + "'", line);
    auto f = node(ExprKind::Filter, line);
    f->name = name;
    f->children.push_back(std::move(input));
    if (is_op("(")) parse_call_args(*f);
    input = finish(std::move(f));
  }
  return input;
}

ExprPtr ExpressionParser::parse_filter_expr(ExprPtr e) {
  while (true) {
    if (is_op("|")) {
      e = parse_filter_chain(std::move(e));
    } else if (is_name("is")) {
      e = parse_test(std::move(e));
    } else if (is_op("(")) {
      e = parse_call(std::move(e));
    } else {
      return e;
    }
  }
}

ExprPtr ExpressionParser::parse_test(ExprPtr subject) {
  int line = cur().line;
  advance();
  auto t = node(ExprKind::Test, line);
  if (is_name("not")) {
    t->negated = true;
    advance();
  }
  std::string name = expect_name();
  while (is_op(".")) {
    advance();
    name += "." + expect_name();
  }
  if (!is_known_test(name)) fail_at("unknown test '" + name + "'", line);
  t->name = name;
  t->children.push_back(std::move(subject));
  const Token& c = cur();
  if (is_op("(")) {
    parse_call_args(*t);
  } else if ((c.type == TokenType::Name || c.type == TokenType::String || c.type == TokenType::Integer ||
              c.type == TokenType::Float || is_op("[") || is_op("{")) &&
             !is_name("else") && !is_name("or") && !is_name("and")) {
    if (is_name("is")) fail("you cannot chain multiple tests with 'is'");
    t->children.push_back(parse_postfix(parse_primary()));
  }
  return finish(std::move(t));
}

}  // namespace adallm::text::jinja
