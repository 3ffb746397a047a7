// In-process collectives for CPU ranks; see cpu_communicator.h.
#include "backend/cpu/cpu_communicator.h"

#include <barrier>
#include <string>

#include "core/error.h"

namespace adallm::backend {
namespace {

struct Group {
  explicit Group(int size) : published(static_cast<size_t>(size)), sync(size) {}
  std::vector<Tensor> published;  // each rank's operand of the current collective
  std::barrier<> sync;
};

class CpuCommunicator final : public Communicator {
 public:
  CpuCommunicator(std::shared_ptr<Group> group, int rank) : group_(std::move(group)), rank_(rank) {}
  int size() const override { return static_cast<int>(group_->published.size()); }
  int rank() const override { return rank_; }

  void all_reduce_sum(Tensor x) override {
    publish(x, "all_reduce_sum");
    // Each rank sums every rank's values in rank order into its own scratch, and writes x only after
    // every rank has read all of them.
    scratch_.resize(static_cast<size_t>(x.numel()));
    for (int64_t r = 0; r < x.rows; ++r) {
      for (int64_t c = 0; c < x.cols; ++c) {
        float sum = 0.0f;
        for (const Tensor& t : group_->published) sum += t.row<const float>(r)[c];
        scratch_[static_cast<size_t>(r * x.cols + c)] = sum;
      }
    }
    group_->sync.arrive_and_wait();
    for (int64_t r = 0; r < x.rows; ++r) {
      for (int64_t c = 0; c < x.cols; ++c) x.row<float>(r)[c] = scratch_[static_cast<size_t>(r * x.cols + c)];
    }
  }

  void all_gather_cols(const Tensor& x, Tensor out) override {
    if (out.dtype != DType::F32 || out.rows != x.rows || out.cols != x.cols * size()) {
      throw Error("all_gather_cols: out " + out.describe() + " for " + std::to_string(size()) + " ranks of " + x.describe());
    }
    publish(x, "all_gather_cols");
    for (int q = 0; q < size(); ++q) {
      const Tensor& t = group_->published[static_cast<size_t>(q)];
      for (int64_t r = 0; r < x.rows; ++r) {
        for (int64_t c = 0; c < x.cols; ++c) out.row<float>(r)[q * x.cols + c] = t.row<const float>(r)[c];
      }
    }
    group_->sync.arrive_and_wait();  // every rank has read every x before any rank changes its own
  }

 private:
  // Makes x visible to the other ranks and waits for theirs; every rank then checks every shape, so that
  // a mismatch throws on all of them alike (none is left waiting at the next barrier).
  void publish(const Tensor& x, const char* op) {
    if (x.dtype != DType::F32) throw Error(std::string(op) + ": the CPU ranks exchange F32 tensors, not " + x.describe());
    group_->published[static_cast<size_t>(rank_)] = x;
    group_->sync.arrive_and_wait();
    for (const Tensor& t : group_->published) {
      if (t.rows != x.rows || t.cols != x.cols || t.dtype != x.dtype) {
        throw Error(std::string(op) + ": rank " + std::to_string(rank_) + " has " + x.describe() +
                    ", another rank " + t.describe());
      }
    }
  }

  std::shared_ptr<Group> group_;
  int rank_;
  std::vector<float> scratch_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> make_cpu_communicators(int size) {
  if (size < 1) throw Error("make_cpu_communicators: size " + std::to_string(size) + " (expected at least 1)");
  auto group = std::make_shared<Group>(size);
  std::vector<std::unique_ptr<Communicator>> comms;
  for (int r = 0; r < size; ++r) comms.push_back(std::make_unique<CpuCommunicator>(group, r));
  return comms;
}

}  // namespace adallm::backend
