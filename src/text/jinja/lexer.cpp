// The rules follow jinja2/lexer.py 3.1: "-" strips all whitespace on that side of a tag; trim_blocks drops
// one "\n" after %} and #}; lstrip_blocks drops spaces/tabs between a line start and {% or {# (not {{),
// where "line start" also means right after a tag whose match ended in "\n"; "+" disables both.
#include "text/jinja/lexer.h"

#include <cstring>

#include "core/error.h"
#include "text/jinja/value.h"

namespace adallm::text::jinja {
namespace {

bool is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Python's str.rstrip() / \s: Unicode whitespace, not just ASCII.
std::string rstrip_py(std::string_view text) {
  std::u32string cps = utf8_decode(text);
  size_t end = cps.size();
  while (end > 0 && py_isspace(cps[end - 1])) --end;
  return utf8_encode(std::u32string_view(cps).substr(0, end));
}

bool all_py_space(std::string_view text) {
  if (text.empty()) return false;
  for (char32_t c : utf8_decode(text)) {
    if (!py_isspace(c)) return false;
  }
  return true;
}

class Lexer {
 public:
  Lexer(std::string_view src, const std::string& name, LexerOptions opt) : src_(src), name_(name), opt_(opt) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) {
      size_t tag = find_tag(pos_);
      if (tag == std::string_view::npos) {
        emit(TokenType::Data, std::string(src_.substr(pos_)), line_at(pos_));
        break;
      }
      char kind = src_[tag + 1];  // '{', '%' or '#'
      char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      std::string text(src_.substr(pos_, tag - pos_));
      emit_text_before_tag(text, sign, kind != '{', pos_);
      pos_ = tag + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        lex_comment(tag);
      } else if (kind == '%' && try_raw(tag)) {
        continue;
      } else {
        lex_tag(kind == '%', tag);
      }
    }
    tokens_.push_back(Token{TokenType::Eof, "", line_at(src_.size())});
    return std::move(tokens_);
  }

 private:
  [[noreturn]] void fail(const std::string& what, size_t at) {
    throw Error("template '" + name_ + "' line " + std::to_string(line_at(at)) + ": " + what);
  }

  int line_at(size_t at) {
    while (line_pos_ < at && line_pos_ < src_.size()) {
      if (src_[line_pos_] == '\n') ++line_;
      ++line_pos_;
    }
    return line_;
  }

  size_t find_tag(size_t from) const {
    for (size_t i = from; i + 1 < src_.size(); ++i) {
      if (src_[i] == '{' && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return std::string_view::npos;
  }

  void emit(TokenType type, std::string value, int line) {
    if (type == TokenType::Data && value.empty()) return;
    tokens_.push_back(Token{type, std::move(value), line});
  }

  void emit_text_before_tag(std::string text, char sign, bool lstrip_applies, size_t text_pos) {
    if (sign == '-') {
      text = rstrip_py(text);
    } else if (sign != '+' && opt_.lstrip_blocks && lstrip_applies) {
      size_t nl = text.rfind('\n');
      size_t l_pos = nl == std::string::npos ? 0 : nl + 1;
      if ((l_pos > 0 || line_starting_) && all_py_space(std::string_view(text).substr(l_pos))) text.resize(l_pos);
    }
    emit(TokenType::Data, std::move(text), line_at(text_pos));
  }

  // After an end delimiter: "-" eats all following whitespace, trim_blocks one "\n" (not after "}}").
  void finish_end(size_t after_delim, bool minus, bool plus, bool trims) {
    size_t p = after_delim;
    if (minus) {
      while (p < src_.size() && is_ws(src_[p])) ++p;
    } else if (!plus && trims && opt_.trim_blocks && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    line_starting_ = p > 0 && src_[p - 1] == '\n';
    pos_ = p;
  }

  void lex_comment(size_t tag) {
    size_t end = src_.find("#}", pos_);
    if (end == std::string_view::npos) fail("unterminated comment {# ... #}", tag);
    bool minus = end > pos_ && src_[end - 1] == '-';
    bool plus = end > pos_ && src_[end - 1] == '+';
    finish_end(end + 2, minus, plus, true);
  }

  bool try_raw(size_t tag) {
    size_t p = pos_;
    while (p < src_.size() && is_ws(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    size_t q = p;
    while (q < src_.size() && is_ws(src_[q])) ++q;
    bool minus = src_.compare(q, 3, "-%}") == 0;
    if (!minus && src_.compare(q, 2, "%}") != 0) return false;
    // {% raw %} itself is not subject to trim_blocks in Jinja2; only "-%}" strips after it.
    finish_end(q + (minus ? 3 : 2), minus, false, false);
    size_t body = pos_;
    for (size_t i = body; i + 1 < src_.size(); ++i) {
      if (src_[i] != '{' || src_[i + 1] != '%') continue;
      size_t r = i + 2;
      char sign = r < src_.size() && (src_[r] == '-' || src_[r] == '+') ? src_[r] : 0;
      if (sign) ++r;
      while (r < src_.size() && is_ws(src_[r])) ++r;
      if (src_.compare(r, 6, "endraw") != 0) continue;
      r += 6;
      while (r < src_.size() && is_ws(src_[r])) ++r;
      bool end_minus = src_.compare(r, 3, "-%}") == 0, end_plus = src_.compare(r, 3, "+%}") == 0;
      if (!end_minus && !end_plus && src_.compare(r, 2, "%}") != 0) continue;
      emit_text_before_tag(std::string(src_.substr(body, i - body)), sign, true, body);
      finish_end(r + (end_minus || end_plus ? 3 : 2), end_minus, end_plus, true);
      return true;
    }
    fail("unterminated {% raw %} block (no {% endraw %})", tag);
  }

  void lex_tag(bool block, size_t tag) {
    int depth = 0;
    emit(block ? TokenType::BlockBegin : TokenType::VariableBegin, "", line_at(tag));
    while (true) {
      while (pos_ < src_.size() && is_ws(src_[pos_])) ++pos_;
      if (pos_ >= src_.size()) fail(block ? "unterminated {% tag" : "unterminated {{ expression", tag);
      if (depth == 0 && end_here(block)) return;
      lex_expression_token(depth);
    }
  }

  bool end_here(bool block) {
    const char* close = block ? "%}" : "}}";
    TokenType type = block ? TokenType::BlockEnd : TokenType::VariableEnd;
    bool minus = src_.compare(pos_, 3, std::string("-") + close) == 0;
    bool plus = block && src_.compare(pos_, 3, std::string("+") + close) == 0;
    if (!minus && !plus && src_.compare(pos_, 2, close) != 0) return false;
    emit(type, "", line_at(pos_));
    finish_end(pos_ + (minus || plus ? 3 : 2), minus, plus, block);
    return true;
  }

  void lex_expression_token(int& depth) {
    size_t start = pos_;
    char c = src_[pos_];
    int line = line_at(start);
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      while (pos_ < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '_')) ++pos_;
      emit(TokenType::Name, std::string(src_.substr(start, pos_ - start)), line);
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      lex_number(line);
    } else if (c == '\'' || c == '"') {
      lex_string(c, line);
    } else {
      static const char* two[] = {"//", "**", "==", "!=", ">=", "<="};
      for (const char* op : two) {
        if (src_.compare(pos_, 2, op) == 0) {
          pos_ += 2;
          emit(TokenType::Operator, op, line);
          return;
        }
      }
      if (!std::strchr("+-/*%~[](){}<>=.:|,;", c)) fail(std::string("unexpected character '") + c + "'", start);
      if (c == '(' || c == '[' || c == '{') ++depth;
      if (c == ')' || c == ']' || c == '}') {
        if (depth == 0) fail(std::string("unexpected '") + c + "'", start);
        --depth;
      }
      ++pos_;
      emit(TokenType::Operator, std::string(1, c), line);
    }
  }

  void digits() {
    while (pos_ < src_.size() && (std::isdigit(static_cast<unsigned char>(src_[pos_])) ||
                                  (src_[pos_] == '_' && pos_ + 1 < src_.size() &&
                                   std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))))) {
      ++pos_;
    }
  }

  void lex_number(int line) {
    size_t start = pos_;
    digits();
    bool is_float = false;
    if (pos_ + 1 < src_.size() && src_[pos_] == '.' && std::isdigit(static_cast<unsigned char>(src_[pos_ + 1]))) {
      ++pos_;
      digits();
      is_float = true;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p]))) {
        pos_ = p;
        digits();
        is_float = true;
      }
    }
    std::string text;
    for (size_t k = start; k < pos_; ++k) {
      if (src_[k] != '_') text += src_[k];
    }
    emit(is_float ? TokenType::Float : TokenType::Integer, text, line);
  }

  void lex_string(char quote, int line) {
    size_t start = pos_++;
    std::string out;
    while (true) {
      if (pos_ >= src_.size()) fail("unterminated string literal", start);
      char c = src_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (c != '\\' || pos_ + 1 >= src_.size()) {
        out += c;
        ++pos_;
        continue;
      }
      pos_ = decode_escape(pos_ + 1, out);
    }
    emit(TokenType::String, std::move(out), line);
  }

  // Python's "unicode-escape" codec, which Jinja2 applies to string literals; unknown escapes stay as is.
  size_t decode_escape(size_t p, std::string& out) {
    char e = src_[p];
    switch (e) {
      case 'n': out += '\n'; return p + 1;
      case 't': out += '\t'; return p + 1;
      case 'r': out += '\r'; return p + 1;
      case '\\': out += '\\'; return p + 1;
      case '\'': out += '\''; return p + 1;
      case '"': out += '"'; return p + 1;
      case 'a': out += '\a'; return p + 1;
      case 'b': out += '\b'; return p + 1;
      case 'f': out += '\f'; return p + 1;
      case 'v': out += '\v'; return p + 1;
      case '\n': return p + 1;
      case 'x':
      case 'u':
      case 'U': {
        size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
        if (p + n >= src_.size()) fail("truncated \\" + std::string(1, e) + " escape", p);
        std::string hex(src_.substr(p + 1, n));
        if (hex.size() != n || hex.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
          fail("truncated \\" + std::string(1, e) + " escape in string literal", p);
        }
        utf8_append(out, static_cast<char32_t>(std::stoul(hex, nullptr, 16)));
        return p + 1 + n;
      }
      default:
        if (e >= '0' && e <= '7') {
          unsigned v = 0;
          size_t k = p;
          while (k < p + 3 && k < src_.size() && src_[k] >= '0' && src_[k] <= '7') v = v * 8 + static_cast<unsigned>(src_[k++] - '0');
          utf8_append(out, v);
          return k;
        }
        out += '\\';
        return p;  // the character itself is copied by the caller's loop
    }
  }

  std::string_view src_;
  const std::string& name_;
  LexerOptions opt_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> tokens_;
  size_t line_pos_ = 0;
  int line_ = 1;
};

}  // namespace

std::string normalize_template_source(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

std::vector<Token> tokenize(std::string_view source, const std::string& template_name, LexerOptions options) {
  return Lexer(source, template_name, options).run();
}

}  // namespace adallm::text::jinja
