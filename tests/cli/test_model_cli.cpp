// The model-running commands end to end through the adallm binary: `logits` against transformers' logits
// (fixtures and the trained demo model), `run` one-shot and interactive (reproducibility, prompt echo,
// stats line, KV reuse across turns checked against an uncached run, greedy text against transformers'
// greedy samples), `perplexity` against transformers' held-out perplexity, and their error lines. The
// numerics of single ops are tests/backend's and tests/model's; here only what a user of the binary sees.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/cli_runner.h"
#include "io/npy.h"
#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "logits_compare.h"
#include "test_util.h"

namespace adallm {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;
using test::quote;
using test::Result;
using test::run;
using test::TempDir;
using test::compare_logits;
using test::read_i64;

const fs::path kFixtures = test::fixtures_dir();
const fs::path kDemo = test::demo_model_dir();

// A shell word holding any text: single quotes, each ' written as '\''.
std::string shell_word(const std::string& text) {
  std::string w = "'";
  for (char c : text) w += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return w + "'";
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A failure ends with exactly one line "error: ..." and exit code 1; the only other lines allowed before it
// are the loader's "[info]" log lines (the model is loaded before the token ids can be checked against
// its vocabulary).
void expect_error_line(const Result& r, const std::string& needle) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  const std::vector<std::string> lines = lines_of(r.err);
  ASSERT_FALSE(lines.empty()) << "nothing on stderr";
  EXPECT_EQ(lines.back().rfind("error: ", 0), 0u) << r.err;
  EXPECT_NE(lines.back().find(needle), std::string::npos) << r.err << "\nexpected to contain: " << needle;
  for (size_t i = 0; i + 1 < lines.size(); ++i) EXPECT_EQ(lines[i].rfind("[info] ", 0), 0u) << r.err;
  EXPECT_TRUE(r.err.empty() || r.err.back() == '\n') << r.err;
}

std::string join_ids(const std::vector<int64_t>& ids) {
  std::string s;
  for (int64_t id : ids) s += (s.empty() ? "" : ",") + std::to_string(id);
  return s;
}

// Runs `adallm logits` on `ids` and reads the .npy back, checking its shape.
std::vector<float> logits_of(const fs::path& model, const std::vector<int64_t>& ids, const std::string& kv,
                             int64_t vocab) {
  TempDir dir;
  const fs::path out = dir / "logits.npy";
  const Result r = run("logits " + quote(model) + " --token-ids " + join_ids(ids) + " --kv-cache-dtype " + kv +
                       " --out " + quote(out));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return {};
  EXPECT_NE(r.err.find("float32 [" + std::to_string(ids.size()) + ", " + std::to_string(vocab) + "]"),
            std::string::npos)
      << r.err;
  const io::NpyArray a = io::read_npy_f32(out);
  EXPECT_EQ(a.shape, (std::vector<int64_t>{static_cast<int64_t>(ids.size()), vocab}));
  return a.data;
}

// ---- logits ----------------------------------------------------------------------------------------------

TEST(CliLogits, FixturesMatchTransformers) {
  for (const char* arch : {"llama", "gemma3"}) {
    SCOPED_TRACE(arch);
    const io::Checkpoint ref = io::Checkpoint::open(kFixtures / arch / "logits.safetensors");
    const std::vector<int64_t> ids = read_i64(ref, "tokens0");
    ASSERT_EQ(ids.size(), 16u);
    const std::vector<float> want = io::tensor_to_f32(ref.get("bf16.tokens0"));
    const std::vector<float> got = logits_of(kFixtures / arch / "bf16", ids, "bf16", 256);
    ASSERT_EQ(got.size(), want.size());
    const test::LogitsAgreement a = compare_logits(got, want, 256);
    std::printf("[cli logits] %-7s bf16 kv=bf16 NMSE %.3e top-1 %.4f\n", arch, a.nmse, a.top1);
    EXPECT_LE(a.nmse, 2e-3);
    EXPECT_GE(a.top1, 0.95);
  }
}

TEST(CliLogits, DemoModelMatchesTransformers) {
  const io::Checkpoint ref = io::Checkpoint::open(kFixtures / "demo" / "heldout_logits.safetensors");
  const std::vector<int64_t> ids = read_i64(ref, "tokens");
  ASSERT_EQ(ids.size(), 64u);
  const std::vector<float> want = io::tensor_to_f32(ref.get("logits_bf16_weights"));

  const std::vector<float> bf16 = logits_of(kDemo / "bf16", ids, "bf16", 4096);
  ASSERT_EQ(bf16.size(), want.size());
  const test::LogitsAgreement a = compare_logits(bf16, want, 4096);
  std::printf("[cli logits] demo bf16  kv=bf16 NMSE %.3e top-1 %.4f\n", a.nmse, a.top1);
  EXPECT_LE(a.nmse, 2e-3);
  EXPECT_GE(a.top1, 0.95);

  // Quantized weights and cache move the logits; this only guards against gross breakage. Measured: NVFP4
  // weights alone agree on 52 of the 64 top-1s (0.81), the FP8 cache costs one more (51, 0.797), NMSE 8.5e-3;
  // the perplexity test below is the real measure of what quantization costs. A broken model agrees on ~0.
  const std::vector<float> nvfp4 = logits_of(kDemo / "nvfp4", ids, "fp8", 4096);
  ASSERT_EQ(nvfp4.size(), want.size());
  const test::LogitsAgreement q = compare_logits(nvfp4, want, 4096);
  std::printf("[cli logits] demo nvfp4 kv=fp8  NMSE %.3e top-1 %.4f (vs the BF16 weights' logits)\n", q.nmse, q.top1);
  EXPECT_GE(q.top1, 0.75);
  EXPECT_LE(q.nmse, 3e-2);
}

TEST(CliLogits, ErrorsAreOneLine) {
  TempDir dir;
  const fs::path out = dir / "x.npy";
  const std::string model = quote(kFixtures / "llama" / "bf16");
  const std::string tail = " --out " + quote(out);

  const Result range = run("logits " + model + " --token-ids 1,256" + tail);
  expect_error_line(range, "id 256");
  EXPECT_NE(range.err.find("vocabulary [0, 256)"), std::string::npos) << range.err;
  expect_error_line(run("logits " + model + " --token-ids 1,-3" + tail), "id -3");
  expect_error_line(run("logits " + model + " --token-ids 1,x" + tail), "\"x\" is not an integer");
  expect_error_line(run("logits " + model + " --token-ids 1,2.5" + tail), "\"2.5\" is not an integer");
  expect_error_line(run("logits " + model + " --token-ids 1,,2" + tail), "\"\" is not an integer");

  const fs::path missing = dir / "no-such-model";
  expect_error_line(run("logits " + quote(missing) + " --token-ids 1" + tail), missing.string());

  // Whatever the build (no CUDA, no GPU, or a CUDA backend that cannot run models yet), never a quiet CPU run.
  const Result cuda = run("logits " + model + " --token-ids 1 --device cuda" + tail);
  expect_error_line(cuda, "--device cuda");
  EXPECT_TRUE(cuda.err.find("without CUDA") != std::string::npos || cuda.err.find("no CUDA GPU") != std::string::npos ||
              cuda.err.find("cannot run models yet") != std::string::npos)
      << cuda.err;

  // Rejected by the command-line parser (CLI11) before any model is loaded.
  const Result kv = run("logits " + model + " --token-ids 1 --kv-cache-dtype fp16" + tail);
  expect_error_line(kv, "--kv-cache-dtype");  // a usage error is one line and exit code 1 too
  EXPECT_NE(kv.err.find("fp16"), std::string::npos) << kv.err;

  EXPECT_FALSE(fs::exists(out)) << "a failed command left an output file";
}

// ---- run -------------------------------------------------------------------------------------------------

struct Stats {
  int64_t tokens = -1;
  std::string finish;
  int64_t prompt = -1;
  int64_t cached = -1;
};

// Every "[N tokens, reason; prompt P tokens (K cached) ..." line of stderr.
std::vector<Stats> stats_lines(const std::string& err) {
  static const std::regex re(R"(^\[(\d+) tokens, (\w+); prompt (\d+) tokens \((\d+) cached\))");
  std::vector<Stats> all;
  for (const std::string& line : lines_of(err)) {
    std::smatch m;
    if (std::regex_search(line, m, re)) {
      all.push_back({std::stoll(m[1]), m[2], std::stoll(m[3]), std::stoll(m[4])});
    }
  }
  return all;
}

const std::string kFib = "def fibonacci(";

Result run_demo(const std::string& form, const std::string& options) {
  return run("run " + quote(kDemo / form) + " " + options);
}

TEST(CliRun, OneShotIsReproducibleAndBounded) {
  const std::string prompt = shell_word(kFib);
  const Result a = run_demo("nvfp4", prompt + " --seed 7 --max-tokens 40");
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_FALSE(a.out.empty());
  EXPECT_NE(a.out.find_first_not_of(" \n"), std::string::npos) << "only whitespace: " << a.out;
  const std::vector<Stats> s = stats_lines(a.err);
  ASSERT_EQ(s.size(), 1u) << a.err;
  EXPECT_GE(s[0].tokens, 1);
  EXPECT_LE(s[0].tokens, 40);
  EXPECT_GT(s[0].prompt, 0);

  const Result again = run_demo("nvfp4", prompt + " --seed 7 --max-tokens 40");
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_EQ(again.out, a.out);

  const Result t7 = run_demo("nvfp4", prompt + " --seed 7 --temperature 1 --max-tokens 40");
  const Result t8 = run_demo("nvfp4", prompt + " --seed 8 --temperature 1 --max-tokens 40");
  ASSERT_EQ(t7.exit_code, 0) << t7.err;
  ASSERT_EQ(t8.exit_code, 0) << t8.err;
  EXPECT_NE(t7.out, t8.out) << "seeds 7 and 8 sampled the same 40 tokens at temperature 1";

  const Result g1 = run_demo("nvfp4", prompt + " --temperature 0 --max-tokens 40");
  const Result g2 = run_demo("nvfp4", prompt + " --temperature 0 --max-tokens 40 --seed 99");
  ASSERT_EQ(g1.exit_code, 0) << g1.err;
  ASSERT_EQ(g2.exit_code, 0) << g2.err;
  EXPECT_EQ(g1.out, g2.out) << "greedy decoding depends on the seed";

  const Result five = run_demo("nvfp4", prompt + " --max-tokens 5 --ignore-eos --seed 3");
  ASSERT_EQ(five.exit_code, 0) << five.err;
  EXPECT_NE(five.err.find("[5 tokens, length"), std::string::npos) << five.err;
}

TEST(CliRun, CompletionModeEchoesThePrompt) {
  const Result r = run_demo("nvfp4", shell_word(kFib) + " --no-chat --seed 7 --max-tokens 20");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out.rfind(kFib, 0), 0u) << r.out;
  EXPECT_GT(r.out.size(), kFib.size() + 1) << "nothing generated: " << r.out;
  const std::vector<Stats> s = stats_lines(r.err);
  ASSERT_EQ(s.size(), 1u) << r.err;
  EXPECT_EQ(s[0].tokens, 20);
}

