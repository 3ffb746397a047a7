// Structured output after the reasoning, as vLLM does with a reasoning parser: a request whose prompt
// opened <think> generates its reasoning unconstrained, and its answer is held to the grammar (a
// response_format's or forced calls' JsonConstraint) from the token after the one that completes
// </think>. The engine sees one TokenConstraint; text parsing stays the ChoiceText's.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "adallm/token_constraint.h"
#include "structured/token_mask.h"

namespace adallm::server {

class AfterReasoningConstraint final : public TokenConstraint {
 public:
  // `close`: the text that ends the reasoning ("</think>"), found in the accepted tokens' bytes however
  // they split it (special tokens have none). `inner` governs every token after it.
  AfterReasoningConstraint(std::string close, std::shared_ptr<const structured::Vocabulary> vocabulary,
                           std::shared_ptr<TokenConstraint> inner);

  void allowed(std::span<uint32_t> bitmask) override;
  bool accept(int32_t token) override;
  // Only the answer can be complete: a reasoning that never closes ends by the engine's own rules
  // (an end-of-sequence token, max_tokens).
  bool finished() const override { return answering_ && inner_->finished(); }

  bool answering() const { return answering_; }

 private:
  std::string close_;
  std::shared_ptr<const structured::Vocabulary> vocabulary_;
  std::shared_ptr<TokenConstraint> inner_;
  bool answering_ = false;
  std::string tail_;  // the last bytes of the reasoning, fewer than close_: a split close tag
};

}  // namespace adallm::server
