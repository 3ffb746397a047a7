// Names and sizes of DType.
#include "core/dtype.h"

#include <array>
#include <utility>

namespace adallm {
namespace {

struct Entry {
  DType dtype;
  std::string_view name;
  size_t size;
};

constexpr std::array<Entry, 16> kTable{{
    {DType::BOOL, "BOOL", 1},   {DType::U8, "U8", 1},     {DType::I8, "I8", 1},
    {DType::U16, "U16", 2},     {DType::I16, "I16", 2},   {DType::U32, "U32", 4},
    {DType::I32, "I32", 4},     {DType::U64, "U64", 8},   {DType::I64, "I64", 8},
    {DType::F16, "F16", 2},     {DType::BF16, "BF16", 2}, {DType::F32, "F32", 4},
    {DType::F64, "F64", 8},     {DType::F8_E4M3, "F8_E4M3", 1}, {DType::F8_E5M2, "F8_E5M2", 1},
    {DType::F8_E8M0, "F8_E8M0", 1},
}};

const Entry& entry(DType dtype) { return kTable[static_cast<size_t>(dtype)]; }

}  // namespace

std::string_view dtype_name(DType dtype) { return entry(dtype).name; }
size_t dtype_size(DType dtype) { return entry(dtype).size; }

std::optional<DType> parse_dtype(std::string_view name) {
  for (const Entry& e : kTable) {
    if (e.name == name) return e.dtype;
  }
  return std::nullopt;
}

bool is_float(DType dtype) {
  switch (dtype) {
    case DType::F16: case DType::BF16: case DType::F32: case DType::F64:
    case DType::F8_E4M3: case DType::F8_E5M2: case DType::F8_E8M0:
      return true;
    default:
      return false;
  }
}

}  // namespace adallm
