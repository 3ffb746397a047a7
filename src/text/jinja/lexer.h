// Jinja2's lexer as transformers configures it (trim_blocks, lstrip_blocks, default delimiters): turns a
// template into data, tag and expression tokens, applying whitespace control ({%- -%} {%+ +%}), raw
// blocks and comments exactly as jinja2/lexer.py does. Parsing the token stream is parser.cpp's job.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace adallm::text::jinja {

enum class TokenType { Data, VariableBegin, VariableEnd, BlockBegin, BlockEnd, Name, String, Integer, Float,
                       Operator, Eof };

struct Token {
  TokenType type;
  std::string value;  // Data text, name, decoded string literal, number text, or operator spelling
  int line = 1;
};

struct LexerOptions {
  bool trim_blocks = true;
  bool lstrip_blocks = true;
};

// Throws adallm::Error ("template NAME line N: ...") on unterminated tags, strings or comments.
std::vector<Token> tokenize(std::string_view source, const std::string& template_name,
                            LexerOptions options = {});

// Jinja2 normalises \r\n and \r to \n and drops one trailing newline (keep_trailing_newline=False).
std::string normalize_template_source(std::string_view source);

}  // namespace adallm::text::jinja
