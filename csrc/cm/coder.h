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

// The most bits a decoder reads past the end of its stream before the reference reader calls
// the stream damaged (FORMAT.md "End of stream"): the encoder writes all but at most 30 of the
// bits its decoder reads, so no stream it writes comes near; a short damaged or hostile
// stream stops here instead of decoding up to 2^28 bytes from zeros (a 1-byte stream claiming
// 8 MiB took 9 s to fail its checksum). A coded bit narrows the interval by at least
// 65535/65536 (p1 within 1..65535), so fewer than 45,426 bits are decoded per bit read: a
// lane decodes at most about 360 KB past its end.
constexpr uint64_t kMaxBitsPastEnd = 64;

class Decoder {
 public:
  Decoder(const uint8_t* data, size_t size) : coder_(data, size) {}
  // Whether it has read more than kMaxBitsPastEnd bits past the end of its stream.
  VORTEX_INLINE bool overran() const { return coder_.bits_past_end() > kMaxBitsPastEnd; }
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
