// What a model keeps between steps (model.cpp, step_graphs.cpp): its step buffers and its step graphs.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <utility>

#include "backend/backend.h"
#include "model/arch/arch.h"
#include "model/model.h"

namespace adallm::model {

// Activations of the layers, then of the output head for the logit rows (the final norm's input gathered
// from the residual and the last layer's delta, its output, and the logits).
struct Model::StepBuffers {
  arch::ActivationBuffers layers;
  int64_t head_capacity = 0;
  std::unique_ptr<backend::Buffer> residual, delta, normed, logits, ids;
  // Tensor parallelism: this rank's logits [rows, vocab_shard] and every rank's [rows, size · vocab_shard].
  std::unique_ptr<backend::Buffer> rank_logits, gathered_logits;
  // logprobs, at first use (grown to the most rows asked): the raw logits kept from the sampler's
  // penalties, and the results.
  std::unique_ptr<backend::Buffer> raw_logits, chosen, top_ids, top_logprobs;
  // Counts the reallocations of `layers` and the head's buffers: a step graph recorded before one is stale.
  int64_t epoch = 0;
};

struct GraphEntry {
  std::unique_ptr<backend::Graph> graph;
  int64_t memory_epoch = -1;   // the backend's, at recording
  int64_t buffers_epoch = -1;  // StepBuffers::epoch at recording
};

struct Model::StepGraphs {
  GraphPlan plan;
  const backend::KvCache* cache = nullptr;
  std::map<std::pair<int64_t, int32_t>, GraphEntry> entries;  // by (batch size, planned keys)
  backend::ForwardBatch padded;                               // the step as the graph reads it
  int64_t replays = 0, rerecordings = 0;
};

}  // namespace adallm::model
