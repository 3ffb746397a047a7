// Jinja2's expression grammar (jinja2/parser.py): conditional > or > and > not > comparisons > + - > ~ >
// * / // % > ** (left-assoc, as Jinja2) > unary - + > postfix (. [] ()) > filters and tests. Unknown
// filters and tests are refused here, at load time. Statements are parser.cpp's.
#pragma once

#include "text/jinja/token_cursor.h"

namespace adallm::text::jinja {

class ExpressionParser : public TokenCursor {
 public:
  using TokenCursor::TokenCursor;

 protected:
  // Jinja2's parse_tuple: "a, b" without parentheses makes a tuple (used by {{ }}, set and for).
  ExprPtr parse_tuple(bool with_condexpr, bool stop_at_if = false);
  ExprPtr parse_expression(bool with_condexpr);
  // `input` null: a filter block or {% set x | f %}, whose input is the rendered body.
  ExprPtr parse_filter_chain(ExprPtr input, bool first_without_bar = false);
  void parse_call_args(Expr& call);

 private:
  bool at_expression_end() const;
  ExprPtr binary(ExprKind kind, std::string op, ExprPtr l, ExprPtr r, int line);
  ExprPtr parse_or();
  ExprPtr parse_and();
  ExprPtr parse_not();
  ExprPtr parse_compare();
  ExprPtr parse_math1();
  ExprPtr parse_concat();
  ExprPtr parse_math2();
  ExprPtr parse_pow();
  ExprPtr parse_unary(bool with_filter);
  ExprPtr parse_primary();
  ExprPtr constant(Value v, int line);
  ExprPtr parse_postfix(ExprPtr e);
  ExprPtr parse_subscript(ExprPtr obj, int line);
  ExprPtr parse_call(ExprPtr callee);
  ExprPtr parse_filter_expr(ExprPtr e);
  ExprPtr parse_test(ExprPtr subject);
};

}  // namespace adallm::text::jinja
