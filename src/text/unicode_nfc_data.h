// Tables behind NFC (Unicode canonical combining classes, canonical decompositions, primary composites),
// sorted by their first column for binary search. Generated data lives in unicode_nfc_data.cpp.
#pragma once

#include <cstddef>
#include <cstdint>

namespace adallm::text::unicode_data {

struct CccEntry {
  uint32_t cp, ccc;
};
struct DecompEntry {
  uint32_t cp, first, second;
};  // second == 0: singleton decomposition
struct CompEntry {
  uint32_t first, second, composite;
};

extern const CccEntry kCcc[];
extern const size_t kCccSize;
extern const DecompEntry kDecomp[];
extern const size_t kDecompSize;
extern const CompEntry kComp[];
extern const size_t kCompSize;

}  // namespace adallm::text::unicode_data
