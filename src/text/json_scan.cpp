// Hand-rolled JSON walking for tokenizer.json's vocab and merges (see json_scan.h): a DOM of 800k small
// values costs seconds, mostly in unoptimized test builds; this direct walk is several times cheaper.
#include "text/json_scan.h"

#include "core/error.h"
#include "text/utf8.h"

namespace adallm::text::json_scan {
namespace {

class Cursor {
 public:
  explicit Cursor(std::string_view s) : s_(s) {}

  [[noreturn]] void fail(const std::string& what) const {
    throw Error("malformed tokenizer JSON at byte " + std::to_string(pos_) + ": " + what);
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  bool peek(char c) {
    skip_ws();
    return pos_ < s_.size() && s_[pos_] == c;
  }
  void expect(char c) {
    if (!peek(c)) fail(std::string("expected '") + c + "'");
    ++pos_;
  }
  bool consume(char c) {
    if (!peek(c)) return false;
    ++pos_;
    return true;
  }
  size_t pos() const { return pos_; }
  bool at_end() {
    skip_ws();
    return pos_ >= s_.size();
  }

  std::string string() {
    expect('"');
    std::string out;
    while (true) {
      if (pos_ >= s_.size()) fail("unterminated string");
      const char c = s_[pos_++];
      if (c == '"') return out;
      if (c != '\\') {
        out.push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) fail("unterminated escape");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u':
          utf8::append(out, code_point());
          break;
        default:
          fail("bad escape");
      }
    }
  }

  int64_t integer() {
    skip_ws();
    const bool negative = pos_ < s_.size() && s_[pos_] == '-';
    if (negative) ++pos_;
    int64_t v = 0;
    const size_t start = pos_;
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9' && v < (int64_t{1} << 40))
      v = v * 10 + (s_[pos_++] - '0');
    if (pos_ == start || (pos_ < s_.size() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E')))
      fail("expected an integer");
    return negative ? -v : v;
  }

  // Skips one value of any type and returns its text.
  std::string_view value() {
    skip_ws();
    const size_t start = pos_;
    int depth = 0;
    do {
      if (pos_ >= s_.size()) fail("unexpected end");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        while (pos_ < s_.size() && s_[pos_] != '"') pos_ += s_[pos_] == '\\' ? 2 : 1;
        if (pos_ >= s_.size()) fail("unterminated string");
        ++pos_;
      } else if (c == '{' || c == '[') {
        ++depth;
        ++pos_;
      } else if (c == '}' || c == ']') {
        if (--depth < 0) fail("unbalanced bracket");
        ++pos_;
      } else if (depth == 0) {
        while (pos_ < s_.size() && s_[pos_] != ',' && s_[pos_] != '}' && s_[pos_] != ']' && s_[pos_] != ' ' &&
               s_[pos_] != '\n' && s_[pos_] != '\r' && s_[pos_] != '\t')
          ++pos_;
      } else {
        ++pos_;
      }
    } while (depth > 0);
    if (pos_ == start) fail("expected a value");
    return s_.substr(start, pos_ - start);
  }

 private:
  char32_t hex4() {
    if (pos_ + 4 > s_.size()) fail("short \\u escape");
    char32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<char32_t>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<char32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<char32_t>(c - 'A' + 10);
      else
        fail("bad \\u escape");
    }
    return v;
  }
  char32_t code_point() {
    const char32_t hi = hex4();
    if (hi < 0xD800 || hi > 0xDFFF) return hi;
    if (hi <= 0xDBFF && pos_ + 6 <= s_.size() && s_[pos_] == '\\' && s_[pos_ + 1] == 'u') {
      pos_ += 2;
      const char32_t lo = hex4();
      if (lo >= 0xDC00 && lo <= 0xDFFF) return 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    }
    fail("unpaired surrogate in \\u escape");
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

std::vector<std::pair<std::string, std::string_view>> object_members(std::string_view doc) {
  Cursor c(doc);
  std::vector<std::pair<std::string, std::string_view>> out;
  c.expect('{');
  if (!c.consume('}')) {
    do {
      std::string key = c.string();
      c.expect(':');
      out.emplace_back(std::move(key), c.value());
    } while (c.consume(','));
    c.expect('}');
  }
  if (!c.at_end()) c.fail("trailing characters after the object");
  return out;
}

std::vector<std::pair<std::string, int32_t>> parse_vocab(std::string_view raw) {
  Cursor c(raw);
  std::vector<std::pair<std::string, int32_t>> out;
  c.expect('{');
  if (c.consume('}')) return out;
  do {
    std::string key = c.string();
    c.expect(':');
    const int64_t id = c.integer();
    if (id < 0 || id > (int64_t{1} << 30))
      c.fail("vocab id " + std::to_string(id) + " out of range for \"" + key + "\"");
    out.emplace_back(std::move(key), static_cast<int32_t>(id));
  } while (c.consume(','));
  c.expect('}');
  return out;
}

std::vector<std::pair<std::string, std::string>> parse_merges(std::string_view raw) {
  Cursor c(raw);
  std::vector<std::pair<std::string, std::string>> out;
  c.expect('[');
  if (c.consume(']')) return out;
  do {
    if (c.consume('[')) {
      std::string a = c.string();
      c.expect(',');
      std::string b = c.string();
      c.expect(']');
      out.emplace_back(std::move(a), std::move(b));
    } else {
      const std::string s = c.string();
      const size_t space = s.find(' ', 1);
      if (space == std::string::npos) c.fail("merge " + std::to_string(out.size()) + " \"" + s + "\" is not \"a b\"");
      out.emplace_back(s.substr(0, space), s.substr(space + 1));
    }
  } while (c.consume(','));
  c.expect(']');
  return out;
}

}  // namespace adallm::text::json_scan
