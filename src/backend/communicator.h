// Collectives across the ranks of a tensor-parallel group, on tensors of each rank's own backend: what a
// model split over several devices (model/tensor_parallel.h) needs between its ranks' ops. Every rank
// calls the same collectives in the same order, each rank from its own thread, and gets bit-identical
// results (sums in rank order). The CPU backend's group lives in one process (backend/cpu); NCCL's in
// backend/cuda. Who owns the ranks' threads and how a step reaches them is left to the caller.
#pragma once

#include "backend/tensor.h"

namespace adallm::backend {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int size() const = 0;
  virtual int rank() const = 0;
  // x ← Σ over the ranks of their x (same shape on every rank, F32 or the activation dtype).
  virtual void all_reduce_sum(Tensor x) = 0;
  // out [rows, size() · x.cols] ← every rank's x [rows, cols], rank r's at columns r · cols.
  virtual void all_gather_cols(const Tensor& x, Tensor out) = 0;
};

}  // namespace adallm::backend
