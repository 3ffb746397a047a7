// A loaded model: its config, its weights resident in a Backend, and one forward step over a batch of
// tokens whose K/V go into a paged cache. The per-architecture layer code is in arch/; scheduling, page
// allocation and sampling are the engine's.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "backend/backend.h"
#include "backend/communicator.h"
#include "io/model_config.h"
#include "io/quant_config.h"
#include "model/tensor_parallel.h"

namespace adallm::model {

// The weights of one layer as the backend holds them (null / empty where the architecture has none).
struct LayerWeights {
  std::unique_ptr<backend::Buffer> input_layernorm, post_attention_layernorm;
  std::unique_ptr<backend::Buffer> pre_feedforward_layernorm, post_feedforward_layernorm;  // gemma3
  std::unique_ptr<backend::Linear> qkv_proj;  // q, k, v stacked along the output
  std::unique_ptr<backend::Linear> o_proj;
  std::unique_ptr<backend::Buffer> q_norm, k_norm;  // [1, head_dim]
  std::unique_ptr<backend::Linear> gate_up_proj;    // dense MLP: gate, up stacked
  std::unique_ptr<backend::Linear> down_proj;
  std::unique_ptr<backend::Linear> router;  // MoE: [num_experts, hidden_size]
  std::unique_ptr<backend::Experts> experts;
};

struct ModelWeights {
  std::unique_ptr<backend::Buffer> embed_tokens;  // [vocab_size (this rank's rows), hidden_size], checkpoint dtype
  float embed_scale = 1.0f;                        // gemma3: sqrt(hidden_size) rounded to that dtype
  std::vector<LayerWeights> layers;
  std::unique_ptr<backend::Buffer> norm;
  std::unique_ptr<backend::Linear> lm_head;
  backend::RopeTable rope_full, rope_sliding;
  std::vector<float> k_scales, v_scales;  // per layer, for an FP8 KV cache
  bool has_kv_scales = false;
};

// Log-probabilities a step reports with its ids (Backend::logprobs_rows over the raw logits, before any
// penalty): per logit row, the sampled token's and the top_n most likely tokens'.
struct StepLogprobs {
  int64_t top_n = 0;                // in: 0 to backend::kMaxTopLogprobs
  std::vector<float> chosen;        // out: [num_logits]
  std::vector<int32_t> top_ids;     // out: [num_logits * top_n]
  std::vector<float> top_logprobs;  // out: [num_logits * top_n]
};

// Step graphs for decode steps (Model::enable_graphs): a step whose sequences each bring one token and
// want its logits is padded to the next recorded batch size and replayed as one graph.
struct GraphPlan {
  std::vector<int64_t> batch_sizes;  // ascending, > 0
  int32_t max_pages_per_seq = 0;     // every graphed step's page-table width (pages of max_model_len)
  int32_t pad_page = -1;             // a page of the cache no sequence uses: the padding tokens' K/V go there
  int32_t max_keys = 0;              // the longest context a graphed step may see (max_model_len)
};

// One rank of a tensor-parallel group: which part of the model it holds, and its collectives (which
// must outlive the model). Every rank runs the same steps, each on its own thread and backend.
struct TensorParallelRank {
  TensorParallelShard shard;
  backend::Communicator* comm = nullptr;
};

class Model {
 public:
  // Opens the checkpoint directory, checks and binds every tensor (model/ledger.h), and loads the
  // weights into `backend`. The backend must outlive the model. With `tp` (size > 1) the model loads and
  // runs its rank's shard: its query and KV heads (q/k/v rows, o_proj columns, its KV cache's heads), its
  // MLP rows (gate/up rows, down columns) and its vocabulary rows of lm_head; o_proj's and down_proj's
  // partial sums meet in an all-reduce and the logits in an all-gather, so every rank's forward returns
  // the whole model's logits. MoE layers split every expert's rows the same way (the router replicated).
  // The embedding is split by vocabulary rows like lm_head (each rank looks up its rows, zeros for the
  // others', and an all-reduce sums them). Step graphs are refused there.
  static std::unique_ptr<Model> load(const std::filesystem::path& dir, backend::Backend& backend,
                                     const TensorParallelRank* tp = nullptr);

  const io::ModelConfig& config() const { return config_; }
  const io::QuantConfig& quant() const { return quant_; }
  const std::filesystem::path& dir() const { return dir_; }
  std::string describe() const;
  bool has_kv_scales() const { return weights_.has_kv_scales; }  // "qwen3, 2 layers, NVFP4 (modelopt) weights"
  // Rows of the embedding table this model holds: vocab_size, or this rank's vocabulary rows under tensor
  // parallelism.
  int64_t embedding_rows() const { return weights_.embed_tokens->view().rows; }

  // A cache shaped for this model (per-layer FP8 scales from the checkpoint, 1.0 where it has none).
  backend::KvCacheSpec kv_cache_spec(int64_t num_pages, int64_t page_size, backend::KvCacheDType dtype) const;

