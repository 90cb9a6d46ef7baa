// CRC-32 as zlib computes it (ISO-HDLC: reflected polynomial 0xEDB88320, initial value and
// final xor 0xFFFFFFFF): what a Vortex chunk records of its raw bytes (chunk.h), so that
// Python's zlib.crc32 checks the same value.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace vortex {
namespace chunk {

constexpr std::array<uint32_t, 256> make_crc32_table() {
  std::array<uint32_t, 256> table{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    table[i] = c;
  }
  return table;
}

inline uint32_t crc32(const uint8_t* data, size_t size) {
  static constexpr std::array<uint32_t, 256> table = make_crc32_table();
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

}  // namespace chunk
}  // namespace vortex
