// Tokenizer against the Rust `tokenizers` crate: the golden vectors of docs/oracles.md §4.3 on the real
// Qwen3 / Llama 3.1 / Gemma3 files, and small synthetic tokenizer.json files (expected ids checked with the
// Rust reference) for added-token flags, ignore_merges, byte fallback, unk fusing and load errors.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "core/error.h"
#include "text/tokenizer.h"
#include "tokenizer_files.h"

namespace adallm::text {
namespace {

using Ids = std::vector<int32_t>;
using nlohmann::json;

const Tokenizer& family(const std::string& name) {
  const Tokenizer* t = test::load_family(name);
  if (!t) throw std::runtime_error("tokenizer file for " + name + " is missing: run scripts/test.sh");
  return *t;
}

const std::string kEmoji =
    "emoji: \xF0\x9F\x91\x8B\xF0\x9F\x8F\xBD \xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9\xE2\x80\x8D\xF0\x9F\x91\xA7"
    "\xE2\x80\x8D\xF0\x9F\x91\xA6 \xF0\x9F\x87\xAF\xF0\x9F\x87\xB5 \xE2\x9D\xA4\xEF\xB8\x8F";
const std::string kCjk = "中文测试：你好，世界！日本語のテキスト。한국어 텍스트";
const std::string kSpaces = "  leading spaces and   runs\t\ttabs\n\n\nnewlines   ";
const std::string kNumbers = "numbers 1234567 3.14159 -42 1,000,000 ١٢٣";

TEST(TokenizerGolden, Qwen3) {
  const Tokenizer& t = family("qwen3");
  EXPECT_EQ(t.encode("Hello, world!", false), (Ids{9707, 11, 1879, 0}));
  EXPECT_EQ(t.encode(kSpaces, false), (Ids{220, 6388, 12621, 323, 256, 8473, 197, 3244, 3435, 1406, 931, 7969, 262}));
  EXPECT_EQ(t.encode("<|im_start|>user\nhi<|im_end|>\n<|endoftext|>", false),
            (Ids{151644, 872, 198, 6023, 151645, 198, 151643}));
  EXPECT_EQ(t.encode("don't I'LL we'Re it's", false), (Ids{15007, 944, 358, 6, 4086, 582, 49427, 432, 594}));
  EXPECT_EQ(t.encode("def f(x):\n    return x**2  # comment\n", false),
            (Ids{750, 282, 2075, 982, 262, 470, 856, 334, 17, 220, 671, 3980, 198}));
  EXPECT_EQ(t.encode(kNumbers, false),
            (Ids{37378, 220, 16, 17, 18, 19, 20, 21, 22, 220, 18, 13,  16,  19, 16,  20, 24,  481, 19,
                 17,    220, 16, 11, 15, 15, 15, 11, 15, 15,  15, 220, 149, 94, 149, 95, 149, 96}));
  EXPECT_EQ(t.encode(kCjk, false), (Ids{104811, 81705, 5122,  108386, 3837,  99489,  6313,  101059, 102819, 15767,
                                        56833,  61803, 70534, 1773,   23573, 124785, 31079, 10764,  44104,  53189}));
  EXPECT_EQ(t.encode(kEmoji, false), (Ids{37523, 25,     61804, 233, 145375, 61804, 101, 378, 235,    145233, 378,
                                          235,   145665, 378,   235, 145988, 11162, 229, 107, 145516, 70470,  30543}));
  EXPECT_EQ(t.encode("Hello", true), (Ids{9707}));
  EXPECT_EQ(t.vocab_size(), 151669);
  EXPECT_EQ(t.token_to_id("<|im_end|>"), 151645);
  EXPECT_TRUE(t.is_special(151645));
  EXPECT_FALSE(t.is_special(9707));
}

TEST(TokenizerGolden, Gemma3) {
  const Tokenizer& t = family("gemma3");
  EXPECT_EQ(t.encode("Hello, world!", false), (Ids{9259, 236764, 1902, 236888}));
  EXPECT_EQ(t.encode(kSpaces, false), (Ids{138, 26016, 9952, 532, 139, 85817, 255969, 39218, 109, 208697, 139}));
  EXPECT_EQ(t.encode(kEmoji, false), (Ids{67906, 236787, 155818, 242713, 236743, 243874, 237243, 243767, 237243, 244814,
                                          237243, 244990, 236743, 247994, 245707, 64813}));
  EXPECT_EQ(t.encode(kCjk, false), (Ids{55041, 30203, 237184, 144626, 236900, 12811, 237354, 94951, 236945, 95830,
                                        236924, 114216, 237430, 236743, 243007, 34718}));
  EXPECT_EQ(t.encode("<start_of_turn>user\nhi<end_of_turn>\n<bos><eos>", false),
            (Ids{105, 2364, 107, 2202, 106, 107, 2, 1}));
  // Byte fallback: U+0000, U+0001 and U+007F are not in the vocab and become <0xNN> tokens.
  EXPECT_EQ(t.encode(std::string("\0\x01\x7f", 3) + "\xEF\xBF\xBD zero-width\xE2\x80\x8Bjoiner", false),
            (Ids{238, 249732, 251541, 238479, 5743, 236772, 2690, 237141, 7013, 497}));
  EXPECT_EQ(t.encode("Hello", true), (Ids{2, 9259}));
}

TEST(TokenizerGolden, Llama31) {
  const Tokenizer& t = family("llama3_1");
  EXPECT_EQ(t.encode("Hello, world!", false), (Ids{9906, 11, 1917, 0}));
  EXPECT_EQ(t.encode(kNumbers, false), (Ids{38478, 220, 4513, 10961, 22,  220, 18,  13,  9335,   2946,   482,
                                            2983,  220, 16,   11,    931, 11,  931, 220, 109610, 110546, 117413}));
  EXPECT_EQ(t.encode("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>", false),
            (Ids{128000, 128006, 882, 128007, 271, 6151, 128009}));
  EXPECT_EQ(t.encode("Hello", true), (Ids{128000, 9906}));
  EXPECT_EQ(t.encode("", true), (Ids{128000}));
}

TEST(TokenizerGolden, InvalidUtf8IsReplacedLikePythonErrorsReplace) {
  for (const char* name : {"qwen3", "llama3_1", "gemma3"}) {
    const Tokenizer& t = family(name);
    EXPECT_EQ(t.encode("a\xFF"
                       "b \xE4\xB8 c\xC0\x80",
                       false),
              t.encode("a\xEF\xBF\xBD"
                       "b \xEF\xBF\xBD c\xEF\xBF\xBD\xEF\xBF\xBD",
                       false))
        << name;
  }
}

TEST(TokenizerGolden, DecodeRoundTripsAndSkipsSpecials) {
  for (const char* name : {"qwen3", "llama3_1", "gemma3"}) {
    const Tokenizer& t = family(name);
    for (const std::string& s : {std::string("Hello, world!"), kSpaces, kCjk, kEmoji, kNumbers})
      EXPECT_EQ(t.decode(t.encode(s, false)), s) << name;
  }
  const Tokenizer& q = family("qwen3");
  const Ids chat = q.encode("<|im_start|>user\nhi<|im_end|>", false);
  EXPECT_EQ(q.decode(chat, false), "<|im_start|>user\nhi<|im_end|>");
  EXPECT_EQ(q.decode(chat, true), "user\nhi");
  const Tokenizer& g = family("gemma3");
  EXPECT_EQ(g.decode(g.encode("Hello world", true), false), "<bos>Hello world");
  EXPECT_EQ(g.decode(g.encode("Hello world", true), true), "Hello world");
  EXPECT_EQ(g.decode(Ids{238, 249732, 251541}), std::string("\0\x01\x7f", 3));
  // A byte-fallback run that is not valid UTF-8 decodes to one U+FFFD per byte token (Rust ByteFallback).
  const auto e4 = g.token_to_id("<0xE4>"), b8 = g.token_to_id("<0xB8>");
  ASSERT_TRUE(e4 && b8);
  EXPECT_EQ(g.decode(Ids{*e4, *b8, 9259}), "\xEF\xBF\xBD\xEF\xBF\xBDHello");
  // Byte-level: an incomplete sequence decodes like from_utf8_lossy.
  const Ids zh = q.encode("中", false);
  ASSERT_GT(zh.size(), 0u);
  EXPECT_EQ(q.decode(Ids{q.token_to_id("\xC3\xA4").value()}), "\xEF\xBF\xBD");  // "ä" = byte 0xE4 alone
}

TEST(TokenizerGolden, ConcurrentEncodesAgreeAndLongWordsRoundTrip) {
  const Tokenizer& t = family("qwen3");
  const std::vector<std::string> texts = {kSpaces, kCjk, kEmoji, kNumbers, "Hello, world!"};
  std::vector<Ids> expected;
  for (const auto& s : texts) expected.push_back(t.encode(s, false));
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&] {
      for (int round = 0; round < 50; ++round)
        for (size_t i = 0; i < texts.size(); ++i)
          if (t.encode(texts[i], false) != expected[i]) ++mismatches;
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  const std::string long_word(20000, 'a');  // one pre-token: exercises the merge queue, not the cache
  EXPECT_EQ(t.decode(t.encode(long_word, false)), long_word);
}

// --- synthetic files -------------------------------------------------------------------------------------

std::filesystem::path write_json(const std::string& name, const json& j) {
  const auto path = std::filesystem::path(::testing::TempDir()) / ("adallm_tok_" + name + ".json");
  std::ofstream(path) << j.dump(1);
  return path;
}

json added(int id, const std::string& content, bool special, bool lstrip, bool rstrip, bool single_word,
           bool normalized) {
  return {{"id", id},         {"content", content},         {"special", special},      {"lstrip", lstrip},
          {"rstrip", rstrip}, {"single_word", single_word}, {"normalized", normalized}};
}

json synthetic() {
  json j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  // Ids follow the model vocab (11 entries), as the Rust crate assigns them whatever the file says.
  j["added_tokens"] = json::array(
      {added(11, "<s>", true, false, false, false, false), added(12, "[L]", false, true, false, false, false),
       added(13, "[R]", false, false, true, false, false), added(14, "tok", false, false, false, true, false),
       added(15, "xB", false, false, false, false, true), added(16, "<s", false, false, false, false, false)});
  j["normalizer"] = {{"type", "Replace"}, {"pattern", {{"String", "B"}}}, {"content", "b"}};
  j["pre_tokenizer"] = nullptr;
  j["post_processor"] = nullptr;
  j["decoder"] = nullptr;
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab",
                 {{"a", 0},
                  {"b", 1},
                  {" ", 2},
                  {"ab", 3},
                  {"t", 4},
                  {"o", 5},
                  {"k", 6},
                  {"x", 7},
                  {"c", 8},
                  {"_", 9},
                  {"abc", 10}}},
                {"merges", json::array({"a b"})}};
  return j;
}

