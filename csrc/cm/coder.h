// The binary arithmetic coder of cm: Encoder and Decoder code one bit at a time with a 16-bit
// probability over the shared arithmetic coder (csrc/arithmetic_coder.h, torchac's coder),
// reproducing torchac's streams bit for bit (torchac decodes only whole arrays, and here each
// bit's probability depends on the bits before it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "arithmetic_coder.h"
#include "kernel_support.h"

namespace vortex {
namespace cm {

// A bit with probability p1/2^16 of being 1 (1 <= p1 <= 2^16 - 1) is the symbol of the CDF
// (0, 2^16 - p1, 2^16): 0 is [0, c0), 1 is [c0, 2^16), c0 = 2^16 - p1.

class Encoder {
 public:
  VORTEX_INLINE void encode(int bit, int32_t p1) {
    const uint32_t c0 = 65536 - static_cast<uint32_t>(p1);
    coder_.encode(bit ? c0 : 0, bit ? 65536 : c0);
  }
  std::string finish() { return coder_.finish(); }

 private:
  ArithmeticEncoder coder_;
};

class Decoder {
 public:
  Decoder(const uint8_t* data, size_t size) : coder_(data, size) {}
  VORTEX_INLINE int decode(int32_t p1) {
    const uint32_t c0 = 65536 - static_cast<uint32_t>(p1);
    // torchac: count = (offset * 2^16 - 1) / span, and the symbol is 1 when count >= c0;
    // without the division: c0 * span <= offset * 2^16 - 1.
    const int bit = uint64_t{c0} * coder_.span() <= (coder_.offset() << 16) - 1;
    coder_.consume(bit ? c0 : 0, bit ? 65536 : c0);
    return bit;
  }

 private:
  ArithmeticDecoder coder_;
};

}  // namespace cm
}  // namespace vortex