// run goes through the server's serving layer: --stop ends the answer before the text as the API's `stop`
// does, and --max-tokens past what the context has left is cut to it (finish reason length), not refused.
TEST(CliRun, StopStringsAndTheContextEndAnswersAsTheServerDoes) {
  const std::string options = " --no-chat --temperature 0 --max-tokens 40 --ignore-eos";
  const Result full = run_demo("nvfp4", shell_word(kFib) + options);
  ASSERT_EQ(full.exit_code, 0) << full.err;
  ASSERT_EQ(full.out.rfind(kFib, 0), 0u) << full.out;
  const std::string generated = full.out.substr(kFib.size(), full.out.size() - kFib.size() - 1);
  ASSERT_GT(generated.size(), 12u) << generated;
  const std::string stop = generated.substr(8, 3);
  const Result cut = run_demo("nvfp4", "--stop " + shell_word(stop) + " " + shell_word(kFib) + options);
  ASSERT_EQ(cut.exit_code, 0) << cut.err;
  EXPECT_EQ(cut.out, kFib + generated.substr(0, generated.find(stop)) + "\n");
  std::vector<Stats> s = stats_lines(cut.err);
  ASSERT_EQ(s.size(), 1u) << cut.err;
  EXPECT_EQ(s[0].finish, "stop");
  EXPECT_LT(s[0].tokens, 40);

  const Result context = run_demo("nvfp4", shell_word(kFib) + " --no-chat --max-tokens 100 --ignore-eos --max-context 32");
  ASSERT_EQ(context.exit_code, 0) << context.err;
  s = stats_lines(context.err);
  ASSERT_EQ(s.size(), 1u) << context.err;
  EXPECT_EQ(s[0].finish, "length");
  EXPECT_EQ(s[0].prompt + s[0].tokens, 32) << context.err;
}

