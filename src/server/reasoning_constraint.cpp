// AfterReasoningConstraint (see reasoning_constraint.h).
#include "server/reasoning_constraint.h"

#include <utility>

namespace adallm::server {

AfterReasoningConstraint::AfterReasoningConstraint(std::string close,
                                                   std::shared_ptr<const structured::Vocabulary> vocabulary,
                                                   std::shared_ptr<TokenConstraint> inner)
    : close_(std::move(close)), vocabulary_(std::move(vocabulary)), inner_(std::move(inner)) {}

void AfterReasoningConstraint::allowed(std::span<uint32_t> bitmask) {
  if (answering_) {
    inner_->allowed(bitmask);
    return;
  }
  // The reasoning is free: every id of the model's vocabulary, as an unconstrained request has.
  const auto vocab_size = static_cast<size_t>(vocabulary_->vocab_size());
  for (size_t w = 0; w < bitmask.size() && w * 32 < vocab_size; ++w) {
    const size_t bits = vocab_size - w * 32;
    bitmask[w] = bits >= 32 ? ~0u : (1u << bits) - 1u;
  }
}

bool AfterReasoningConstraint::accept(int32_t token) {
  if (answering_) return inner_->accept(token);
  if (const std::string* bytes = vocabulary_->bytes(token)) {
    tail_ += *bytes;
    if (tail_.find(close_) != std::string::npos) {
      answering_ = true;  // bytes of this token after the tag, if any, are not held to the grammar
      tail_.clear();
      return true;
    }
    if (tail_.size() >= close_.size()) tail_.erase(0, tail_.size() - (close_.size() - 1));
  }
  return true;
}

}  // namespace adallm::server
