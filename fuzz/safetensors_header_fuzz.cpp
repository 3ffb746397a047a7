// libFuzzer target for io::parse_safetensors_header. Only adallm::Error may escape the parser; any other
// exception, a sanitizer report, or a parse result that breaks the header's own invariants is a finding.
// Each input is tried twice: as a whole file (exercises the length prefix), and as "header JSON, NUL,
// data" with a correct prefix added, so that mutations reach the JSON and layout checks directly.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <span>
#include <vector>

#include "core/error.h"
#include "io/safetensors.h"

namespace {

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "safetensors_header_fuzz: %s\n", what);
  std::abort();
}

// What a successful parse promises: spans inside the file, contiguous, sized by dtype and shape.
void check_invariants(const adallm::io::SafetensorsHeader& header, std::span<const uint8_t> bytes) {
  if (header.data_start < 8 || header.data_start > bytes.size()) finding("data_start outside the file");
  uint64_t cursor = 0;
  for (const adallm::io::TensorInfo& t : header.tensors) {
    if (t.offset != cursor) finding("tensors not contiguous in offset order");
    if (t.nbytes != static_cast<uint64_t>(t.numel()) * adallm::dtype_size(t.dtype)) finding("nbytes != numel * size");
    if (t.data != nullptr) finding("parse-only header handed out a data pointer");
    cursor += t.nbytes;
  }
  if (header.data_start + cursor != bytes.size()) finding("tensors do not cover the data section");
}

void run(std::span<const uint8_t> bytes) {
  try {
    check_invariants(adallm::io::parse_safetensors_header(bytes, "fuzz.safetensors"), bytes);
  } catch (const adallm::Error&) {
    // Rejected with a proper error: the expected outcome for most inputs.
  } catch (const std::exception& e) {
    std::fprintf(stderr, "non-adallm exception: %s\n", e.what());
    finding("exception other than adallm::Error");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  run({data, size});

  const uint8_t* nul = static_cast<const uint8_t*>(std::memchr(data, 0, size));
  const size_t header_len = nul ? static_cast<size_t>(nul - data) : size;
  std::vector<uint8_t> file(8);
  for (size_t i = 0; i < 8; ++i) file[i] = static_cast<uint8_t>(static_cast<uint64_t>(header_len) >> (8 * i));
  file.insert(file.end(), data, data + header_len);
  if (nul) file.insert(file.end(), nul + 1, data + size);
  run(file);
  return 0;
}