// Greedy decoding of the BF16 demo with a BF16 cache reproduces transformers' greedy samples
// (demo_train.json "greedy_samples", generated on the GPU at training time), in completion and chat mode.
TEST(CliRun, GreedyTextMatchesTransformers) {
  std::ifstream in(kDemo / "demo_train.json");
  const json train = json::parse(in);
  const std::string completion = train["greedy_samples"][kFib];
  const std::string chat =
      train["greedy_samples"]["<|im_start|>user\ndef fibonacci(n):<|im_end|>\n<|im_start|>assistant\n"];

  const Result c =
      run_demo("bf16", shell_word(kFib) + " --no-chat --temperature 0 --max-tokens 40 --kv-cache-dtype bf16");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  ASSERT_EQ(c.out.rfind(kFib, 0), 0u) << c.out;
  ASSERT_EQ(c.out.back(), '\n');
  const std::string generated = c.out.substr(kFib.size(), c.out.size() - kFib.size() - 1);
  EXPECT_GT(generated.size(), 40u) << generated;
  EXPECT_EQ(completion.rfind(generated, 0), 0u) << "adallm:       " << generated << "\ntransformers: " << completion;

  const Result t =
      run_demo("bf16", shell_word("def fibonacci(n):") + " --temperature 0 --max-tokens 100 --kv-cache-dtype bf16");
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const std::string eos = "<|im_end|>";
  ASSERT_GT(chat.size(), eos.size());
  ASSERT_EQ(chat.substr(chat.size() - eos.size()), eos);
  EXPECT_EQ(t.out, chat.substr(0, chat.size() - eos.size()) + "\n");
  const std::vector<Stats> s = stats_lines(t.err);
  ASSERT_EQ(s.size(), 1u) << t.err;
  EXPECT_EQ(s[0].finish, "stop") << t.err;
}

