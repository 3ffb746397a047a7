// SamplingParams::validate: the OpenAI / vLLM ranges, checked once when a request arrives so that the
// sampler never meets a value it cannot apply.
#include <cmath>
#include <sstream>
#include <string>

#include "adallm/sampling_params.h"
#include "core/error.h"

namespace adallm {

namespace {

[[noreturn]] void reject(const char* field, const char* expected, double found) {
  std::ostringstream os;
  os << "sampling parameter " << field << ": expected " << expected << ", got " << found;
  throw Error(os.str());
}

}  // namespace

void SamplingParams::validate() const {
  // Written as negated "in range" tests so that NaN, which fails every comparison, is rejected too.
  if (!(temperature >= 0.0f && std::isfinite(temperature))) reject("temperature", "a finite value >= 0", temperature);
  if (top_k < -1) reject("top_k", "-1 or 0 (disabled) or a positive integer", top_k);
  if (!(top_p > 0.0f && top_p <= 1.0f)) reject("top_p", "a value in (0, 1]", top_p);
  if (!(min_p >= 0.0f && min_p <= 1.0f)) reject("min_p", "a value in [0, 1]", min_p);
  if (!(repetition_penalty > 0.0f && std::isfinite(repetition_penalty))) {
    reject("repetition_penalty", "a finite value > 0", repetition_penalty);
  }
  if (!(presence_penalty >= -2.0f && presence_penalty <= 2.0f)) {
    reject("presence_penalty", "a value in [-2, 2]", presence_penalty);
  }
  if (!(frequency_penalty >= -2.0f && frequency_penalty <= 2.0f)) {
    reject("frequency_penalty", "a value in [-2, 2]", frequency_penalty);
  }
}

}  // namespace adallm
