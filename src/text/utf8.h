// UTF-8 helpers for the tokenizer: code point decoding, validation and the lossy repair that makes any byte
// string valid the way Rust's String::from_utf8_lossy (and Python's errors="replace") do: each maximal
// invalid subpart becomes one U+FFFD. Unicode properties beyond this are left to PCRE2 and unicode_nfc.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace adallm::text::utf8 {

inline constexpr char32_t kReplacement = 0xFFFD;

// Length of the valid sequence at s[pos] (1-4), or 0 when the bytes there do not start a valid one.
size_t valid_sequence_length(std::string_view s, size_t pos);
// Decodes the code point at s[pos] of a VALID string and advances pos.
char32_t next(std::string_view s, size_t& pos);
void append(std::string& out, char32_t cp);
bool is_valid(std::string_view s);
// Replaces every maximal invalid subpart with U+FFFD (WHATWG / Unicode "substitution of maximal subparts").
std::string to_valid_lossy(std::string_view s);
// True when s ends with U+FFFD, the mark of a possibly incomplete byte sequence in decoded text.
bool ends_with_replacement(std::string_view s);
// Rust char::is_whitespace (the Unicode White_Space property).
bool is_whitespace(char32_t cp);

}  // namespace adallm::text::utf8