TEST(TokenizerSynthetic, AddedTokenFlags) {
  const auto t = Tokenizer::load(write_json("added", synthetic()));
  EXPECT_EQ(t->encode("a <s>b", false), (Ids{0, 2, 11, 1}));
  EXPECT_EQ(t->encode("<s<s>", false), (Ids{16, 11}));       // longest match first
  EXPECT_EQ(t->encode("ab  [L]c", false), (Ids{3, 12, 8}));  // lstrip eats the spaces before
  EXPECT_EQ(t->encode("[R]  c", false), (Ids{13, 8}));       // rstrip eats the spaces after
  EXPECT_EQ(t->encode("a tok c", false), (Ids{0, 2, 14, 2, 8}));
  EXPECT_EQ(t->encode("atok", false), (Ids{0, 4, 5, 6}));  // single_word: not inside a word
  EXPECT_EQ(t->encode("tok_", false), (Ids{4, 5, 6, 9}));  // '_' is a word character
  EXPECT_EQ(t->encode("xB", false), (Ids{15}));            // normalized=true: matched after B → b
  EXPECT_EQ(t->encode("xb", false), (Ids{15}));
  EXPECT_EQ(t->encode("aB", false), (Ids{3}));
  EXPECT_EQ(t->decode(Ids{0, 11, 3}, false), "a <s> ab");  // no decoder: tokens joined by spaces
  EXPECT_EQ(t->decode(Ids{0, 11, 3}, true), "a ab");
  EXPECT_EQ(t->vocab_size(), 17);
  EXPECT_TRUE(t->is_special(11));
  EXPECT_FALSE(t->is_special(12));
}

