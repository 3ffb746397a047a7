// The serving engine on the CPU backend over the tiny fixtures (qwen3, llama and gemma3 NVFP4, qwen3_moe;
// gemma3's sliding window is 4 tokens, far below the mixes' lengths): randomized request mixes (arrivals,
// prompt lengths, shared prefixes, stop ids, cancellations) through a small KV pool and token budget, so
// that chunked prefill, prefix caching and preemption all happen, must give every request exactly what the
// single-sequence Generator gives it alone (greedy, and seeded sampling), leak no page and starve nobody.
// Also: request validation, prefix-cache accounting, and the threaded Engine with concurrent clients.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <utility>
#include <span>
#include <limits>
#include <cmath>
#include <map>
#include <ostream>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "core/error.h"
#include "engine/engine.h"
#include "engine/engine_core.h"
#include "engine/generator.h"
#include "model/model.h"
#include "test_util.h"

namespace adallm::engine {
namespace {

struct Loaded {
  std::unique_ptr<backend::Backend> backend;
  std::unique_ptr<model::Model> model;
};

// One backend and model per fixture checkpoint (e.g. "qwen3/bf16") for the whole program.
Loaded& fixture(const std::string& checkpoint) {
  static std::map<std::string, Loaded> loaded;
  Loaded& l = loaded[checkpoint];
  if (!l.model) {
    l.backend = backend::make_cpu_backend(2);
    l.model = model::Model::load(test::fixtures_dir() / checkpoint, *l.backend);
  }
  return l;
}

Loaded& qwen3() { return fixture("qwen3/bf16"); }

SamplingParams greedy() {
  SamplingParams p;
  p.temperature = 0.0f;
  return p;
}

struct Expected {
  std::vector<int32_t> tokens;
  FinishReason finish = FinishReason::none;
};

// The request alone through the single-sequence Generator, with the same context and KV dtype.
Expected alone(const GenerateRequest& r, int64_t max_model_len, backend::KvCacheDType kv, Loaded& m = qwen3()) {
  GeneratorOptions o;
  o.max_context = max_model_len;
  o.kv_cache_dtype = kv;
  Generator g(*m.model, *m.backend, o);
  const GenerationResult result = g.generate(r.prompt, r.sampling, r.max_tokens, r.stop_token_ids, nullptr);
  Expected e;
  e.tokens = result.tokens;
  e.finish = result.finish_reason == "stop" ? FinishReason::stop : FinishReason::length;
  return e;
}

struct Collected {
  std::vector<int32_t> tokens;
  std::vector<TokenLogprobs> logprobs;
  RequestOutput last;
  int finishing_events = 0;
};

void collect(std::map<int64_t, Collected>& out, const std::vector<RequestOutput>& events) {
  for (const RequestOutput& e : events) {
    Collected& c = out[e.request_id];
    EXPECT_EQ(c.finishing_events, 0) << "event after the last one for request " << e.request_id;
    c.tokens.insert(c.tokens.end(), e.tokens.begin(), e.tokens.end());
    c.logprobs.insert(c.logprobs.end(), e.logprobs.begin(), e.logprobs.end());
    EXPECT_EQ(e.completion_tokens, static_cast<int64_t>(c.tokens.size()));
    if (e.finished()) {
      ++c.finishing_events;
      c.last = e;
    }
  }
}

struct MixCase {
  const char* name;
  const char* checkpoint;  // under tests/fixtures
  bool prefix_caching;
  backend::KvCacheDType kv;
  uint32_t seed;
};

void PrintTo(const MixCase& c, std::ostream* os) { *os << c.name; }

class EngineMix : public ::testing::TestWithParam<MixCase> {};

TEST_P(EngineMix, EveryRequestGetsWhatItGetsAlone) {
  const MixCase mc = GetParam();
  Loaded& m = fixture(mc.checkpoint);
  const int64_t vocab = m.model->config().vocab_size;
  EngineOptions o;
  o.max_model_len = 96;
  o.page_size = 4;
  o.num_pages = 30;  // 120 tokens: two long sequences do not fit together
  o.max_num_seqs = 6;
  o.max_num_batched_tokens = 20;
  o.prefix_caching = mc.prefix_caching;
  o.kv_cache_dtype = mc.kv;
  EngineCore core(*m.model, *m.backend, o);

  std::mt19937 rng(mc.seed);
  const auto uniform = [&](int lo, int hi) { return lo + static_cast<int>(rng() % static_cast<uint32_t>(hi - lo + 1)); };
  std::vector<int32_t> shared(24);
  for (auto& t : shared) t = uniform(0, static_cast<int>(vocab) - 1);

  struct Planned {
    GenerateRequest request;
    int arrival_step;
    int cancel_step;  // -1: never
    int64_t id = 0;
  };
  std::vector<Planned> plan;
  for (int i = 0; i < 40; ++i) {
    Planned p;
    const int kind = uniform(0, 3);
    if (kind == 0) {
      p.request.prompt.assign(shared.begin(), shared.begin() + uniform(5, 24));  // a prefix of the shared text
    } else if (kind == 1) {
      p.request.prompt = shared;  // shared text plus its own tail
      for (int j = uniform(1, 20); j > 0; --j) p.request.prompt.push_back(uniform(0, static_cast<int>(vocab) - 1));
    } else {
      for (int j = uniform(1, 60); j > 0; --j) p.request.prompt.push_back(uniform(0, static_cast<int>(vocab) - 1));
    }
    p.request.max_tokens = uniform(1, 24);
    if (uniform(0, 4) == 0) {
      p.request.sampling.temperature = 0.9f;  // seeded sampling must not depend on the batch either
      p.request.sampling.seed = static_cast<uint64_t>(uniform(1, 1000));
    } else {
      p.request.sampling = greedy();
    }
    if (uniform(0, 3) == 0) p.request.stop_token_ids = {uniform(0, static_cast<int>(vocab) - 1), uniform(0, static_cast<int>(vocab) - 1)};
    p.arrival_step = uniform(0, 40);
    p.cancel_step = uniform(0, 6) == 0 ? p.arrival_step + uniform(0, 10) : -1;
    plan.push_back(std::move(p));
  }

  std::map<int64_t, Collected> got;
  int step = 0;
  size_t arrived = 0;
  std::sort(plan.begin(), plan.end(), [](const Planned& a, const Planned& b) { return a.arrival_step < b.arrival_step; });
  for (; step < 4000; ++step) {
    for (; arrived < plan.size() && plan[arrived].arrival_step <= step; ++arrived) {
      plan[arrived].id = core.add(plan[arrived].request);
    }
    for (const Planned& p : plan) {
      if (p.id != 0 && p.cancel_step == step) core.cancel(p.id);
    }
    collect(got, core.step());
    if (arrived == plan.size() && core.idle()) break;
  }
  ASSERT_LT(step, 4000) << "requests still unfinished: starvation or a livelock";
  EXPECT_EQ(core.pages().num_referenced(), 0) << "KV pages leaked";
  if (mc.prefix_caching) {
    EXPECT_GT(core.pages().hits(), 0) << "the mix should have hit the prefix cache";
  }
  EXPECT_GT(core.scheduler().num_preemptions(), 0) << "the mix should have preempted";

  for (const Planned& p : plan) {
    SCOPED_TRACE("request " + std::to_string(p.id) + ", prompt " + std::to_string(p.request.prompt.size()) +
                 " tokens, max_tokens " + std::to_string(p.request.max_tokens));
    const Collected& c = got[p.id];
    ASSERT_EQ(c.finishing_events, 1);
    EXPECT_EQ(c.last.prompt_tokens, static_cast<int64_t>(p.request.prompt.size()));
    const Expected want = alone(p.request, o.max_model_len, mc.kv, m);
    if (c.last.finish_reason == FinishReason::cancelled) {
      ASSERT_NE(p.cancel_step, -1);
      ASSERT_LE(c.tokens.size(), want.tokens.size());
      EXPECT_TRUE(std::equal(c.tokens.begin(), c.tokens.end(), want.tokens.begin()));
    } else {
      EXPECT_EQ(c.tokens, want.tokens);
      EXPECT_EQ(c.last.finish_reason, want.finish);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Mixes, EngineMix,
                         ::testing::Values(MixCase{"qwen3_prefix_bf16_1", "qwen3/bf16", true, backend::KvCacheDType::bf16, 1},
                                           MixCase{"qwen3_prefix_bf16_2", "qwen3/bf16", true, backend::KvCacheDType::bf16, 2},
                                           MixCase{"qwen3_prefix_fp8_3", "qwen3/bf16", true, backend::KvCacheDType::fp8_e4m3, 3},
                                           MixCase{"qwen3_no_prefix_bf16_4", "qwen3/bf16", false, backend::KvCacheDType::bf16, 4},
                                           MixCase{"llama_nvfp4_prefix_fp8_5", "llama/nvfp4-modelopt", true, backend::KvCacheDType::fp8_e4m3, 5},
                                           MixCase{"gemma3_nvfp4_prefix_bf16_6", "gemma3_text/nvfp4-ct", true, backend::KvCacheDType::bf16, 6},
                                           MixCase{"gemma3_no_prefix_fp8_7", "gemma3_text/bf16", false, backend::KvCacheDType::fp8_e4m3, 7},
                                           MixCase{"qwen3_moe_prefix_bf16_8", "qwen3_moe/bf16", true, backend::KvCacheDType::bf16, 8}),
                         [](const ::testing::TestParamInfo<MixCase>& param) { return std::string(param.param.name); });

EngineOptions small_options() {
  EngineOptions o;
  o.max_model_len = 64;
  o.page_size = 4;
  o.num_pages = 64;
  o.kv_cache_dtype = backend::KvCacheDType::bf16;
  return o;
}

std::vector<int32_t> iota_prompt(int n, int first = 3) {
  std::vector<int32_t> p(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) p[static_cast<size_t>(i)] = (first + 7 * i) % 256;
  return p;
}

GenerateRequest greedy_request(int prompt_len, int64_t max_tokens) {
  GenerateRequest r;
  r.sampling = greedy();
  r.prompt = iota_prompt(prompt_len);
  r.max_tokens = max_tokens;
  return r;
}

std::map<int64_t, Collected> run_to_idle(EngineCore& core, std::map<int64_t, Collected> got = {}) {
  for (int i = 0; i < 1000 && !core.idle(); ++i) collect(got, core.step());
  EXPECT_TRUE(core.idle());
  return got;
}

TEST(EngineCore, RejectsBadRequestsAndQueuesNothing) {
  Loaded& m = qwen3();
  EngineCore core(*m.model, *m.backend, small_options());
  GenerateRequest r;
  r.sampling = greedy();
  EXPECT_THROW(core.add(r), Error);  // empty prompt
  r.prompt = iota_prompt(65);
  EXPECT_THROW(core.add(r), Error);  // longer than max_model_len
  r.prompt = {1, 256};
  EXPECT_THROW(core.add(r), Error);  // outside the vocabulary
  r.prompt = {1, -1};
  EXPECT_THROW(core.add(r), Error);
  r.prompt = {1, 2};
  r.max_tokens = -1;
  EXPECT_THROW(core.add(r), Error);
  r.max_tokens = 4;
  r.sampling.top_p = 0.0f;
  EXPECT_THROW(core.add(r), Error);
  EXPECT_TRUE(core.idle());
  EXPECT_TRUE(core.step().empty());
}

TEST(EngineCore, SizesTheKvPoolFromMemory) {
  Loaded& m = qwen3();
  EngineOptions o = small_options();
  o.num_pages = 0;
  const int64_t page_bytes = m.model->kv_cache_spec(1, o.page_size, o.kv_cache_dtype).bytes();
  o.kv_cache_memory = 20 * page_bytes + page_bytes / 2;
  EXPECT_EQ(EngineCore(*m.model, *m.backend, o).options().num_pages, 20);
  o.kv_cache_memory = 10 * page_bytes;  // 40 tokens: less than one sequence of max_model_len 64
  EXPECT_THROW(EngineCore(*m.model, *m.backend, o), Error);
  o.kv_cache_memory = page_bytes / 2;
  EXPECT_THROW(EngineCore(*m.model, *m.backend, o), Error);
  o.kv_cache_memory = 20 * page_bytes;
  o.num_pages = 20;
  EXPECT_THROW(EngineCore(*m.model, *m.backend, o), Error);  // one or the other
  o.num_pages = 0;
  o.kv_cache_memory = 0;
  EXPECT_EQ(EngineCore(*m.model, *m.backend, o).options().num_pages, 4 * 16);  // four sequences of 64
}

TEST(EngineCore, RecordsStepGraphsForPowersOfTwoThenMultiplesOfEight) {
  using Sizes = std::vector<int64_t>;
  EXPECT_EQ(graph_batch_sizes(1), Sizes({1}));
  EXPECT_EQ(graph_batch_sizes(3), Sizes({1, 2, 4}));
  EXPECT_EQ(graph_batch_sizes(8), Sizes({1, 2, 4, 8}));
  EXPECT_EQ(graph_batch_sizes(20), Sizes({1, 2, 4, 8, 16, 24}));
  const Sizes all = graph_batch_sizes(256);
  EXPECT_EQ(all.size(), 35u);
  EXPECT_EQ(all.back(), 256);
}

TEST(EngineCore, FinishesWithoutRunningWhenThereIsNothingToGenerate) {
  Loaded& m = qwen3();
  EngineCore core(*m.model, *m.backend, small_options());
  GenerateRequest r = greedy_request(5, 0);
  const int64_t a = core.add(r);
  r.prompt = iota_prompt(64);  // fills max_model_len: no room for a token
  r.max_tokens = 5;
  const int64_t b = core.add(r);
  auto got = run_to_idle(core);
  for (int64_t id : {a, b}) {
    EXPECT_EQ(got[id].finishing_events, 1);
    EXPECT_EQ(got[id].last.finish_reason, FinishReason::length);
    EXPECT_TRUE(got[id].tokens.empty());
  }
}

TEST(EngineCore, ASecondRequestWithTheSamePromptReusesItsFullPages) {
  Loaded& m = qwen3();
  EngineCore core(*m.model, *m.backend, small_options());
  const GenerateRequest r = greedy_request(30, 6);
  const int64_t first = core.add(r);
  auto a = run_to_idle(core);
  const int64_t second = core.add(r);
  auto b = run_to_idle(core);
  EXPECT_EQ(a[first].last.cached_tokens, 0);
  EXPECT_EQ(b[second].last.cached_tokens, 28);  // 7 full pages before the last prompt token
  EXPECT_EQ(a[first].tokens, b[second].tokens);
  EXPECT_EQ(b[second].tokens, alone(r, 64, backend::KvCacheDType::bf16).tokens);
  EXPECT_EQ(core.pages().num_referenced(), 0);
  EXPECT_GT(core.pages().num_cached(), 0);
}

// Non-greedy steps sample on the backend (Model::forward_sample -> Backend::sample_rows): a seeded request
// with every knob on, batched with a greedy one, reproduces across engines, matches the host sampler of
// the single-sequence Generator token for token, and another seed changes it.
TEST(EngineCore, SeededSamplingOnTheBackendReproduces) {
  Loaded& m = qwen3();
  GenerateRequest sampled;
  sampled.prompt = iota_prompt(9);
  sampled.max_tokens = 16;
  sampled.sampling.temperature = 1.3f;
  sampled.sampling.top_k = 60;
  sampled.sampling.top_p = 0.95f;
  sampled.sampling.min_p = 0.01f;
  sampled.sampling.repetition_penalty = 1.2f;
  sampled.sampling.presence_penalty = 0.3f;
  sampled.sampling.frequency_penalty = 0.2f;
  sampled.sampling.seed = 77;
  const GenerateRequest plain = greedy_request(7, 16);
  const auto run = [&](const GenerateRequest& r) {
    EngineCore core(*m.model, *m.backend, small_options());
    const int64_t a = core.add(r);
    const int64_t b = core.add(plain);
    auto got = run_to_idle(core);
    EXPECT_EQ(got[b].tokens, alone(plain, 64, backend::KvCacheDType::bf16).tokens) << "the greedy neighbour";
    return got[a].tokens;
  };
  const std::vector<int32_t> first = run(sampled);
  ASSERT_EQ(first.size(), 16u);
  EXPECT_EQ(run(sampled), first);
  EXPECT_EQ(first, alone(sampled, 64, backend::KvCacheDType::bf16).tokens);
  GenerateRequest reseeded = sampled;
  reseeded.sampling.seed = 78;
  EXPECT_NE(run(reseeded), first);
}

// log_softmax of one row of logits, in double.
std::vector<double> log_softmax(std::span<const float> row) {
  double max = -std::numeric_limits<double>::infinity(), sum = 0.0;
  for (float v : row) max = std::max(max, double(v));
  for (float v : row) sum += std::exp(double(v) - max);
  std::vector<double> out(row.size());
  for (size_t i = 0; i < row.size(); ++i) out[i] = double(row[i]) - max - std::log(sum);
  return out;
}

// Log-probabilities come with the tokens of the requests that ask, and only those: each token's, and its
// position's most likely tokens', from the raw logits — a sampled request's penalties and temperature do
// not change them. Checked against log_softmax of the logits the single-sequence Generator scores for the
// prompt and the tokens the engine produced.
TEST(EngineCore, ReportsLogprobsOfTheRawDistribution) {
  Loaded& m = qwen3();
  EngineCore core(*m.model, *m.backend, small_options());
  GenerateRequest top = greedy_request(9, 6);
  top.logprobs = 3;
  GenerateRequest sampled = greedy_request(11, 6);
  sampled.sampling.temperature = 1.5f;
  sampled.sampling.repetition_penalty = 1.3f;
  sampled.sampling.frequency_penalty = 0.5f;
  sampled.sampling.seed = 5;
  sampled.logprobs = 0;
  const GenerateRequest none = greedy_request(7, 6);
  const int64_t a = core.add(top), b = core.add(sampled), c = core.add(none);
  auto got = run_to_idle(core);
  EXPECT_TRUE(got[c].logprobs.empty());
  GeneratorOptions o;
  o.max_context = 64;
  o.kv_cache_dtype = small_options().kv_cache_dtype;
  Generator scorer(*m.model, *m.backend, o);
  const auto vocab = static_cast<size_t>(m.model->config().vocab_size);
  for (const auto& [id, request] : {std::pair{a, top}, std::pair{b, sampled}}) {
    const Collected& out = got[id];
    ASSERT_EQ(out.tokens.size(), 6u);
    ASSERT_EQ(out.logprobs.size(), out.tokens.size());
    std::vector<int32_t> all = request.prompt;
    all.insert(all.end(), out.tokens.begin(), out.tokens.end());
    const std::vector<float> logits = scorer.score(all);
    for (size_t i = 0; i < out.tokens.size(); ++i) {
      const size_t position = request.prompt.size() - 1 + i;
      const std::vector<double> want = log_softmax(std::span<const float>(logits.data() + position * vocab, vocab));
      const TokenLogprobs& t = out.logprobs[i];
      EXPECT_NEAR(t.logprob, want[static_cast<size_t>(out.tokens[i])], 1e-4) << "request " << id << " token " << i;
      ASSERT_EQ(t.top.size(), static_cast<size_t>(*request.logprobs));
      std::vector<int32_t> order(vocab);
      for (size_t v = 0; v < vocab; ++v) order[v] = static_cast<int32_t>(v);
      std::stable_sort(order.begin(), order.end(), [&](int32_t x, int32_t y) { return want[size_t(x)] > want[size_t(y)]; });
      for (size_t j = 0; j < t.top.size(); ++j) {
        EXPECT_EQ(t.top[j].first, order[j]) << "request " << id << " token " << i << " alternative " << j;
        EXPECT_NEAR(t.top[j].second, want[size_t(order[j])], 1e-4);
      }
      if (id == a) {
        EXPECT_EQ(t.top.front().first, out.tokens[i]) << "greedy picks the most likely token";
      }
    }
  }
  GenerateRequest bad = greedy_request(5, 2);
  bad.logprobs = 21;
  EXPECT_THROW(core.add(bad), Error);
  bad.logprobs = -1;
  EXPECT_THROW(core.add(bad), Error);
}

TEST(EngineCore, CancelsQueuedAndRunningRequests) {
  Loaded& m = qwen3();
  EngineCore core(*m.model, *m.backend, small_options());
  const GenerateRequest r = greedy_request(10, 40);
  const int64_t running = core.add(r);
  std::map<int64_t, Collected> before;
  collect(before, core.step());  // `running` is admitted and prefilled
  const int64_t queued = core.add(r);
  EXPECT_TRUE(core.cancel(running));
  EXPECT_TRUE(core.cancel(queued));
  EXPECT_FALSE(core.cancel(999));
  EXPECT_EQ(before[running].tokens.size(), 1u);
  auto got = run_to_idle(core, before);
  EXPECT_EQ(got[running].last.finish_reason, FinishReason::cancelled);
  EXPECT_EQ(got[queued].last.finish_reason, FinishReason::cancelled);
  EXPECT_EQ(core.pages().num_referenced(), 0);
}

// The threaded engine: clients on several threads submit and read their streams at once; one client
// drops its stream early (the request is cancelled), and the engine keeps serving the others.
TEST(Engine, ConcurrentClientsGetWhatTheyGetAlone) {
  Loaded& m = qwen3();
  EngineOptions o = small_options();
  o.max_num_batched_tokens = 16;
  o.num_pages = 40;
  std::vector<GenerateRequest> requests;
  for (int i = 0; i < 12; ++i) {
    GenerateRequest r;
    r.sampling = greedy();
    r.prompt = iota_prompt(5 + 3 * i, i);
    r.max_tokens = 4 + i % 5;
    requests.push_back(r);
  }
  std::vector<Expected> want;
  for (const auto& r : requests) want.push_back(alone(r, o.max_model_len, o.kv_cache_dtype));

  std::vector<std::vector<int32_t>> got(requests.size());
  std::vector<FinishReason> finish(requests.size());
  {
    Engine engine(*m.model, *m.backend, o);
    EXPECT_THROW(engine.submit(GenerateRequest{}), Error);  // validated on the caller's thread
    {
      GenerateRequest dropped = requests[0];
      dropped.max_tokens = 40;
      std::shared_ptr<RequestStream> s = engine.submit(dropped);
      RequestOutput first;
      ASSERT_TRUE(s->next(first));
    }  // dropped: the engine cancels it
    std::vector<std::thread> clients;
    for (int t = 0; t < 4; ++t) {
      clients.emplace_back([&, t] {
        for (size_t i = static_cast<size_t>(t); i < requests.size(); i += 4) {
          std::shared_ptr<RequestStream> s = engine.submit(requests[i]);
          RequestOutput e;
          while (s->next(e)) {
            got[i].insert(got[i].end(), e.tokens.begin(), e.tokens.end());
            if (e.finished()) finish[i] = e.finish_reason;
          }
        }
      });
    }
    for (auto& c : clients) c.join();
  }
  {
    // A cancelled request ends cancelled. Its 500 tokens take the engine ~100 times longer than the
    // client needs to cancel, so that a busy machine cannot let it finish by length first.
    EngineOptions long_run = o;
    long_run.max_model_len = 512;
    long_run.num_pages = 512 / long_run.page_size;
    Engine engine(*m.model, *m.backend, long_run);
    GenerateRequest endless = requests[1];
    endless.max_tokens = 500;
    std::shared_ptr<RequestStream> s = engine.submit(endless);
    RequestOutput e;
    ASSERT_TRUE(s->next(e));
    // The KV gauge is published before the events of a step: a running request holds pages.
    EXPECT_GT(engine.kv_stats().pages_used, 0);
    EXPECT_EQ(engine.kv_stats().num_pages, long_run.num_pages);
    EXPECT_TRUE(s->wait_for(std::chrono::seconds(30)));  // a token is on its way
    s->cancel();
    FinishReason last = FinishReason::none;
    while (s->next(e)) last = e.finish_reason;
    EXPECT_EQ(last, FinishReason::cancelled);
    EXPECT_TRUE(s->wait_for(std::chrono::milliseconds(0)));  // the last event was taken: next() returns at once
    EXPECT_EQ(engine.kv_stats().pages_used, 0);  // its pages went back in the step that ended it
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(got[i], want[i].tokens) << "request " << i;
    EXPECT_EQ(finish[i], want[i].finish) << "request " << i;
  }
}

}  // namespace
}  // namespace adallm::engine
