// RowSampler: penalties and the temperature / min_p / top_k / top_p chain on one row of host logits, the
// reference of Backend::sample_rows. Work is done in double: penalties cannot overflow and softmax needs
// no care beyond max-subtraction. Orders of cost for vocab_size V: greedy O(V); top_k O(V log k)
// (streaming heap) or O(V) (nth_element); top_p O(V) (a radix pass over fp32 weight bits, then
// quickselect on mass), never a full sort. The request's RNG is the engine's: a row brings its uniform.
#include "backend/sampling.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <string>

#include "core/error.h"

namespace adallm::backend {

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();
// top_k up to this size uses a streaming heap; larger k an nth_element over a copy of the logits.
constexpr size_t kHeapTopK = 1024;
// top_p sorts outright once the undecided range is this small.
constexpr size_t kTopPSortSize = 256;
// Buckets of fp32 bits >> 20; a weight in (0, 1] lands in [0, 0x3F8].
constexpr size_t kTopPBuckets = 1024;

[[noreturn]] void bad_logit(size_t index, float value, size_t vocab_size) {
  throw Error("sampler: logits[" + std::to_string(index) + "] is " + (std::isnan(value) ? "NaN" : "+inf") +
              " (vocab_size " + std::to_string(vocab_size) + "); expected finite logits, or -inf for masked tokens")
      .hint("the forward pass produced a non-finite value");
}

[[noreturn]] void no_finite_logit(size_t vocab_size) {
  throw Error("sampler: all " + std::to_string(vocab_size) +
              " logits are -inf; expected at least one finite logit to choose from");
}

void check_vocab(std::span<const float> logits) {
  if (logits.empty()) throw Error("sampler: logits row is empty; expected vocab_size > 0 values");
  if (logits.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    throw Error("sampler: vocab_size " + std::to_string(logits.size()) + " does not fit an int32 token id");
  }
}

void check_ids(std::span<const int32_t> ids, size_t vocab_size, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || static_cast<size_t>(ids[i]) >= vocab_size) {
      throw Error(std::string("sampler: ") + what + "[" + std::to_string(i) + "] = " + std::to_string(ids[i]) +
                  " is outside [0, vocab_size=" + std::to_string(vocab_size) + ")");
    }
  }
}

}  // namespace

RowFault row_fault(std::span<const float> logits) {
  bool any_finite = false;
  for (const float v : logits) {
    if (!(v < std::numeric_limits<float>::infinity())) return RowFault::non_finite;  // NaN or +inf
    any_finite = any_finite || v > -std::numeric_limits<float>::infinity();
  }
  return any_finite ? RowFault::none : RowFault::no_finite;
}

int32_t RowSampler::greedy(std::span<const float> logits) {
  check_vocab(logits);
  int32_t best = -1;
  float best_value = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    // `v < inf` is false for NaN and +inf alike; one compare keeps the hot loop tight.
    if (!(v < std::numeric_limits<float>::infinity())) bad_logit(i, v, logits.size());
    if (v > best_value) {  // strict: the lowest index wins a tie
      best_value = v;
      best = static_cast<int32_t>(i);
    }
  }
  if (best < 0) no_finite_logit(logits.size());
  return best;
}

int32_t RowSampler::sample(std::span<const float> logits, const SamplingRow& row) {
  check_vocab(logits);
  check_ids(row.prompt_tokens, logits.size(), "prompt_tokens");
  check_ids(row.output_tokens, logits.size(), "output_tokens");
  if (row.greedy() && !row.penalized()) return greedy(logits);

  load_logits(logits);
  if (row.penalized()) apply_penalties(row);
  if (row.greedy()) return argmax_work();
  return sample_random(row);
}

void RowSampler::load_logits(std::span<const float> logits) {
  work_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    if (!(v < std::numeric_limits<float>::infinity())) bad_logit(i, v, logits.size());
    work_[i] = v;
  }
}

