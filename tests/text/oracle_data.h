// Readers for the reference outputs that scripts/oracles.sh writes into ADALLM_ORACLE_DIR (formats in
// tests/oracles/README.md): the tokenizer corpus with Rust `tokenizers` ids, and the chat-template
// conversations with their Python Jinja2 renders. Comparing them with AdaLLM is the tests' job; these
// helpers only load, and say how to regenerate when the files are missing (a missing oracle fails).
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace adallm::test::oracle {

inline const char* kRegenerateHint = "run scripts/test.sh (it generates the oracle outputs)";

inline std::filesystem::path oracle_dir() { return ADALLM_ORACLE_DIR; }

// Parses a JSON Lines file; a missing file or a bad line is a std::runtime_error naming the file and line.
// Json = nlohmann::ordered_json keeps object keys in file order (what Python's dicts do).
template <class Json = nlohmann::json>
std::vector<Json> read_jsonl(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing oracle file " + path.string() + ": " + kRegenerateHint);
  std::vector<Json> rows;
  std::string line;
  for (size_t number = 1; std::getline(in, line); ++number) {
    if (line.empty()) continue;
    try {
      rows.push_back(Json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(path.string() + ":" + std::to_string(number) + ": " + e.what() + "; " +
                               kRegenerateHint);
    }
  }
  if (rows.empty()) throw std::runtime_error("empty oracle file " + path.string() + ": " + kRegenerateHint);
  return rows;
}

inline std::string from_hex(std::string_view hex) {
  auto nibble = [](char c) -> int { return c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10; };
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
  return out;
}

struct TokenizerCase {
  std::string text;                       // UTF-8, exactly what the Rust reference encoded
  std::vector<int32_t> ids;               // encode(text, add_special_tokens=true)
  std::vector<int32_t> ids_plain;         // encode(text, add_special_tokens=false)
  std::string decoded;                    // decode(ids_plain, skip_special_tokens=false)
  std::string decoded_skip;               // decode(ids, skip_special_tokens=true)
  std::optional<std::string> invalid_utf8;  // the raw bytes `text` was lossily decoded from, if any
};

struct TokenizerOracle {
  std::filesystem::path tokenizer_json;
  std::filesystem::path tokenizer_config;
  std::vector<TokenizerCase> cases;
};

// <oracle dir>/tokenizers/<family>.jsonl: a header line with the data file paths, then one line per string.
inline TokenizerOracle load_tokenizer_oracle(const std::string& family) {
  const auto path = oracle_dir() / "tokenizers" / (family + ".jsonl");
  auto rows = read_jsonl(path);
  TokenizerOracle oracle;
  oracle.tokenizer_json = rows[0].at("tokenizer_json").get<std::string>();
  oracle.tokenizer_config = rows[0].at("tokenizer_config").get<std::string>();
  if (!std::filesystem::exists(oracle.tokenizer_json)) {
    throw std::runtime_error("missing " + oracle.tokenizer_json.string() + " named by " + path.string() + ": " +
                             kRegenerateHint);
  }
  for (size_t i = 1; i < rows.size(); ++i) {
    const auto& r = rows[i];
    TokenizerCase c{r.at("text"), r.at("ids"), r.at("ids_plain"), r.at("decoded"), r.at("decoded_skip"), {}};
    if (r.contains("invalid_utf8_hex")) c.invalid_utf8 = from_hex(r["invalid_utf8_hex"].get<std::string>());
    oracle.cases.push_back(std::move(c));
  }
  return oracle;
}

// <oracle dir>/templates/<family>.jsonl: one conversation per line, fields as generate.mjs and
// render_jinja2.py write them (expected_python is the truth; null with expected_python_error when it raised).
// Ordered: tool schemas must print their keys in the order the request had them, as Python does.
inline std::vector<nlohmann::ordered_json> load_template_oracle(const std::string& family) {
  return read_jsonl<nlohmann::ordered_json>(oracle_dir() / "templates" / (family + ".jsonl"));
}

// Code points a terminal shows as nothing or as a neighbour: controls, the unusual spaces, joiners and
// format characters, variation selectors, tags, combining marks, noncharacters.
inline bool invisible(uint32_t cp) {
  return cp < 0x20 || (cp >= 0x7f && cp <= 0xa0) || cp == 0xad || (cp >= 0x300 && cp <= 0x36f) || cp == 0x61c ||
         cp == 0x1680 || (cp >= 0x180b && cp <= 0x180f) || (cp >= 0x2000 && cp <= 0x200f) ||
         (cp >= 0x2028 && cp <= 0x202f) || (cp >= 0x205f && cp <= 0x206f) || cp == 0x3000 ||
         (cp >= 0xfe00 && cp <= 0xfe0f) || cp == 0xfeff || (cp >= 0xfff0 && cp <= 0xffff) ||
         (cp >= 0xe0000 && cp <= 0xe0fff) || cp >= 0xf0000;
}

// A string made readable in a failure message: printable text as is, \n \t \r \" \\, invisible code points
// as \u{XXXX} and bytes that are not UTF-8 as \xNN; cut after max_chars code points.
inline std::string escaped(std::string_view s, size_t max_chars = 240) {
  auto hex = [](uint32_t v, int width) {
    static const char* digits = "0123456789ABCDEF";
    std::string h(static_cast<size_t>(width), '0');
    for (int k = width - 1; k >= 0; --k, v >>= 4) h[static_cast<size_t>(k)] = digits[v & 15];
    return h;
  };
  std::string out = "\"";
  size_t i = 0;
  for (size_t shown = 0; i < s.size() && shown < max_chars; ++shown) {
    const auto b = static_cast<unsigned char>(s[i]);
    const size_t len = b < 0x80 ? 1 : b >= 0xf8 ? 0 : b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
    bool valid = len > 0 && i + len <= s.size();
    uint32_t cp = len == 1 ? b : b & (0x7fu >> len);
    for (size_t k = 1; valid && k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      valid = (c & 0xc0) == 0x80;
      cp = (cp << 6) | (c & 0x3fu);
    }
    if (!valid) {
      out += "\\x" + hex(b, 2);
      ++i;
      continue;
    }
    if (b == '\n') out += "\\n";
    else if (b == '\t') out += "\\t";
    else if (b == '\r') out += "\\r";
    else if (b == '"' || b == '\\') out += std::string("\\") + static_cast<char>(b);
    else if (invisible(cp)) out += "\\u{" + hex(cp, cp > 0xffff ? 5 : 4) + "}";
    else out.append(s.substr(i, len));
    i += len;
  }
  return out + (i < s.size() ? "\"... (" + std::to_string(s.size()) + " bytes)" : "\"");
}

inline std::string ids_string(std::span<const int32_t> ids, size_t max_ids = 64) {
  std::string out = "[";
  for (size_t i = 0; i < ids.size() && i < max_ids; ++i) out += (i ? "," : "") + std::to_string(ids[i]);
  if (ids.size() > max_ids) out += ",... (" + std::to_string(ids.size()) + " ids)";
  return out + "]";
}

}  // namespace adallm::test::oracle
