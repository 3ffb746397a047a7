// RoPE inverse frequencies for one RopeConfig, as transformers' modeling_rope_utils computes them:
// default, linear, llama3 and yarn (with its attention factor). Applying them is the backend's op.
#pragma once

#include <cstdint>

#include "backend/backend.h"
#include "io/model_config.h"

namespace adallm::model {

// inv_freq [head_dim / 2] in fp32 and the cos/sin multiplier. Throws adallm::Error for an odd head_dim or
// an unknown rope_type.
backend::RopeTable rope_table(const io::RopeConfig& rope, int64_t head_dim);

}  // namespace adallm::model
