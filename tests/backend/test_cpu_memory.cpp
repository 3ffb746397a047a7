// CPU backend memory and row ops: alloc zero-fills, upload converts BF16/F16/F32 from unaligned host
// data, to_host reads strided views, embed looks tokens up (and refuses bad ids), gather_logit_rows copies
// the requested rows. Expected values are typed out.
#include <cstring>

#include "cpu_test_util.h"
#include "core/float_codecs.h"

namespace adallm::backend::test {
namespace {

TEST(CpuMemory, AllocIsZeroedAndContiguous) {
  auto b = cpu();
  auto buf = b->alloc(3, 5, DType::F32);
  const Tensor& t = buf->view();
  EXPECT_EQ(t.rows, 3);
  EXPECT_EQ(t.cols, 5);
  EXPECT_EQ(t.stride, 5);
  for (float v : read(*b, t)) EXPECT_EQ(v, 0.0f);
  auto ids = b->alloc(2, 2, DType::I32);
  EXPECT_EQ(ids->view().dtype, DType::I32);
  expect_error([&] { b->alloc(2, 2, DType::F16); }, "F16");
}

TEST(CpuMemory, UploadConvertsFromUnalignedHostData) {
  auto b = cpu();
  // bf16 0x3FC0 = 1.5, 0xC040 = -3.0; f16 0x3C00 = 1.0, 0xC500 = -5.0.
  const uint16_t bf16[] = {0x3FC0, 0xC040, 0x0000, 0x4120};  // 0x4120 = 10.0
  const uint16_t f16[] = {0x3C00, 0xC500, 0x3800, 0x7BFF};   // 0.5, 65504
  const float f32[] = {0.25f, -7.0f, 3.0f, 1e30f};
  for (int which = 0; which < 3; ++which) {
    std::vector<unsigned char> host(64);
    const void* src = which == 0 ? static_cast<const void*>(bf16) : which == 1 ? static_cast<const void*>(f16) : f32;
    const size_t bytes = which == 2 ? sizeof f32 : sizeof bf16;
    std::memcpy(host.data() + 1, src, bytes);  // deliberately misaligned
    const DType dtype = which == 0 ? DType::BF16 : which == 1 ? DType::F16 : DType::F32;
    auto buf = b->upload(HostArray{"w", host.data() + 1, dtype, 2, 2}, DType::F32);
    const std::vector<float> expected = which == 0   ? std::vector<float>{1.5f, -3.0f, 0.0f, 10.0f}
                                        : which == 1 ? std::vector<float>{1.0f, -5.0f, 0.5f, 65504.0f}
                                                     : std::vector<float>{0.25f, -7.0f, 3.0f, 1e30f};
    EXPECT_EQ(read(*b, buf->view()), expected) << "source " << dtype_name(dtype);
  }
  // BF16 target keeps raw bf16 (embedding tables).
  auto raw = b->upload(HostArray{"embed", bf16, DType::BF16, 1, 4}, DType::BF16);
  EXPECT_EQ(raw->view().dtype, DType::BF16);
  EXPECT_EQ(raw->view().ptr<uint16_t>()[3], 0x4120);
  EXPECT_EQ(read(*b, raw->view()), (std::vector<float>{1.5f, -3.0f, 0.0f, 10.0f}));
  expect_error([&] { b->upload(HostArray{"bad", f32, DType::I32, 1, 4}, DType::F32); }, "bad");
}

TEST(CpuMemory, ToHostReadsStridedViews) {
  auto b = cpu();
  std::vector<float> data(12);
  for (int i = 0; i < 12; ++i) data[static_cast<size_t>(i)] = static_cast<float>(i);
  auto buf = upload_f32(*b, data, 3, 4);
  EXPECT_EQ(read(*b, buf->view().col_slice(1, 2)), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  EXPECT_EQ(read(*b, buf->view().row_slice(1, 2).col_slice(3, 1)), (std::vector<float>{7, 11}));
  std::vector<float> wrong(5);
  expect_error([&] { b->to_host(buf->view(), wrong); }, "dst holds 5");
}

TEST(CpuMemory, EmbedLooksUpAndScales) {
  auto b = cpu();
  // vocab 3, hidden 2, bf16: rows (1, 2), (-1.5, 0.5), (4, -8)
  const uint16_t table[] = {0x3F80, 0x4000, 0xBFC0, 0x3F00, 0x4080, 0xC100};
  auto t_bf16 = b->upload(HostArray{"embed", table, DType::BF16, 3, 2}, DType::BF16);
  auto t_f32 = b->upload(HostArray{"embed", table, DType::BF16, 3, 2}, DType::F32);
  ForwardBatch batch;
  batch.token_ids = {2, 0, 2, 1};
  b->set_batch(batch);
  auto out = b->alloc(4, 2, DType::F32);
  for (const Tensor& table_view : {t_bf16->view(), t_f32->view()}) {
    b->embed(table_view, 0, 3, 0.5f, out->view());
    EXPECT_EQ(read(*b, out->view()), (std::vector<float>{2, -4, 0.5f, 1, 2, -4, -0.75f, 0.25f}));
    // A tensor-parallel rank's vocabulary rows 1 and 2: id 0 is another rank's, so zeros.
    b->embed(table_view.row_slice(1, 2), 1, 3, 0.5f, out->view());
    EXPECT_EQ(read(*b, out->view()), (std::vector<float>{2, -4, 0, 0, 2, -4, -0.75f, 0.25f}));
  }
  expect_error([&] { b->embed(t_bf16->view().row_slice(1, 2), 2, 3, 1.0f, out->view()); }, "table rows 2 .. 3 outside vocab_size 3");
  batch.token_ids = {1, 3, 0, 0};
  expect_error([&] { b->embed(t_bf16->view(), 0, 3, 1.0f, out->view()); }, "id 3, outside vocab_size 3");
  batch.token_ids = {-1, 0, 0, 0};
  expect_error([&] { b->embed(t_bf16->view(), 0, 3, 1.0f, out->view()); }, "id -1");
  auto small = b->alloc(3, 2, DType::F32);
  expect_error([&] { b->embed(t_bf16->view(), 0, 3, 1.0f, small->view()); }, "F32 [3, 2]");
}

TEST(CpuMemory, OpsWithoutBatchAreRefused) {
  auto b = cpu();
  auto table = b->alloc(3, 2, DType::F32);
  auto out = b->alloc(1, 2, DType::F32);
  expect_error([&] { b->embed(table->view(), 0, 3, 1.0f, out->view()); }, "set_batch");
}

TEST(CpuMemory, GatherLogitRows) {
  auto b = cpu();
  std::vector<float> data(7 * 3);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<float>(i);
  auto x = upload_f32(*b, data, 7, 3);
  ForwardBatch batch;
  batch.token_ids.assign(7, 0);
  batch.logit_rows = {6, 2, 2};
  b->set_batch(batch);
  auto out = b->alloc(3, 3, DType::F32);
  b->gather_logit_rows(x->view(), out->view());
  EXPECT_EQ(read(*b, out->view()), (std::vector<float>{18, 19, 20, 6, 7, 8, 6, 7, 8}));
  auto wrong = b->alloc(2, 3, DType::F32);
  expect_error([&] { b->gather_logit_rows(x->view(), wrong->view()); }, "out expected F32 [3, 3]");
}

}  // namespace
}  // namespace adallm::backend::test
