// server/metrics: the Prometheus text of GET /metrics. Each family has its HELP and TYPE lines; histogram
// buckets are cumulative and end with +Inf, _sum and _count; the prefix-cache counters are prompt tokens
// (queried at admission, and found in the cache).
#include "server/metrics.h"

#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

namespace adallm::server {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool has_line(const std::string& text, const std::string& line) {
  for (const std::string& l : lines_of(text)) {
    if (l == line) return true;
  }
  return false;
}

TEST(Metrics, FreshCountersAreZeroAndEveryFamilyIsDeclared) {
  const Metrics metrics;
  const std::string text = metrics.render("demo", {0, 64});
  for (const char* counter : {"adallm_prefix_cache_queries_total", "adallm_prefix_cache_hits_total"}) {
    EXPECT_TRUE(has_line(text, std::string("# TYPE ") + counter + " counter")) << text;
    EXPECT_TRUE(has_line(text, std::string(counter) + "{model_name=\"demo\"} 0")) << text;
  }
  for (const char* histogram : {"adallm_time_to_first_token_seconds", "adallm_inter_token_latency_seconds"}) {
    const std::string name = histogram;
    EXPECT_TRUE(has_line(text, "# TYPE " + name + " histogram")) << text;
    EXPECT_NE(text.find("# HELP " + name + " "), std::string::npos) << text;
    EXPECT_TRUE(has_line(text, name + "_bucket{model_name=\"demo\",le=\"+Inf\"} 0")) << text;
    EXPECT_TRUE(has_line(text, name + "_count{model_name=\"demo\"} 0")) << text;
  }
  EXPECT_TRUE(has_line(text, "adallm_kv_cache_pages_total{model_name=\"demo\"} 64")) << text;
}

TEST(Metrics, InterTokenHistogramIsCumulative) {
  Metrics metrics;
  metrics.inter_token(0.003);     // the 0.005 bucket
  metrics.inter_token(0.2, 3);    // three gaps in the 0.25 bucket
  metrics.inter_token(100.0);     // past the last bound: +Inf only
  const std::string text = metrics.render("m", {});
  const std::string b = "adallm_inter_token_latency_seconds_bucket{model_name=\"m\",le=";
  EXPECT_TRUE(has_line(text, b + "\"0.001\"} 0")) << text;
  EXPECT_TRUE(has_line(text, b + "\"0.005\"} 1")) << text;
  EXPECT_TRUE(has_line(text, b + "\"0.1\"} 1")) << text;
  EXPECT_TRUE(has_line(text, b + "\"0.25\"} 4")) << text;
  EXPECT_TRUE(has_line(text, b + "\"10\"} 4")) << text;
  EXPECT_TRUE(has_line(text, b + "\"+Inf\"} 5")) << text;
  EXPECT_TRUE(has_line(text, "adallm_inter_token_latency_seconds_count{model_name=\"m\"} 5")) << text;
  EXPECT_TRUE(has_line(text, "adallm_inter_token_latency_seconds_sum{model_name=\"m\"} 100.603")) << text;
  // The time-to-first-token histogram is its own.
  EXPECT_TRUE(has_line(text, "adallm_time_to_first_token_seconds_count{model_name=\"m\"} 0")) << text;

  // Buckets are listed in increasing order, each once.
  std::vector<std::string> bounds;
  for (const std::string& l : lines_of(text)) {
    if (l.rfind(b, 0) == 0) bounds.push_back(l.substr(b.size(), l.find('}') - b.size()));
  }
  ASSERT_EQ(bounds.size(), Metrics::kInterTokenBuckets.size() + 1);
  EXPECT_EQ(bounds.back(), "\"+Inf\"");
}

TEST(Metrics, PrefixCacheCountsPromptTokens) {
  Metrics metrics;
  metrics.submitted(40);
  metrics.first_token(0.02);
  metrics.prefix_cache(40, 0);
  metrics.submitted(40);
  metrics.first_token(0.01);
  metrics.prefix_cache(40, 32);
  const std::string text = metrics.render("m", {});
  EXPECT_TRUE(has_line(text, "adallm_prefix_cache_queries_total{model_name=\"m\"} 80")) << text;
  EXPECT_TRUE(has_line(text, "adallm_prefix_cache_hits_total{model_name=\"m\"} 32")) << text;
  EXPECT_TRUE(has_line(text, "adallm_prompt_tokens_total{model_name=\"m\"} 80")) << text;
  EXPECT_TRUE(has_line(text, "adallm_num_requests_running{model_name=\"m\"} 2")) << text;
  const std::string b = "adallm_time_to_first_token_seconds_bucket{model_name=\"m\",le=";
  EXPECT_TRUE(has_line(text, b + "\"0.01\"} 1")) << text;
  EXPECT_TRUE(has_line(text, b + "\"0.025\"} 2")) << text;
}

}  // namespace
}  // namespace adallm::server