// stdout of an interactive chat session: "> " answer "\n" per turn, then "> " before end of input.
std::vector<std::string> answers_of(const std::string& out) {
  std::vector<std::string> answers;
  EXPECT_EQ(out.rfind("> ", 0), 0u) << out;
  size_t pos = 2;
  while (true) {
    const size_t next = out.find("\n> ", pos);
    if (next == std::string::npos) break;
    answers.push_back(out.substr(pos, next - pos));
    pos = next + 3;
  }
  EXPECT_EQ(pos, out.size()) << "unexpected text after the last prompt: " << out.substr(pos);
  return answers;
}

TEST(CliRun, InteractiveSessionReusesTheHistory) {
  TempDir dir;
  const fs::path input = dir / "input.txt";
  const std::string first = "def add(a, b):", second = "class Stack:";
  std::ofstream(input) << first << "\n" << second << "\n\\q\n";

  const Result r = run_demo("nvfp4", "--seed 1 --max-tokens 20 < " + quote(input));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<Stats> s = stats_lines(r.err);
  ASSERT_EQ(s.size(), 2u) << r.err;
  EXPECT_EQ(s[0].cached, 0);
  EXPECT_GT(s[1].cached, 0) << "the second turn re-prefilled the whole history: " << r.err;
  EXPECT_LT(s[1].cached, s[1].prompt);
  EXPECT_GT(s[1].prompt, s[0].prompt + s[0].tokens);
  EXPECT_EQ(answers_of(r.out).size(), 2u) << r.out;

  // The second answer with the cached history equals a fresh run of the whole rendered conversation
  // (greedy, BF16 weights and cache): the reused KV is the KV of that history.
  const Result g = run_demo("bf16", "--temperature 0 --max-tokens 20 --kv-cache-dtype bf16 < " + quote(input));
  ASSERT_EQ(g.exit_code, 0) << g.err;
  s = stats_lines(g.err);
  ASSERT_EQ(s.size(), 2u) << g.err;
  EXPECT_GT(s[1].cached, 0) << g.err;
  const std::vector<std::string> answers = answers_of(g.out);
  ASSERT_EQ(answers.size(), 2u) << g.out;
  // The demo's ChatML template (tokenizer_config.json).
  const auto turn = [](const std::string& role, const std::string& content) {
    return "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
  };
  const std::string conversation =
      turn("user", first) + turn("assistant", answers[0]) + turn("user", second) + "<|im_start|>assistant\n";
  const Result fresh =
      run_demo("bf16", shell_word(conversation) + " --no-chat --temperature 0 --max-tokens 20 --kv-cache-dtype bf16");
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  const std::vector<Stats> f = stats_lines(fresh.err);
  ASSERT_EQ(f.size(), 1u) << fresh.err;
  EXPECT_EQ(f[0].prompt, s[1].prompt) << "the rendered conversation tokenizes differently";
  EXPECT_EQ(f[0].cached, 0);
  ASSERT_EQ(fresh.out.rfind(conversation, 0), 0u) << fresh.out;
  EXPECT_EQ(fresh.out.substr(conversation.size()), answers[1] + "\n");
}

