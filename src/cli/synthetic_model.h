// `--synthetic NAME` of bench and serve: a published model's shape (model::preset_config) as a temporary
// NVFP4 checkpoint with random weights, removed when the object goes. For the server it also gets a
// tokenizer, so that requests can be served: byte-level BPE with no merges, the 256 byte tokens and then
// " t<id>" for every other id of the vocabulary (text becomes byte tokens, any sampled id decodes).
// Its text is meaningless: it is for measuring speed.
#pragma once

#include <filesystem>
#include <string>

namespace adallm::cli {

class SyntheticModel {
 public:
  // Writes it into temp_dir(preset, purpose).
  SyntheticModel(const std::string& preset, const std::string& purpose, bool with_tokenizer);
  // adallm-PURPOSE-PRESET-PID in the temporary directory: known before the checkpoint is written, so that a
  // process ending early can remove what it wrote.
  static std::filesystem::path temp_dir(const std::string& preset, const std::string& purpose);
  ~SyntheticModel();
  SyntheticModel(const SyntheticModel&) = delete;
  SyntheticModel& operator=(const SyntheticModel&) = delete;

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_;
};

// The tokenizer.json described above, for a vocabulary of `vocab_size` ids (at least 256).
void write_synthetic_tokenizer(const std::filesystem::path& file, int64_t vocab_size);

}  // namespace adallm::cli
