// Decode steps replayed as step graphs (see Model::enable_graphs): the padding of a step to a recorded
// size, recording (an eager step first, so that every workspace has its final size), and replay.
#include <algorithm>
#include <chrono>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/log.h"
#include "model/model.h"
#include "model/step_state.h"

namespace adallm::model {

namespace {

// Records what `issue` issues into `entry`.
template <typename Issue>
void record(backend::Backend& b, const Issue& issue, int64_t buffers_epoch, GraphEntry& entry) {
  b.begin_graph();
  try {
    issue();
  } catch (...) {
    b.abort_graph();
    throw;
  }
  entry.graph = b.end_graph();
  entry.memory_epoch = b.memory_epoch();
  entry.buffers_epoch = buffers_epoch;
}

// `real` (decode tokens, one per sequence, each wanting its logits; may be empty) padded to `size`
// sequences into `out`: a padding sequence holds one token at position 0 whose K/V go to the plan's pad
// page; page tables are widened to the plan's width; every row's logits are computed.
void pad_batch(const backend::ForwardBatch& real, const GraphPlan& plan, int64_t page_size, int64_t size,
               int32_t plan_keys, backend::ForwardBatch& out) {
  const auto n = static_cast<size_t>(real.num_tokens());
  const auto b = static_cast<size_t>(size);
  const auto width = static_cast<size_t>(plan.max_pages_per_seq);
  out.token_ids.assign(real.token_ids.begin(), real.token_ids.end());
  out.token_ids.resize(b, 0);
  out.positions.assign(real.positions.begin(), real.positions.end());
  out.positions.resize(b, 0);
  out.seq_index.resize(b);
  for (size_t i = 0; i < b; ++i) out.seq_index[i] = static_cast<int32_t>(i < n ? real.seq_index[i] : i);
  out.slot_mapping.assign(real.slot_mapping.begin(), real.slot_mapping.end());
  out.slot_mapping.resize(b, int64_t{plan.pad_page} * page_size);
  out.context_lens.assign(real.context_lens.begin(), real.context_lens.end());
  out.context_lens.resize(b, 1);
  out.page_tables.assign(b * width, -1);
  const auto real_width = static_cast<size_t>(real.max_pages_per_seq);
  for (size_t s = 0; s < b; ++s) {
    if (s < n) {
      std::copy_n(real.page_tables.begin() + static_cast<std::ptrdiff_t>(s * real_width), real_width,
                  out.page_tables.begin() + static_cast<std::ptrdiff_t>(s * width));
    } else {
      out.page_tables[s * width] = plan.pad_page;
    }
  }
  out.max_pages_per_seq = plan.max_pages_per_seq;
  out.logit_rows.resize(b);
  for (size_t i = 0; i < b; ++i) out.logit_rows[i] = static_cast<int32_t>(i);
  out.plan_keys = plan_keys;
}

void check_plan(const GraphPlan& plan, const backend::KvCache& cache) {
  const auto bad = [](const std::string& what) { throw Error("step graphs: " + what); };
  if (plan.batch_sizes.empty()) bad("no batch sizes");
  for (size_t i = 0; i < plan.batch_sizes.size(); ++i) {
    if (plan.batch_sizes[i] <= 0 || (i > 0 && plan.batch_sizes[i] <= plan.batch_sizes[i - 1])) {
      bad("batch sizes must be positive and ascending");
    }
  }
  const backend::KvCacheSpec& spec = cache.spec();
  if (plan.pad_page < 0 || plan.pad_page >= spec.num_pages) {
    bad("pad page " + std::to_string(plan.pad_page) + " is outside the cache's " + std::to_string(spec.num_pages) +
        " pages");
  }
  if (plan.max_keys <= 0 || plan.max_pages_per_seq < (plan.max_keys + spec.page_size - 1) / spec.page_size) {
    bad("max_pages_per_seq " + std::to_string(plan.max_pages_per_seq) + " does not hold max_keys " +
        std::to_string(plan.max_keys));
  }
}

}  // namespace

std::vector<int64_t> Model::enable_graphs(const GraphPlan& plan, backend::KvCache& cache) {
  backend::Backend& b = backend_;
  if (!b.supports_graphs()) throw Error("step graphs: the " + b.name() + " backend does not record them");
  if (tp_) throw Error("step graphs: not recorded under tensor parallelism yet (the collectives are not captured)");
  check_plan(plan, cache);
  disable_graphs();
  auto graphs = std::make_unique<StepGraphs>();
  graphs->plan = plan;
  graphs->cache = &cache;
  const int64_t largest = plan.batch_sizes.back();
  reserve(largest, largest);
  const int64_t page_size = cache.spec().page_size;
  // Keys planned for: short contexts first (their graphs split as eager short steps do), then long ones.
  std::vector<int32_t> plans = {std::min(kShortGraphKeys, plan.max_keys)};
  if (plan.max_keys > kShortGraphKeys) plans.push_back(plan.max_keys);
  // The largest batch's arrays first, so that the backend sizes its batch memory once; then one eager step
  // of every graph's shape, so that every workspace has its final size before anything is recorded.
  const auto set_padded = [&](int64_t size, int32_t keys) {
    pad_batch(backend::ForwardBatch{}, plan, page_size, size, keys, graphs->padded);
    b.set_batch(graphs->padded);
  };
  const auto start = std::chrono::steady_clock::now();
  set_padded(largest, plans.back());
  for (const int64_t size : plan.batch_sizes) {
    for (const int32_t keys : plans) {
      set_padded(size, keys);
      issue_step(size, size, cache);
    }
  }
  std::vector<int64_t> recorded;
  for (const int64_t size : plan.batch_sizes) {
    try {
      for (const int32_t keys : plans) {
        set_padded(size, keys);
        record(b, [&] { issue_step(size, size, cache); }, step_->epoch, graphs->entries[{size, keys}]);
      }
    } catch (const Error& error) {
      log::info("step graphs: batch ", size, " cannot be recorded (", error.what(), "); steps of more than ",
                recorded.empty() ? 0 : recorded.back(), " sequences run eagerly");
      for (const int32_t keys : plans) graphs->entries.erase({size, keys});
      break;
    }
    recorded.push_back(size);
  }
  const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  log::info("step graphs: ", graphs->entries.size(), " recorded for decode batches up to ",
            recorded.empty() ? 0 : recorded.back(), " in ", static_cast<int64_t>(ms), " ms");
  if (recorded.empty()) return recorded;
  graphs->plan.batch_sizes = recorded;
  graphs_ = std::move(graphs);
  return recorded;
}

void Model::disable_graphs() { graphs_.reset(); }
int64_t Model::graph_replays() const { return graphs_ ? graphs_->replays : 0; }
int64_t Model::graph_rerecordings() const { return graphs_ ? graphs_->rerecordings : 0; }

std::optional<backend::Tensor> Model::run_graphed(const backend::ForwardBatch& batch, backend::KvCache& cache) {
  if (!graphs_ || graphs_->cache != &cache) return std::nullopt;
  const GraphPlan& plan = graphs_->plan;
  const int64_t n = batch.num_tokens();
  if (n != batch.num_seqs() || n > plan.batch_sizes.back() || batch.plan_keys != 0 ||
      batch.max_pages_per_seq > plan.max_pages_per_seq || static_cast<int64_t>(batch.logit_rows.size()) != n) {
    return std::nullopt;
  }
  int32_t max_keys = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (batch.logit_rows[static_cast<size_t>(i)] != i) return std::nullopt;
    max_keys = std::max(max_keys, batch.positions[static_cast<size_t>(i)] + 1);
  }
  if (max_keys > plan.max_keys) return std::nullopt;
  const int64_t size = *std::lower_bound(plan.batch_sizes.begin(), plan.batch_sizes.end(), n);
  const int32_t keys = max_keys <= kShortGraphKeys ? std::min(kShortGraphKeys, plan.max_keys) : plan.max_keys;

  backend::Backend& b = backend_;
  pad_batch(batch, plan, cache.spec().page_size, size, keys, graphs_->padded);
  b.set_batch(graphs_->padded);
  reserve(size, size);
  GraphEntry& e = graphs_->entries[{size, keys}];
  const backend::Tensor logits = step_->logits->view().row_slice(0, n);
  if (e.graph && e.memory_epoch == b.memory_epoch() && e.buffers_epoch == step_->epoch) {
    b.replay_graph(*e.graph);
    ++graphs_->replays;
    return logits;
  }
  // No graph yet, or a stale one: this step runs eagerly and is recorded for the next.
  e.graph.reset();
  issue_step(size, size, cache);
  record(b, [&] { issue_step(size, size, cache); }, step_->epoch, e);
  ++graphs_->rerecordings;
  log::debug("step graphs: recorded batch ", size, " for contexts up to ", keys, " keys");
  return logits;
}

}  // namespace adallm::model
