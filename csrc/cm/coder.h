// The binary arithmetic coder: Encoder and Decoder code one bit at a time with a 16-bit
// probability, reproducing torchac's 32-bit coder bit for bit (torchac decodes only whole
// arrays, and here each bit's probability depends on the bits before it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "kernel_support.h"

namespace vortex {
namespace cm {

// torchac codes symbol s of a CDF c (16-bit, total 2^16) as the range [c[s], c[s+1]) with a
// 32-bit coder that writes bits, most significant first (see torchac_backend.cpp). A bit
// with probability p1/2^16 of being 1 is the symbol of the CDF (0, 2^16 - p1, 2^16).

class Encoder {
 public:
  VORTEX_INLINE void encode(int bit, int32_t p1) {
    const uint32_t c0 = 65536 - static_cast<uint32_t>(p1);
    const uint64_t span = uint64_t{high_} - low_ + 1;
    const uint32_t c_low = bit ? c0 : 0, c_high = bit ? 65536 : c0;
    high_ = (low_ - 1) + static_cast<uint32_t>((span * c_high) >> 16);
    low_ = low_ + static_cast<uint32_t>((span * c_low) >> 16);
    for (;;) {
      if (high_ < 0x80000000u) {
        emit_with_pending(0);
        low_ <<= 1;
        high_ = (high_ << 1) | 1;
      } else if (low_ >= 0x80000000u) {
        emit_with_pending(1);
        low_ <<= 1;
        high_ = (high_ << 1) | 1;
      } else if (low_ >= 0x40000000u && high_ < 0xC0000000u) {
        ++pending_;
        low_ = (low_ << 1) & 0x7FFFFFFFu;
        high_ = (high_ << 1) | 0x80000001u;
      } else {
        break;
      }
    }
  }
  std::string finish() {
    ++pending_;
    emit_with_pending(low_ < 0x40000000u ? 0 : 1);
    while (count_ != 0) emit(0);
    return std::move(out_);
  }

 private:
  VORTEX_INLINE void emit(int bit) {
    cache_ = static_cast<uint8_t>((cache_ << 1) | bit);
    if (++count_ == 8) {
      out_.push_back(static_cast<char>(cache_));
      count_ = 0;
    }
  }
  VORTEX_INLINE void emit_with_pending(int bit) {
    emit(bit);
    for (; pending_ > 0; --pending_) emit(!bit);
  }
  uint32_t low_ = 0, high_ = 0xFFFFFFFFu;
  uint64_t pending_ = 0;
  std::string out_;
  uint8_t cache_ = 0, count_ = 0;
};

class Decoder {
 public:
  Decoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
    for (int i = 0; i < 32; ++i) shift_in();
  }
  VORTEX_INLINE int decode(int32_t p1) {
    const uint32_t c0 = 65536 - static_cast<uint32_t>(p1);
    const uint64_t span = uint64_t{high_} - low_ + 1;
    // torchac: count = ((value - low + 1) * 2^16 - 1) / span, and the symbol is 1 when
    // count >= c0; without the division: c0 * span <= (value - low + 1) * 2^16 - 1.
    const int bit = uint64_t{c0} * span <= ((uint64_t{value_} - low_ + 1) << 16) - 1;
    const uint32_t c_low = bit ? c0 : 0, c_high = bit ? 65536 : c0;
    high_ = (low_ - 1) + static_cast<uint32_t>((span * c_high) >> 16);
    low_ = low_ + static_cast<uint32_t>((span * c_low) >> 16);
    for (;;) {
      if (low_ >= 0x80000000u || high_ < 0x80000000u) {
        low_ <<= 1;
        high_ = (high_ << 1) | 1;
        shift_in();
      } else if (low_ >= 0x40000000u && high_ < 0xC0000000u) {
        low_ = (low_ << 1) & 0x7FFFFFFFu;
        high_ = (high_ << 1) | 0x80000001u;
        value_ -= 0x40000000u;
        shift_in();
      } else {
        break;
      }
    }
    return bit;
  }

 private:
  VORTEX_INLINE void shift_in() {  // past the end of the stream, zeros (as torchac)
    if (cached_ == 0) {
      if (position_ == size_) {
        value_ <<= 1;
        return;
      }
      cache_ = data_[position_++];
      cached_ = 8;
    }
    value_ = (value_ << 1) | ((cache_ >> --cached_) & 1);
  }
  const uint8_t* data_;
  size_t size_, position_ = 0;
  uint32_t low_ = 0, high_ = 0xFFFFFFFFu, value_ = 0;
  uint8_t cache_ = 0, cached_ = 0;
};

}  // namespace cm
}  // namespace vortex
