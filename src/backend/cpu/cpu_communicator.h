// The CPU backend's tensor-parallel collectives: the ranks are threads of one process, each with its own
// CPU backend, and the collectives meet at a barrier and read each other's host tensors — so that the
// sharded model runs in CI exactly as it will over NCCL, with sums in rank order (bit-identical on
// every rank). A rank that fails between collectives leaves the others waiting: the caller's threads
// must all run the same ops.
#pragma once

#include <memory>
#include <vector>

#include "backend/communicator.h"

namespace adallm::backend {

// One communicator per rank, ranks 0..size-1, sharing one group. Tensors are F32 (the CPU backend's
// activations); a collective over tensors whose shapes differ between ranks throws adallm::Error on every
// rank.
std::vector<std::unique_ptr<Communicator>> make_cpu_communicators(int size);

}  // namespace adallm::backend
