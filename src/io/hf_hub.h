// MODEL as a Hugging Face repo id. Its snapshot is taken from the hub cache (hf_cache.h) when complete,
// with no network; otherwise the revision's commit and file list come from
// {endpoint}/api/models/{repo}/revision/{revision}, and only the files AdaLLM reads are downloaded from
// {endpoint}/{repo}/resolve/{commit}/{file} into the cache: resumed after an interruption, checked against
// the listed sizes, renamed into place whole, under huggingface_hub's per-blob locks, with a progress bar.
// Offline (HF_HUB_OFFLINE), the cache or a clear error. Loading the files is left to the loaders.
#pragma once

#include <filesystem>
#include <string>

#include "io/hf_cache.h"

namespace adallm::io {

// MODEL -> the directory to load. A path that exists is returned as it is (a local directory always
// wins); a repo id ("org/name", "org/name@revision") becomes its snapshot directory through
// hub_snapshot(); anything else comes back unchanged, for the command to report as a missing directory.
// `revision` (--revision; "" for none) applies to a repo id only.
std::filesystem::path resolve_model(const std::string& model, const std::string& revision,
                                    const HubSettings& settings);

// The snapshot directory of `ref` in the cache, downloading what is missing (an error when offline).
std::filesystem::path hub_snapshot(const RepoRef& ref, const HubSettings& settings);

}  // namespace adallm::io