TEST(TokenizerSynthetic, IgnoreMerges) {
  json j = synthetic();
  EXPECT_EQ(Tokenizer::load(write_json("merges", j))->encode("abc", false), (Ids{3, 8}));
  j["model"]["ignore_merges"] = true;
  EXPECT_EQ(Tokenizer::load(write_json("ignore", j))->encode("abc", false), (Ids{10}));
  j["model"]["merges"] = json::array({json::array({"a", "b"})});  // pair form of the same merge
  EXPECT_EQ(Tokenizer::load(write_json("pairs", j))->encode("abca", false), (Ids{3, 8, 0}));
}

TEST(TokenizerSynthetic, ByteFallbackAndUnk) {
  json j = synthetic();
  j["added_tokens"] = json::array();
  j["normalizer"] = nullptr;
  j["model"]["unk_token"] = "<unk>";
  j["model"]["vocab"] = {{"<unk>", 0}, {"a", 1}, {"<0xC3>", 2}, {"<0xA9>", 3}};
  j["model"]["merges"] = json::array();
  j["decoder"] = {{"type", "Sequence"}, {"decoders", json::array({{{"type", "ByteFallback"}}, {{"type", "Fuse"}}})}};
  EXPECT_EQ(Tokenizer::load(write_json("unk", j))->encode("xya", false), (Ids{0, 0, 1}));
  j["model"]["fuse_unk"] = true;
  EXPECT_EQ(Tokenizer::load(write_json("fuse", j))->encode("xya", false), (Ids{0, 1}));
  j["model"]["byte_fallback"] = true;
  const auto t = Tokenizer::load(write_json("fallback", j));
  EXPECT_EQ(t->encode("\xC3\xA9"
                      "a\xC3\xA9",
                      false),
            (Ids{2, 3, 1, 2, 3}));              // é has its bytes in the vocab
  EXPECT_EQ(t->encode("xy", false), (Ids{0}));  // the others fall to one fused unk
  EXPECT_EQ(t->decode(Ids{2, 3, 1}),
            "\xC3\xA9"
            "a");
  EXPECT_EQ(t->decode(Ids{2, 1}),
            "\xEF\xBF\xBD"
            "a");
}