TEST(CliRun, ModelWithoutTokenizerOrTemplateFailsClearly) {
  const fs::path fixture = kFixtures / "llama" / "bf16";  // weights only: no tokenizer.json
  expect_error_line(run("run " + quote(fixture) + " hello"), "tokenizer.json");
  expect_error_line(run("run " + quote(fixture) + " --chat hello"), "tokenizer.json");
  expect_error_line(run("run " + quote(fixture) + " < /dev/null"), "tokenizer.json");

  // A tokenizer but no chat template: --chat is refused, the default continues the text.
  TempDir dir;
  for (const char* name : {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"}) {
    fs::create_symlink(fs::absolute(kDemo / "bf16" / name), dir / name);
  }
  std::ifstream in(kDemo / "bf16" / "tokenizer_config.json");
  json config = json::parse(in);
  ASSERT_TRUE(config.contains("chat_template"));
  config.erase("chat_template");
  std::ofstream(dir / "tokenizer_config.json") << config.dump(2);
  expect_error_line(run("run " + quote(dir.path()) + " --chat hello"), "no chat template");
  const Result plain = run("run " + quote(dir.path()) + " " + shell_word(kFib) + " --max-tokens 5 --seed 1");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out.rfind(kFib, 0), 0u) << plain.out;
}

// ---- perplexity ------------------------------------------------------------------------------------------

json perplexity(const std::string& form, const std::string& kv) {
  const Result r = run("perplexity " + quote(kDemo / form) + " --file " + quote(kDemo / "heldout.txt") +
                       " --context 512 --stride 512 --json --kv-cache-dtype " + kv);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  if (r.exit_code != 0) return json::object();
  const json j = json::parse(r.out);
  EXPECT_EQ(j["kv_cache_dtype"], kv);
  EXPECT_EQ(j["context"], 512);
  EXPECT_EQ(j["stride"], 512);
  return j;
}

// The issue's acceptance criteria, on the demo model's held-out text (windows of 512, stride 512, as
// transformers scored it at training time).
TEST(CliPerplexity, DemoMatchesTransformersAndQuantizationCostsLittle) {
  std::ifstream in(kDemo / "demo_train.json");
  const json train = json::parse(in);
  const double reference = train["heldout_ppl_bf16_weights"].get<double>();

  const json bf16 = perplexity("bf16", "bf16");
  const json nvfp4 = perplexity("nvfp4", "bf16");
  const json nvfp4_fp8 = perplexity("nvfp4", "fp8");
  ASSERT_TRUE(bf16.contains("perplexity") && nvfp4.contains("perplexity") && nvfp4_fp8.contains("perplexity"));
  const double p_bf16 = bf16["perplexity"], p_nvfp4 = nvfp4["perplexity"], p_fp8 = nvfp4_fp8["perplexity"];
  std::printf(
      "[cli perplexity] transformers bf16 %.4f | adallm bf16/kv bf16 %.4f, nvfp4/kv bf16 %.4f (x%.4f), "
      "nvfp4/kv fp8 %.4f (x%.4f)\n",
      reference, p_bf16, p_nvfp4, p_nvfp4 / p_bf16, p_fp8, p_fp8 / p_nvfp4);

  // Every token but the first of each 512-token window is scored once, as transformers counts them.
  const int64_t tokens = bf16["tokens"], windows = bf16["windows"];
  EXPECT_EQ(tokens, train["heldout_tokens"].get<int64_t>());
  EXPECT_EQ(windows, (tokens + 511) / 512);
  EXPECT_EQ(bf16["tokens_scored"].get<int64_t>(), tokens - windows);

  EXPECT_NEAR(p_bf16, reference, 0.005 * reference);
  EXPECT_LE(p_nvfp4, 1.10 * p_bf16);
  EXPECT_LE(p_fp8, 1.01 * p_nvfp4);
}

