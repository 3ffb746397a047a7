// The C++ NVFP4 encoders against the independent PyTorch reference run on the GPU
// (tools/make_quant_reference.py → tests/fixtures/quant_reference.safetensors): every packed byte, every
// block scale and the per-tensor scale, for ModelOpt's and compressed-tensors' algorithms, on inputs
// built to stress them (e4m3-subnormal and vanishing block scales, zero blocks, near-ties, fp16, large).
#include <gtest/gtest.h>

#include <cstring>
#include <string>

#include "io/safetensors.h"
#include "io/tensor_data.h"
#include "quant/nvfp4.h"
#include "test_util.h"

namespace adallm::quant {
namespace {

const io::TensorInfo& get(const io::Checkpoint& c, const std::string& name) { return c.get(name); }

float scalar(const io::TensorInfo& t) {
  float v;
  std::memcpy(&v, t.data, sizeof v);
  return v;
}

size_t differing_bytes(const std::vector<uint8_t>& ours, const io::TensorInfo& reference) {
  EXPECT_EQ(ours.size(), reference.nbytes) << reference.name;
  size_t n = 0;
  for (size_t i = 0; i < ours.size() && i < reference.nbytes; ++i) n += ours[i] != reference.data[i];
  return n;
}

class QuantReference : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    checkpoint_ = new io::Checkpoint(io::Checkpoint::open(test::fixtures_dir() / "quant_reference.safetensors"));
  }
  static void TearDownTestSuite() { delete checkpoint_; }
  static const io::Checkpoint* checkpoint_;
};
const io::Checkpoint* QuantReference::checkpoint_ = nullptr;

TEST_P(QuantReference, ModelOptBitIdentical) {
  const std::string c = GetParam();
  const io::TensorInfo& input = get(*checkpoint_, c + ".input");
  const std::vector<float> w = io::tensor_to_f32(input);
  const float ws2 = modelopt_weight_scale_2_cuda(abs_max(w));
  EXPECT_EQ(ws2, scalar(get(*checkpoint_, c + ".modelopt.weight_scale_2")));
  const Nvfp4Tensor q = nvfp4_quantize_modelopt(w, input.shape[0], input.shape[1], ws2);
  EXPECT_EQ(differing_bytes(q.scales, get(*checkpoint_, c + ".modelopt.weight_scale")), 0u);
  EXPECT_EQ(differing_bytes(q.packed, get(*checkpoint_, c + ".modelopt.weight")), 0u);
}

TEST_P(QuantReference, CompressedTensorsBitIdentical) {
  const std::string c = GetParam();
  const io::TensorInfo& input = get(*checkpoint_, c + ".input");
  const std::vector<float> w = io::tensor_to_f32(input);
  const float gs = compressed_tensors_global_scale(abs_max(w), input.dtype);
  EXPECT_EQ(gs, scalar(get(*checkpoint_, c + ".ct.weight_global_scale")));
  const Nvfp4Tensor q = nvfp4_quantize_compressed_tensors(w, input.shape[0], input.shape[1], gs, input.dtype);
  EXPECT_EQ(differing_bytes(q.scales, get(*checkpoint_, c + ".ct.weight_scale")), 0u);
  EXPECT_EQ(differing_bytes(q.packed, get(*checkpoint_, c + ".ct.weight_packed")), 0u);
}

INSTANTIATE_TEST_SUITE_P(Cases, QuantReference,
                         ::testing::Values("normal", "wide_range", "zero_blocks", "near_ties", "fp16", "large",
                                           "vanishing_blocks"));

}  // namespace
}  // namespace adallm::quant