void expect_load_error(const json& j, const std::string& name, const std::vector<std::string>& substrings) {
  const auto path = write_json(name, j);
  try {
    Tokenizer::load(path);
    ADD_FAILURE() << "expected an error for " << name;
  } catch (const Error& e) {
    const std::string what = e.what();
    for (const auto& s : substrings) EXPECT_NE(what.find(s), std::string::npos) << what;
    EXPECT_NE(what.find(path.string()), std::string::npos) << what;
  }
}

TEST(TokenizerSynthetic, UnsupportedComponentsAreErrorsNamingPathAndFile) {
  json j = synthetic();
  j["normalizer"] = {{"type", "NFKC"}};
  expect_load_error(j, "nfkc", {"normalizer.type", "normalizer \"NFKC\" is not supported"});
  j = synthetic();
  j["pre_tokenizer"] = {{"type", "Sequence"},
                        {"pretokenizers", json::array({{{"type", "ByteLevel"}}, {{"type", "Metaspace"}}})}};
  expect_load_error(j, "metaspace", {"pre_tokenizer.pretokenizers[1].type", "\"Metaspace\" is not supported"});
  j = synthetic();
  j["model"]["dropout"] = 0.1;
  expect_load_error(j, "dropout", {"model.dropout", "not supported"});
  j = synthetic();
  j["model"]["type"] = "WordPiece";
  expect_load_error(j, "wordpiece", {"model.type", "\"WordPiece\" is not supported"});
  j = synthetic();
  j["model"]["merges"] = json::array({"a zz"});
  expect_load_error(j, "badmerge", {"model.merges[0]", "missing from the vocab"});
  j = synthetic();
  j["decoder"] = {{"type", "CTC"}};
  expect_load_error(j, "ctc", {"decoder.type", "\"CTC\" is not supported"});
  expect_load_error(json::array({1, 2}), "notobject", {"top level"});
  try {
    Tokenizer::load("/nonexistent/tokenizer.json");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/tokenizer.json"), std::string::npos);
  }
}

}  // namespace
}  // namespace adallm::text
