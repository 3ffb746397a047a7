// Tokenizer encode throughput: encodes a text file in 4 KiB chunks (split at UTF-8 boundaries), three
// passes, single thread, and prints MB/s per pass. Run through bench/tokenize_bench.sh, which times the
// Rust reference on the same file in the same run.
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "text/tokenizer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: tokenize_bench TOKENIZER_JSON TEXT_FILE\n");
    return 2;
  }
  try {
    const auto tokenizer = adallm::text::Tokenizer::load(argv[1]);
    std::ifstream in(argv[2], std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    const std::string text = s.str();
    std::vector<std::string> chunks;
    for (size_t pos = 0; pos < text.size();) {
      size_t end = std::min(text.size(), pos + 4096);
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
      chunks.push_back(text.substr(pos, end - pos));
      pos = end;
    }
    for (int pass = 1; pass <= 3; ++pass) {
      size_t tokens = 0;
      const auto start = std::chrono::steady_clock::now();
      for (const std::string& c : chunks) tokens += tokenizer->encode(c, false).size();
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("adallm pass %d: %.2f MB in %.3f s = %.2f MB/s, %zu tokens\n", pass, text.size() / 1e6, seconds,
                  text.size() / 1e6 / seconds, tokens);
    }
  } catch (const adallm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
