// The temporary synthetic checkpoint of bench and serve, and its tokenizer (see synthetic_model.h).
#include "cli/synthetic_model.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "model/synthetic.h"
#include "text/pre_tokenizer.h"

namespace adallm::cli {

namespace fs = std::filesystem;

SyntheticModel::SyntheticModel(const std::string& preset, const std::string& purpose, bool with_tokenizer)
    : dir_(temp_dir(preset, purpose)) {
  fs::create_directories(dir_);
  try {
    // Random NVFP4 linear layers (codes and block scales), embeddings, lm_head and routers, so that tokens
    // and expert choices vary as in a real model and no kernel runs on zeros.
    const nlohmann::json config = model::preset_config(preset);
    model::write_synthetic_checkpoint(dir_, config, model::SyntheticLayout::nvfp4_modelopt, /*varied=*/true);
    if (with_tokenizer) write_synthetic_tokenizer(dir_ / "tokenizer.json", config.at("vocab_size").get<int64_t>());
  } catch (...) {
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
    throw;
  }
}

fs::path SyntheticModel::temp_dir(const std::string& preset, const std::string& purpose) {
  return fs::temp_directory_path() / ("adallm-" + purpose + "-" + preset + "-" + std::to_string(::getpid()));
}

SyntheticModel::~SyntheticModel() {
  std::error_code ignored;
  fs::remove_all(dir_, ignored);
}

void write_synthetic_tokenizer(const fs::path& file, int64_t vocab_size) {
  if (vocab_size < 256) {
    throw Error("a synthetic tokenizer needs at least the 256 byte tokens, the vocabulary has " +
                std::to_string(vocab_size));
  }
  nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
  for (int b = 0; b < 256; ++b) vocab[text::byte_to_unicode(static_cast<uint8_t>(b))] = b;
  // "Ġ" is the byte-level spelling of a space: the other ids decode as words.
  for (int64_t id = 256; id < vocab_size; ++id) vocab["\u0120t" + std::to_string(id)] = id;
  const nlohmann::ordered_json byte_level = {
      {"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  const nlohmann::ordered_json tokenizer = {{"version", "1.0"},
                                            {"truncation", nullptr},
                                            {"padding", nullptr},
                                            {"added_tokens", nlohmann::ordered_json::array()},
                                            {"normalizer", nullptr},
                                            {"pre_tokenizer", byte_level},
                                            {"post_processor", nullptr},
                                            {"decoder", byte_level},
                                            {"model",
                                             {{"type", "BPE"},
                                              {"dropout", nullptr},
                                              {"unk_token", nullptr},
                                              {"continuing_subword_prefix", nullptr},
                                              {"end_of_word_suffix", nullptr},
                                              {"fuse_unk", false},
                                              {"byte_fallback", false},
                                              {"vocab", vocab},
                                              {"merges", nlohmann::ordered_json::array()}}}};
  std::ofstream out(file);
  if (!out) throw Error("cannot write the synthetic tokenizer").file(file.string());
  out << tokenizer.dump();
  if (!out) throw Error("cannot write the synthetic tokenizer").file(file.string());
}

}  // namespace adallm::cli
