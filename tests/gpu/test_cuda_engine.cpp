// The serving engine on the GPU (label `gpu`): the KV pool sized from device memory (what is left of
// gpu_memory_utilization · total after the weights and a full-size profile step), a clear error when
// nothing is left, and greedy generation through the pool equal to the CPU engine's.
#include <gtest/gtest.h>

#include <vector>

#include "backend/cpu/cpu_backend.h"
#include "backend/cuda/cuda_backend.h"
#include "core/error.h"
#include "engine/engine_core.h"
#include "model/model.h"
#include "test_util.h"

namespace adallm::engine {
namespace {

std::vector<int32_t> generate(EngineCore& core, const std::vector<int32_t>& prompt, int64_t max_tokens) {
  GenerateRequest r;
  r.prompt = prompt;
  r.sampling.temperature = 0.0f;
  r.max_tokens = max_tokens;
  core.add(r);
  std::vector<int32_t> out;
  while (!core.idle()) {
    for (const RequestOutput& e : core.step()) out.insert(out.end(), e.tokens.begin(), e.tokens.end());
  }
  return out;
}

TEST(CudaEngine, SizesTheKvPoolFromDeviceMemory) {
  auto cuda = backend::make_cuda_backend();
  auto model = model::Model::load(test::fixtures_dir() / "qwen3" / "nvfp4-modelopt", *cuda);
  EngineOptions o;
  o.max_model_len = 256;
  o.max_num_batched_tokens = 512;
  o.gpu_memory_utilization = 0.5;
  o.kv_cache_dtype = backend::KvCacheDType::bf16;
  const backend::DeviceMemoryInfo before = *cuda->device_memory();
  EngineCore core(*model, *cuda, o);
  const int64_t pool = model->kv_cache_spec(core.options().num_pages, o.page_size, o.kv_cache_dtype).bytes();
  const backend::DeviceMemoryInfo after = *cuda->device_memory();
  // The pool fills the budget to within a page, and the budget is what the option says.
  EXPECT_GT(core.options().num_pages, 0);
  EXPECT_LE(after.total - after.free, static_cast<int64_t>(0.5 * static_cast<double>(after.total)) + (int64_t{2} << 20));
  EXPECT_GT(pool, static_cast<int64_t>(0.5 * static_cast<double>(before.total)) - (before.total - before.free) - (int64_t{1} << 30));

  auto cpu = backend::make_cpu_backend(2);
  auto cpu_model = model::Model::load(test::fixtures_dir() / "qwen3" / "nvfp4-modelopt", *cpu);
  EngineOptions c = o;
  c.num_pages = 64;
  EngineCore cpu_core(*cpu_model, *cpu, c);
  const std::vector<int32_t> prompt = {1, 5, 9, 13, 17, 21, 25, 29, 33, 37};
  EXPECT_EQ(generate(core, prompt, 12), generate(cpu_core, prompt, 12));
}

TEST(CudaEngine, SaysSoWhenNoMemoryIsLeftForTheKvCache) {
  auto cuda = backend::make_cuda_backend();
  auto model = model::Model::load(test::fixtures_dir() / "qwen3" / "nvfp4-modelopt", *cuda);
  EngineOptions o;
  o.max_model_len = 256;
  o.gpu_memory_utilization = 1e-4;
  try {
    EngineCore core(*model, *cuda, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("gpu_memory_utilization"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace adallm::engine
