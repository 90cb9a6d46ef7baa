// The arithmetic coder every Vortex codec writes: torchac 0.9.3's (Mark Nelson's) 32-bit
// coder, over symbols given as [c_low, c_high) out of a total of 2^16. The cm codec codes one
// bit at a time with it (csrc/cm/coder.h), the model codecs rows of a multi-symbol CDF
// (csrc/neural/stream_coder.cpp); tests hold both to torchac's streams, bit for bit.
//
// State: low and high, 32 bits, the interval [low, high] (initially [0, 2^32 - 1]), and a
// count of pending (underflow) bits. Bits are written most significant first into bytes;
// the last byte is padded with zeros, and a reader takes bits past the end as zeros.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "kernel_support.h"

namespace vortex {

class ArithmeticEncoder {
 public:
  // Codes the symbol [c_low, c_high) of 2^16 (c_low < c_high <= 2^16).
  VORTEX_INLINE void encode(uint32_t c_low, uint32_t c_high) {
    const uint64_t span = uint64_t{high_} - low_ + 1;
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
  // The stream: one more bit (and the pending ones) saying which quarter low lies in, then
  // zeros to the end of the byte.
  std::string finish() {
    ++pending_;
    emit_with_pending(low_ < 0x40000000u ? 0 : 1);
    while (count_ != 0) emit(0);
    return std::move(out_);
  }
  void reserve(size_t bytes) { out_.reserve(bytes); }

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

// Decodes a stream of `size` bytes (never reading past it). Each symbol takes two calls:
// offset() and span() tell where the value lies in the interval, from which the caller finds
// the symbol [c_low, c_high) (a bit's comparison, a CDF's search), then consume(c_low,
// c_high) narrows the interval as the encoder did.
class ArithmeticDecoder {
 public:
  ArithmeticDecoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
    for (int i = 0; i < 32; ++i) shift_in();
  }
  // high - low + 1, the width of the interval.
  VORTEX_INLINE uint64_t span() const { return uint64_t{high_} - low_ + 1; }
  // How many bits it has read past the end of the stream (as zeros).
  VORTEX_INLINE uint64_t bits_past_end() const { return bits_past_end_; }
  // value - low + 1 in 64-bit arithmetic (wrapping as torchac's does where a corrupt stream
  // puts value below low): the symbol s is the one with c_low(s) * span <= offset * 2^16 - 1
  // < c_high(s) * span.
  VORTEX_INLINE uint64_t offset() const { return uint64_t{value_} - low_ + 1; }
  VORTEX_INLINE void consume(uint32_t c_low, uint32_t c_high) {
    const uint64_t width = span();
    high_ = (low_ - 1) + static_cast<uint32_t>((width * c_high) >> 16);
    low_ = low_ + static_cast<uint32_t>((width * c_low) >> 16);
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
  }

 private:
  VORTEX_INLINE void shift_in() {  // past the end of the stream, zeros (as torchac)
    if (cached_ == 0) {
      if (position_ == size_) {
        value_ <<= 1;
        ++bits_past_end_;
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
  uint64_t bits_past_end_ = 0;
};

}  // namespace vortex
