// Element types a checkpoint may hold, with their safetensors names and sizes. The numeric codecs for
// the low-precision ones live in core/float_codecs.h.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace adallm {

enum class DType : uint8_t {
  BOOL, U8, I8, U16, I16, U32, I32, U64, I64,
  F16, BF16, F32, F64,
  F8_E4M3,  // e4m3fn: no Inf, NaN = 0x7F/0xFF
  F8_E5M2,
  F8_E8M0,  // exponent-only scale (MX formats); readable so that such checkpoints are named, not garbled
};

// The safetensors spelling ("BF16", "F8_E4M3", ...).
std::string_view dtype_name(DType dtype);
// Inverse of dtype_name; nullopt for an unknown spelling.
std::optional<DType> parse_dtype(std::string_view name);
size_t dtype_size(DType dtype);
bool is_float(DType dtype);

}  // namespace adallm
