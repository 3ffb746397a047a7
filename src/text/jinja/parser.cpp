// Jinja2's statements (if/elif/else, for/else, set and block set, macro, call, filter, with, break,
// continue, generation) parsed into the AST; expressions are expression_parser.cpp's. A statement body is
// parsed until one of its end tags; any other statement name is refused with its line.
#include "text/jinja/parser.h"

#include <initializer_list>

#include "core/error.h"
#include "text/jinja/builtins.h"
#include "text/jinja/expression_parser.h"
#include "text/jinja/lexer.h"

namespace adallm::text::jinja {
namespace {

class Parser : public ExpressionParser {
 public:
  using ExpressionParser::ExpressionParser;

  Body parse_all() {
    std::string stop;
    Body body = parse_body({}, stop);
    if (cur().type != TokenType::Eof) fail("unexpected tokens after template end");
    return body;
  }

 private:
  // ---- statements -------------------------------------------------------------------------------
  Body parse_body(std::initializer_list<const char*> stop_names, std::string& stop) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == TokenType::Eof) {
        if (stop_names.size() != 0) {
          std::string looking;
          for (const char* n : stop_names) looking += (looking.empty() ? "'" : " or '") + std::string(n) + "'";
          fail("unexpected end of template, looking for " + looking);
        }
        return body;
      }
      if (t.type == TokenType::Data) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Output;
        s->line = t.line;
        s->text = t.value;
        body.push_back(std::move(s));
        advance();
      } else if (t.type == TokenType::VariableBegin) {
        auto s = std::make_unique<Stmt>();
        s->kind = StmtKind::Print;
        s->line = t.line;
        advance();
        s->expr = parse_tuple(true);
        if (cur().type != TokenType::VariableEnd) fail("expected '}}', got " + describe(cur()));
        advance();
        body.push_back(std::move(s));
      } else if (t.type == TokenType::BlockBegin) {
        advance();
        if (cur().type != TokenType::Name) fail("expected a statement name after '{%'");
        for (const char* n : stop_names) {
          if (cur().value == n) {
            stop = n;
            advance();
            return body;
          }
        }
        body.push_back(parse_statement());
      } else {
        fail("unexpected " + describe(t));
      }
    }
  }

  std::unique_ptr<Stmt> parse_statement() {
    DepthGuard guard(*this);
    const std::string word = cur().value;
    int line = cur().line;
    auto s = std::make_unique<Stmt>();
    s->line = line;
    advance();
    if (word == "if") return parse_if(std::move(s));
    if (word == "for") return parse_for(std::move(s));
    if (word == "set") return parse_set(std::move(s));
    if (word == "macro") return parse_macro(std::move(s));
    if (word == "call") return parse_call_block(std::move(s));
    if (word == "filter") return parse_filter_block(std::move(s));
    if (word == "with") return parse_with(std::move(s));
    if (word == "break" || word == "continue") {
      if (loop_depth_ == 0) fail_at("'" + word + "' outside a for loop", line);
      s->kind = word == "break" ? StmtKind::Break : StmtKind::Continue;
      expect_block_end();
      return s;
    }
    if (word == "generation") {  // transformers' AssistantTracker: renders its body unchanged
      s->kind = StmtKind::Scope;
      expect_block_end();
      std::string stop;
      s->body = parse_body({"endgeneration"}, stop);
      expect_block_end();
      return s;
    }
    if (word == "elif" || word == "else" || word.rfind("end", 0) == 0) fail_at("unexpected '" + word + "' tag", line);
    fail_at("unsupported statement '" + word + "' (the chat template interpreter implements if, for, set, "
            "macro, call, filter, with, break, continue, raw, generation)", line);
  }

  std::unique_ptr<Stmt> parse_if(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::If;
    while (true) {
      ExprPtr cond = parse_tuple(false);
      expect_block_end();
      std::string stop;
      Body body = parse_body({"elif", "else", "endif"}, stop);
      s->branches.emplace_back(std::move(cond), std::move(body));
      if (stop == "elif") continue;
      if (stop == "else") {
        expect_block_end();
        s->else_body = parse_body({"endif"}, stop);
      }
      expect_block_end();
      return s;
    }
  }

  Target parse_target(bool allow_tuple, bool allow_attr) {
    Target t;
    t.names.push_back(expect_name());
    if (allow_attr && is_op(".")) {
      advance();
      t.attribute = expect_name();
      return t;
    }
    while (allow_tuple && is_op(",")) {
      t.is_tuple = true;
      advance();
      if (cur().type != TokenType::Name) break;
      t.names.push_back(expect_name());
    }
    return t;
  }

  std::unique_ptr<Stmt> parse_for(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::For;
    bool paren = is_op("(");
    if (paren) advance();
    s->target = parse_target(true, false);
    if (paren) expect_op(")");
    if (!is_name("in")) fail("expected 'in' in for loop, got " + describe(cur()));
    advance();
    s->expr = parse_tuple(false, true);
    if (is_name("if")) {
      advance();
      s->condition = parse_expression(true);
    }
    if (is_name("recursive")) fail("recursive for loops are not supported");
    expect_block_end();
    ++loop_depth_;
    std::string stop;
    s->body = parse_body({"else", "endfor"}, stop);
    --loop_depth_;
    if (stop == "else") {
      expect_block_end();
      s->else_body = parse_body({"endfor"}, stop);
    }
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_set(std::unique_ptr<Stmt> s) {
    s->target = parse_target(true, true);
    if (is_op("=")) {
      advance();
      s->kind = StmtKind::Set;
      s->expr = parse_tuple(true);
      expect_block_end();
      return s;
    }
    if (s->target.is_tuple) fail("expected '=' after a tuple target in set");
    s->kind = StmtKind::SetBlock;
    if (is_op("|")) s->expr = parse_filter_chain(nullptr);
    expect_block_end();
    std::string stop;
    s->body = parse_body({"endset"}, stop);
    expect_block_end();
    return s;
  }

  void parse_params(std::vector<MacroParam>& params) {
    expect_op("(");
    while (!is_op(")")) {
      if (!params.empty()) expect_op(",");
      if (is_op(")")) break;
      MacroParam p;
      p.name = expect_name();
      if (is_op("=")) {
        advance();
        p.default_value = parse_expression(true);
      } else if (!params.empty() && params.back().default_value) {
        fail("non-default argument '" + p.name + "' follows default argument");
      }
      params.push_back(std::move(p));
    }
    advance();
  }

  std::unique_ptr<Stmt> parse_macro(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::Macro;
    s->text = expect_name();
    parse_params(s->params);
    expect_block_end();
    int saved = loop_depth_;
    loop_depth_ = 0;
    std::string stop;
    s->body = parse_body({"endmacro"}, stop);
    loop_depth_ = saved;
    if (cur().type == TokenType::Name) advance();  // {% endmacro name %}
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_call_block(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::CallBlock;
    if (is_op("(")) parse_params(s->params);
    s->expr = parse_expression(true);
    if (s->expr->kind != ExprKind::Call) fail_at("expected a macro call in {% call %}", s->line);
    expect_block_end();
    std::string stop;
    s->body = parse_body({"endcall"}, stop);
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_filter_block(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::FilterBlock;
    s->expr = parse_filter_chain(nullptr, /*first_without_bar=*/true);
    expect_block_end();
    std::string stop;
    s->body = parse_body({"endfilter"}, stop);
    expect_block_end();
    return s;
  }

  std::unique_ptr<Stmt> parse_with(std::unique_ptr<Stmt> s) {
    s->kind = StmtKind::With;
    while (cur().type != TokenType::BlockEnd) {
      if (!s->assignments.empty()) expect_op(",");
      Target t = parse_target(false, false);
      expect_op("=");
      s->assignments.emplace_back(std::move(t), parse_expression(true));
    }
    expect_block_end();
    std::string stop;
    s->body = parse_body({"endwith"}, stop);
    expect_block_end();
    return s;
  }

  int loop_depth_ = 0;
};

}  // namespace

Template parse_template(std::string_view source, const std::string& name) {
  std::string normalized = normalize_template_source(source);
  Template t;
  t.name = name;
  t.body = Parser(tokenize(normalized, name), name).parse_all();
  return t;
}

}  // namespace adallm::text::jinja
