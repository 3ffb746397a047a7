// A cursor over the lexer's tokens with the helpers both parsers share (expect, describe, fail with the
// template line). The expression and statement parsers derive from it so they share one position.
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/jinja/ast.h"
#include "text/jinja/lexer.h"

namespace adallm::text::jinja {

class TokenCursor {
 public:
  TokenCursor(std::vector<Token> tokens, const std::string& name) : toks_(std::move(tokens)), name_(name) {}

 protected:
  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t k = 1) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  void advance() {
    if (pos_ + 1 < toks_.size()) ++pos_;
  }
  bool is_op(const char* op) const { return cur().type == TokenType::Operator && cur().value == op; }
  bool is_name(const char* n) const { return cur().type == TokenType::Name && cur().value == n; }
  [[noreturn]] void fail(const std::string& what) const { fail_at(what, cur().line); }
  [[noreturn]] void fail_at(const std::string& what, int line) const {
    throw Error("template '" + name_ + "' line " + std::to_string(line) + ": " + what);
  }
  std::string describe(const Token& t) const {
    switch (t.type) {
      case TokenType::Eof: return "end of template";
      case TokenType::BlockEnd: return "'%}'";
      case TokenType::VariableEnd: return "'}}'";
      case TokenType::String: return "string literal";
      default: return "'" + t.value + "'";
    }
  }
  void expect_op(const char* op) {
    if (!is_op(op)) fail(std::string("expected '") + op + "', got " + describe(cur()));
    advance();
  }
  std::string expect_name() {
    if (cur().type != TokenType::Name) fail("expected a name, got " + describe(cur()));
    std::string n = cur().value;
    advance();
    return n;
  }
  void expect_block_end() {
    if (cur().type != TokenType::BlockEnd) fail("expected end of statement '%}', got " + describe(cur()));
    advance();
  }

  ExprPtr node(ExprKind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // Records a finished node's height; evaluating and destroying a tree recurse as deep as it is tall, so
  // "1+1+1+..." chains must be capped like nesting.
  ExprPtr finish(ExprPtr e) {
    int height = 0;
    for (const auto& c : e->children) height = c ? std::max(height, c->depth) : height;
    for (const auto& kv : e->kwargs) height = std::max(height, kv.second->depth);
    e->depth = height + 1;
    if (e->depth > kMaxExprDepth) fail_at("expression nested deeper than " + std::to_string(kMaxExprDepth) + " levels", e->line);
    return e;
  }
  static constexpr int kMaxExprDepth = 256;

  // Recursive descent uses the C++ stack; a hostile template ("((((...") must fail, not overflow it.
  struct DepthGuard {
    explicit DepthGuard(TokenCursor& c) : cursor(c) {
      if (++cursor.depth_ > kMaxDepth) cursor.fail("nesting deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    ~DepthGuard() { --cursor.depth_; }
    TokenCursor& cursor;
  };
  static constexpr int kMaxDepth = 200;

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  const std::string& name_;
};

}  // namespace adallm::text::jinja
