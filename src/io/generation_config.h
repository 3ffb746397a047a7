// A model's own sampling defaults from generation_config.json (do_sample, temperature, top_p, top_k,
// repetition_penalty), applied as vLLM applies them: what a request does not set comes from the model.
// Shared by `adallm run` and the server; the caller's explicit values are laid over the result.
#pragma once

#include <filesystem>

#include "adallm/sampling_params.h"

namespace adallm::io {

// SamplingParams' defaults overridden by `model_dir`/generation_config.json when it exists (no file: the
// plain defaults). do_sample false means greedy. A file that is not a JSON object, or a listed field of
// the wrong type, is an adallm::Error naming the file and the field.
SamplingParams generation_defaults(const std::filesystem::path& model_dir);

}  // namespace adallm::io
