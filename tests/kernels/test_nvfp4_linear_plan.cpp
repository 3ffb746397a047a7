// The NVFP4 linear kernel plan (no GPU needed): which kernel serves which batch per GPU generation, the
// log line, the workspace, and the refusals.
#include <gtest/gtest.h>

#include "kernels/linear/nvfp4_linear.h"
#include "test_util.h"

namespace adallm::kernels {
namespace {

TEST(Nvfp4LinearPlan, ParsesThePathFlag) {
  EXPECT_EQ(parse_linear_path("auto"), LinearPath::automatic);
  EXPECT_EQ(parse_linear_path("w4a16"), LinearPath::w4a16);
  EXPECT_EQ(parse_linear_path("w4a8"), LinearPath::w4a8);
  test::expect_error([] { parse_linear_path("fp8"); }, "unknown path 'fp8' (expected auto, w4a16 or w4a8)");
}

// The GEMV through 64 tokens where the GEMM's 128-row blocks would not fill the SMs, through 48 where they
// would (Qwen3-8B gate_up: 1536 row tiles, 192 blocks ≥ 132 SMs; o: 32 blocks).
TEST(Nvfp4LinearPlan, HopperWithWgmmaUsesTheGemmAboveTheGemvLimit) {
  const Nvfp4LinearPlan plan = plan_nvfp4_linear({9, 0, true, 132}, LinearPath::automatic);
  EXPECT_EQ(plan.path, LinearPath::w4a16);
  EXPECT_EQ(plan.gemm, Nvfp4Gemm::wgmma);
  EXPECT_EQ(plan.describe(),
            "NVFP4 linear layers on sm_90: w4a16, decode GEMV up to 48 tokens (64 where the GEMM would not fill "
            "the 132 SMs), wgmma GEMM above");
  const Nvfp4TiledShape narrow{4096, 4112};  // K rounded up to 4160 for the permuted activations
  EXPECT_EQ(plan.gemv_limit(narrow), 64);
  EXPECT_EQ(plan.workspace_bytes(narrow, 64), 0);
  EXPECT_EQ(plan.workspace_bytes(narrow, 65), 65 * 4160 * 2);
  const Nvfp4TiledShape gate_up{24576, 4096, true};
  EXPECT_EQ(plan.gemv_limit(gate_up), 48);
  EXPECT_EQ(plan.workspace_bytes(gate_up, 48), 0);
  EXPECT_EQ(plan.workspace_bytes(gate_up, 49), 49 * 4096 * 2);
  EXPECT_EQ(plan.gemv_limit({8 * 131 * 16, 4096}), 64);  // 131 blocks: one SM idle
  EXPECT_EQ(plan.gemv_limit({8 * 132 * 16, 4096}), 48);
}

// Ampere, Ada, and Hopper in a build without sm_90a code: the mma.sync GEMM.
TEST(Nvfp4LinearPlan, OtherGenerationsUseTheMmaGemm) {
  for (const Nvfp4Device device :
       {Nvfp4Device{8, 0, false, 108}, Nvfp4Device{8, 9, false, 128}, Nvfp4Device{9, 0, false, 132}}) {
    const Nvfp4LinearPlan plan = plan_nvfp4_linear(device, LinearPath::w4a16);
    EXPECT_EQ(plan.gemm, Nvfp4Gemm::mma);
    const std::string sm = "sm_" + std::to_string(device.major * 10 + device.minor);
    EXPECT_EQ(plan.describe(),
              "NVFP4 linear layers on " + sm + ": w4a16, decode GEMV up to 64 tokens, mma.sync GEMM above");
    EXPECT_EQ(plan.workspace_bytes({4096, 4096}, 4096), 0);
    EXPECT_EQ(plan.gemv_limit({24576, 4096, true}), 64);
  }
}

// W4A8 on Ada and Hopper: the FP8 GEMM for every batch, the weights in its layout, its workspace.
TEST(Nvfp4LinearPlan, W4a8UsesTheFp8GemmForEveryBatch) {
  for (const Nvfp4Device device : {Nvfp4Device{8, 9, false, 128}, Nvfp4Device{9, 0, true, 132}}) {
    const Nvfp4LinearPlan plan = plan_nvfp4_linear(device, LinearPath::w4a8);
    const std::string sm = "sm_" + std::to_string(device.major * 10 + device.minor);
    EXPECT_EQ(plan.path, LinearPath::w4a8);
    EXPECT_EQ(plan.layout(), Nvfp4Layout::w4a8);
    EXPECT_EQ(plan.describe(), "NVFP4 linear layers on " + sm +
                                   ": w4a8, activations quantized per token to fp8, W4A8 mma.sync GEMM for every batch");
    const Nvfp4TiledShape shape{4096, 4112};  // codes padded to 4160 columns, then 16-byte aligned scales
    EXPECT_EQ(plan.gemv_limit(shape), 0);
    EXPECT_EQ(plan.workspace_bytes(shape, 1), 4160 + 16);
    EXPECT_EQ(plan.workspace_bytes(shape, 5), 5 * 4160 + 32);
  }
  EXPECT_EQ(plan_nvfp4_linear({9, 0, true, 132}, LinearPath::automatic).layout(), Nvfp4Layout::w4a16);
}

TEST(Nvfp4LinearPlan, RefusesWhatCannotRun) {
  test::expect_error([] { plan_nvfp4_linear({7, 5, false}, LinearPath::automatic); },
                     "need an sm_80 or newer GPU (Ampere, Ada, Hopper); this one is sm_75");
  test::expect_error([] { plan_nvfp4_linear({8, 6, false}, LinearPath::w4a8); },
                     "--linear-path w4a8 needs FP8 tensor cores (sm_89 or newer); this GPU is sm_86");
  test::expect_error([] { plan_nvfp4_linear({8, 0, false}, LinearPath::w4a8); }, "Use --linear-path w4a16 or auto");
}

}  // namespace
}  // namespace adallm::kernels