void RowSampler::apply_penalties(const SamplingRow& row) {
  const size_t vocab_size = work_.size();
  // resize() only ever appends zeros, so the all-zero invariant of both buffers survives a vocab change.
  if (row.repetition_penalty != 1.0f) {
    penalized_.resize(vocab_size, 0);
    const double penalty = row.repetition_penalty;
    // Each distinct token once, whether it occurs in the prompt, the output, or both (vLLM's mask).
    auto apply = [&](int32_t token) {
      if (penalized_[token]) return;
      penalized_[token] = 1;
      double& logit = work_[token];
      logit = logit > 0.0 ? logit / penalty : logit * penalty;
    };
    for (int32_t token : row.prompt_tokens) apply(token);
    for (int32_t token : row.output_tokens) apply(token);
    for (int32_t token : row.prompt_tokens) penalized_[token] = 0;
    for (int32_t token : row.output_tokens) penalized_[token] = 0;
  }
  if (row.frequency_penalty != 0.0f || row.presence_penalty != 0.0f) {
    output_counts_.resize(vocab_size, 0);
    const double frequency = row.frequency_penalty;
    const double presence = row.presence_penalty;
    for (int32_t token : row.output_tokens) ++output_counts_[token];
    for (int32_t token : row.output_tokens) {
      const int32_t count = output_counts_[token];
      if (count == 0) continue;  // already applied for an earlier occurrence
      work_[token] -= frequency * count + presence;
      output_counts_[token] = 0;
    }
  }
}

int32_t RowSampler::argmax_work() const {
  int32_t best = -1;
  double best_value = kNegInf;
  for (size_t i = 0; i < work_.size(); ++i) {
    if (work_[i] > best_value) {
      best_value = work_[i];
      best = static_cast<int32_t>(i);
    }
  }
  if (best < 0) no_finite_logit(work_.size());
  return best;
}

void RowSampler::select_top_k(size_t k) {
  // Ranked on the (penalized) logit: temperature > 0 and exp are monotonic, so the ranking is the
  // probability ranking. As in vLLM, every token tied with the k-th value is kept, so the result does
  // not depend on the order of equal logits.
  double kth = kNegInf;
  if (k <= kHeapTopK) {
    // A k-sized min-heap: after the first k tokens almost every logit fails the one compare with its top,
    // so this is a single streaming pass, several times faster than nth_element over a copy.
    select_scratch_.clear();
    for (double v : work_) {
      if (select_scratch_.size() < k) {
        if (v > kNegInf) {
          select_scratch_.push_back(v);
          std::push_heap(select_scratch_.begin(), select_scratch_.end(), std::greater<double>());
        }
      } else if (v > select_scratch_.front()) {
        std::pop_heap(select_scratch_.begin(), select_scratch_.end(), std::greater<double>());
        select_scratch_.back() = v;
        std::push_heap(select_scratch_.begin(), select_scratch_.end(), std::greater<double>());
      }
    }
    if (select_scratch_.size() == k) kth = select_scratch_.front();
  } else {
    select_scratch_.clear();
    for (double v : work_) {
      if (v > kNegInf) select_scratch_.push_back(v);
    }
    if (k < select_scratch_.size()) {
      std::nth_element(select_scratch_.begin(), select_scratch_.begin() + static_cast<std::ptrdiff_t>(k - 1),
                       select_scratch_.end(), std::greater<double>());
      kth = select_scratch_[k - 1];
    }
  }
  for (size_t i = 0; i < work_.size(); ++i) {
    if (work_[i] > kNegInf && work_[i] >= kth) candidates_.push_back({0.0f, static_cast<int32_t>(i)});
  }
}