  // One step: every token of `batch` runs through every layer (its K/V written into `cache`), and the
  // logits of batch.logit_rows come back: `logits` is resized to [num_logits, vocab_size] fp32.
  void forward(const backend::ForwardBatch& batch, backend::KvCache& cache, std::vector<float>& logits);
  // The same step, but only each logit row's argmax comes back (greedy sampling on the backend): ids is
  // resized to [num_logits], with backend::Backend::kArgmaxNonFinite / kArgmaxNoFinite for a row whose
  // logits hold NaN or +inf / no finite value.
  // With `logprobs`, the ids' log-probabilities come back too (its buffers are allocated at first use).
  // With `token_masks` ([num_logits * ((vocab_size + 31) / 32)] words, Backend::mask_logits's layout), the
  // tokens whose bit is clear cannot be picked; the log-probabilities stay those of the unmasked logits.
  void forward_greedy(const backend::ForwardBatch& batch, backend::KvCache& cache, std::vector<int32_t>& ids,
                      StepLogprobs* logprobs = nullptr, std::span<const uint32_t> token_masks = {});
  // The same step, sampled on the backend (Backend::sample_rows) under rows[i] for logit row i (rows has
  // one entry per batch.logit_rows): ids as forward_greedy's, with the same two codes.
  void forward_sample(const backend::ForwardBatch& batch, backend::KvCache& cache,
                      std::span<const backend::SamplingRow> rows, std::vector<int32_t>& ids,
                      StepLogprobs* logprobs = nullptr, std::span<const uint32_t> token_masks = {});

  // Allocates the backend memory of steps of up to `num_tokens` tokens and `num_logit_rows` logit rows up
  // front (forward grows it on demand otherwise, allocating mid-run).
  void reserve(int64_t num_tokens, int64_t num_logit_rows);

  // Records the step graphs of `plan` over `cache` (the backend must support_graphs()): for each batch
  // size, a graph for contexts up to kShortGraphKeys and one up to plan.max_keys (attention splits long
  // contexts more), each after one eager step over padding only. From then on a decode step of at most the
  // largest size on `cache` replays the graph of the smallest size that holds it; a graph made stale by
  // moved memory is recorded again at its next use. A size the backend cannot record (an op that needs the
  // host mid-step, e.g. MoE past its device-routed size) ends the list: the sizes before it are kept and
  // the reason is logged. Returns the sizes recorded. Other steps run eagerly.
  std::vector<int64_t> enable_graphs(const GraphPlan& plan, backend::KvCache& cache);
  void disable_graphs();
  // Steps replayed from a graph, and graphs recorded at a step's first use or after going stale, since
  // enable_graphs (0 without graphs): what the logs and tests see of the graphs working.
  int64_t graph_replays() const;
  int64_t graph_rerecordings() const;
  // Contexts up to this many keys replay the graphs planned for them (attention's splits as an eager
  // step of such contexts would choose); longer ones the graphs planned for GraphPlan::max_keys.
  static constexpr int32_t kShortGraphKeys = 2048;

  ~Model();

 private:
  struct StepBuffers;
  struct StepGraphs;
  Model(std::filesystem::path dir, backend::Backend& backend);
  // Runs the layers and the head; returns the logits [num_logits, vocab_size] in backend memory (no rows
  // when the batch asks for none).
  backend::Tensor run(const backend::ForwardBatch& batch, backend::KvCache& cache);
  // The ops of a step of `n` tokens whose first `rows` rows want logits, over the batch already set.
  backend::Tensor issue_step(int64_t n, int64_t rows, backend::KvCache& cache);
  // A decode step through its graph (recorded first if it has none or a stale one); null when `batch`
  // is not one the graphs serve.
  std::optional<backend::Tensor> run_graphed(const backend::ForwardBatch& batch, backend::KvCache& cache);
  // run(), then `token_masks` (if any) applied to the logits [num_logits, vocab_size], then `pick` turns
  // them (which it overwrites when `pick_overwrites`) into ids [num_logits, 1] I32 in backend memory,
  // which come back into `ids` (and their log-probabilities, over the logits before mask and pick, into
  // `logprobs`). `op` names the caller in errors.
  void run_to_ids(const backend::ForwardBatch& batch, backend::KvCache& cache, const char* op,
                  const std::function<void(backend::Tensor logits, backend::Tensor ids)>& pick, bool pick_overwrites,
                  std::vector<int32_t>& ids, StepLogprobs* logprobs, std::span<const uint32_t> token_masks);
  // The logprobs of `logits` at `ids` (both in backend memory) into `out`.
  void read_logprobs(const backend::Tensor& logits, const backend::Tensor& ids, StepLogprobs& out);

  std::filesystem::path dir_;
  backend::Backend& backend_;
  io::ModelConfig config_;
  // The layers' view of the config: with tensor parallelism, this rank's query heads, KV heads and
  // intermediate rows; else config_.
  io::ModelConfig rank_config_;
  std::optional<TensorParallelRank> tp_;
  io::QuantConfig quant_;
  ModelWeights weights_;
  std::unique_ptr<StepBuffers> step_;
  std::unique_ptr<StepGraphs> graphs_;
};

}  // namespace adallm::model
