// The syntax tree the parser builds and the interpreter walks: expressions (one node type with a kind,
// Jinja2's precedence already resolved) and statements (if/for/set/macro/call/filter/with...). No
// behaviour here; evaluation is interpreter.cpp's.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "text/jinja/value.h"

namespace adallm::text::jinja {

enum class ExprKind {
  Const, Name, List, Tuple, Dict, Getattr, Getitem, Slice, Call, Filter, Test,
  Not, Neg, Pos, Binary, Concat, Compare, And, Or, CondExpr
};

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  ExprKind kind = ExprKind::Const;
  int line = 1;
  Value constant;                   // Const
  std::string name;                 // Name, Getattr attribute, Filter/Test name, Binary operator
  std::vector<ExprPtr> children;    // operands; Slice: object, start, stop, step (null when absent)
  std::vector<std::pair<std::string, ExprPtr>> kwargs;  // Call, Filter, Test keyword arguments
  std::vector<std::string> ops;     // Compare: one operator between consecutive children
  bool negated = false;             // Test: "is not"
  int depth = 1;                    // height of this subtree; the parser caps it (evaluation recurses)
};

// An assignment target: a name, a tuple of names (for k, v in ...), or ns.attr.
struct Target {
  std::vector<std::string> names;
  bool is_tuple = false;
  std::string attribute;  // non-empty: names[0].attribute
};

enum class StmtKind { Output, Print, If, For, Set, SetBlock, Macro, CallBlock, FilterBlock, Break, Continue,
                      With, Scope };

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

struct MacroParam {
  std::string name;
  ExprPtr default_value;  // null: required
};

struct Stmt {
  StmtKind kind = StmtKind::Output;
  int line = 1;
  std::string text;                                  // Output data; Macro name
  ExprPtr expr;                                      // Print, Set, For iterable, CallBlock call, filter
  ExprPtr condition;                                 // For's "if" filter
  std::vector<std::pair<ExprPtr, Body>> branches;    // If / elif
  Body body;
  Body else_body;
  Target target;
  std::vector<MacroParam> params;                    // Macro, CallBlock caller(...)
  std::vector<std::pair<Target, ExprPtr>> assignments;  // With
};

struct Template {
  std::string name;
  Body body;
};

}  // namespace adallm::text::jinja