void RowSampler::select_top_p(float top_p) {
  const size_t n = candidates_.size();
  if (top_p >= 1.0f || n <= 1) return;
  double total = 0.0;
  for (const Candidate& c : candidates_) total += c.weight;
  double target = static_cast<double>(top_p) * total;

  // The cutoff is searched in ranked_, a reordered copy of (part of) the candidates, so that candidates_
  // keeps its token order for the draw; the kept set is then one filter pass over it (below).
  ranked_.clear();
  if (n > kTopPSortSize) {
    // Radix pass: positive floats order like their bit patterns, so bits >> 20 (exponent and 3 mantissa
    // bits) buckets the weights in order. One pass finds the bucket where the mass crosses target; the
    // buckets above are kept whole and only the boundary bucket is searched further.
    bucket_mass_.assign(kTopPBuckets, 0.0);
    auto bucket_of = [](float weight) {
      return std::min<size_t>(std::bit_cast<uint32_t>(weight) >> 20, kTopPBuckets - 1);
    };
    for (const Candidate& c : candidates_) bucket_mass_[bucket_of(c.weight)] += c.weight;
    size_t boundary = kTopPBuckets;
    double above = 0.0;
    for (size_t b = kTopPBuckets; b-- > 0;) {
      if (above + bucket_mass_[b] >= target) {
        boundary = b;
        break;
      }
      above += bucket_mass_[b];
    }
    if (boundary == kTopPBuckets) return;  // rounding kept the sum a hair below target: keep everything
    target -= above;
    for (const Candidate& c : candidates_) {
      if (bucket_of(c.weight) == boundary) ranked_.push_back(c);
    }
  } else {
    ranked_.assign(candidates_.begin(), candidates_.end());
  }

  // Highest weight first; the token id breaks ties so that the kept set does not depend on the algorithm.
  auto before = [](const Candidate& a, const Candidate& b) {
    return a.weight > b.weight || (a.weight == b.weight && a.token < b.token);
  };
  auto at = [this](size_t i) { return ranked_.begin() + static_cast<std::ptrdiff_t>(i); };
  size_t lo = 0;               // [0, lo) is known to be kept
  size_t hi = ranked_.size();  // the cutoff lies in [lo, hi); [hi, size) is dropped
  // Quickselect on probability mass for a boundary bucket that is still large (many equal weights): each
  // round halves [lo, hi) with nth_element, so the search stays O(n).
  while (hi - lo > kTopPSortSize) {
    const size_t mid = lo + (hi - lo) / 2;
    std::nth_element(at(lo), at(mid), at(hi), before);
    double mass = 0.0;
    for (size_t i = lo; i < mid; ++i) mass += ranked_[i].weight;
    if (mass >= target) {
      hi = mid;
    } else {
      target -= mass;
      lo = mid;
    }
  }
  std::sort(at(lo), at(hi), before);
  double cumulative = 0.0;
  for (size_t j = lo; j < hi; ++j) {
    cumulative += ranked_[j].weight;
    if (cumulative >= target) {
      hi = j + 1;
      break;
    }
  }
  // Without a break, rounding left the sum a hair below target and all of [lo, hi) stays. `before` is a
  // strict total order, so the kept set is exactly the candidates not after the last kept one; filtering
  // the token-ordered list by it is O(n), cheaper than sorting the kept set back into token order (it can
  // be most of the vocabulary at top_p 0.99) and than marking kept tokens in a [vocab_size] array.
  const Candidate cut = ranked_[hi - 1];
  size_t kept = 0;
  for (const Candidate& c : candidates_) {
    if (!before(cut, c)) candidates_[kept++] = c;
  }
  candidates_.resize(kept);
}

int32_t RowSampler::sample_random(const SamplingRow& row) {
  const size_t vocab_size = work_.size();
  const double max_logit = *std::max_element(work_.begin(), work_.end());
  if (!(max_logit > kNegInf)) no_finite_logit(vocab_size);

  // Weights are relative to the most likely token (weight exactly 1), so min_p's "probability < min_p *
  // max probability" is `weight < min_p`. min_p commutes with top_k: the most likely token survives
  // top_k, so its probability, the threshold's base, is the same either way.
  const double temperature = row.temperature;
  const float min_p = row.min_p;
  auto weight_of = [&](size_t token) {
    return std::exp(static_cast<float>((work_[token] - max_logit) / temperature));  // -inf gives 0
  };
  candidates_.clear();
  if (row.top_k > 0 && static_cast<size_t>(row.top_k) < vocab_size) {
    select_top_k(static_cast<size_t>(row.top_k));
    size_t kept = 0;
    for (const Candidate& c : candidates_) {
      const float weight = weight_of(static_cast<size_t>(c.token));
      if (weight > 0.0f && weight >= min_p) candidates_[kept++] = {weight, c.token};
    }
    candidates_.resize(kept);
  } else {
    for (size_t i = 0; i < vocab_size; ++i) {
      const float weight = weight_of(i);
      if (weight > 0.0f && weight >= min_p) candidates_.push_back({weight, static_cast<int32_t>(i)});
    }
  }
  // Never empty: the max token has weight 1 >= min_p.

  select_top_p(row.top_p);

  // The draw walks the kept tokens in token-id order, as the CUDA kernel does, so that the same uniform
  // picks the same token on both backends and the GPU sampler can be tested against this one token for
  // token (any fixed order gives the same distribution).
  double total = 0.0;
  for (const Candidate& c : candidates_) total += c.weight;
  const double threshold = row.uniform * total;
  double cumulative = 0.0;
  for (const Candidate& c : candidates_) {
    cumulative += c.weight;
    if (threshold < cumulative) return c.token;
  }
  return candidates_.back().token;  // threshold within rounding of total
}

}  // namespace adallm::backend