// --linear-path w4a8 emulates FP8 activations on NVFP4 layers: other logits than w4a16 (whose own
// accuracy the tests above pin down), and a clear refusal on a checkpoint without NVFP4 layers.
TEST(CliLinearPath, W4a8ChangesNvfp4LogitsAndRefusesDenseCheckpoints) {
  TempDir dir;
  const std::string model = quote(kFixtures / "llama" / "nvfp4-modelopt");
  std::string bytes[2];
  int i = 0;
  for (const char* path : {"w4a16", "w4a8"}) {
    const fs::path out = dir / (std::string(path) + ".npy");
    const Result r = run("logits " + model + " --token-ids 1,5,9,33,2 --linear-path " + path + " --out " + quote(out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::ifstream in(out, std::ios::binary);
    bytes[i++] = std::string(std::istreambuf_iterator<char>(in), {});
  }
  ASSERT_FALSE(bytes[0].empty());
  EXPECT_EQ(bytes[0].size(), bytes[1].size());
  EXPECT_NE(bytes[0], bytes[1]);
  expect_error_line(run("logits " + quote(kFixtures / "llama" / "bf16") + " --token-ids 1 --linear-path w4a8 --out " +
                        quote(dir / "x.npy")),
                    "has no NVFP4 weights");
  expect_error_line(run("logits " + model + " --token-ids 1 --linear-path w4a4 --out " + quote(dir / "x.npy")),
                    "w4a4");
}

TEST(CliPerplexity, MissingFile) {
  TempDir dir;
  const fs::path missing = dir / "missing.txt";
  expect_error_line(run("perplexity " + quote(kDemo / "bf16") + " --file " + quote(missing)), missing.string());
}

// `adallm bench` through the engine on the demo model: one row per batch size in the table and the JSON,
// every request's tokens counted, the roofline's bytes per step growing with the batch's KV.
TEST(CliBench, ReportsEachBatchSizeInTheTableAndTheJson) {
  TempDir tmp;
  const Result r = run("bench " + quote(kDemo / "nvfp4") + " --batch 1,3 --input-len 20 --output-len 6 --json " +
                       quote(tmp / "bench.json"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("copy bandwidth"), std::string::npos) << r.out;
  const nlohmann::json j = nlohmann::json::parse(test::slurp(tmp / "bench.json"));
  EXPECT_EQ(j["input_len"], 20);
  EXPECT_EQ(j["output_len"], 6);
  EXPECT_GT(j["copy_bandwidth_bytes_per_s"].get<double>(), 0.0);
  ASSERT_EQ(j["results"].size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const nlohmann::json& row = j["results"][i];
    EXPECT_EQ(row["batch"], i == 0 ? 1 : 3);
    EXPECT_GT(row["tokens_per_s"].get<double>(), 0.0);
    EXPECT_GT(row["decode_ms_per_step"].get<double>(), 0.0);
    EXPECT_GT(row["ttft_ms_mean"].get<double>(), 0.0);
    EXPECT_GE(row["ttft_ms_max"].get<double>(), row["ttft_ms_mean"].get<double>());
    EXPECT_GT(row["roofline_share"].get<double>(), 0.0);
    EXPECT_GE(row["steps"].get<int64_t>(), 6);  // at least one step per generated token
  }
  EXPECT_GT(j["results"][1]["roofline_bytes_per_step"].get<double>(), j["results"][0]["roofline_bytes_per_step"].get<double>());

  const Result both = run("bench " + quote(kDemo / "nvfp4") + " --synthetic qwen3-8b");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.err.find("not both"), std::string::npos) << both.err;
  const Result none = run("bench --batch 2");
  EXPECT_NE(none.exit_code, 0);
  const Result zero = run("bench " + quote(kDemo / "nvfp4") + " --batch 0");
  EXPECT_NE(zero.exit_code, 0);
  EXPECT_NE(zero.err.find("at least 1"), std::string::npos) << zero.err;
}

}  // namespace
}  // namespace adallm
