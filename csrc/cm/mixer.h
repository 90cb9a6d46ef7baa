// The mixer: a learnt weighted sum of logistic inputs, squashed into a probability, with
// one of several weight sets picked by a context, trained online on each coded bit.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel_support.h"
#include "logistic.h"

namespace vortex {
namespace cm {

// A mixer predicts squash(sum_i w_i x_i) from logistic inputs x_i (within +-2047) with one of
// several weight sets, and moves the set along the gradient of the coding cost once the bit
// is known. Weights are 4.12 fixed point within +-4, so a product fits 26 bits and the sum of
// up to 64 products fits 32: 16-bit lanes of a vector unit compute it exactly.

constexpr int32_t kWeightLimit = 1 << 14;
constexpr int kWeightShift = 12;

template <int N>
class Mixer {
 public:
  // Learning rate 2^-shift_: the error is in units of 2^(shift_ - 16).
  Mixer(int sets, int32_t initial, int shift)
      : w_(size_t(sets) * N, static_cast<int16_t>(initial)), shift_(shift) {}

  VORTEX_INLINE void prefetch(int set) const {
    const int16_t* w = &w_[size_t(set) * N];
    __builtin_prefetch(w);
    __builtin_prefetch(w + N - 1);
  }
  VORTEX_INLINE int32_t mix(const int16_t* __restrict__ x, int set) {
    selected_ = &w_[size_t(set) * N];
    const int16_t* __restrict__ w = selected_;
    int32_t sum = 0;
    for (int i = 0; i < N; ++i) sum += x[i] * w[i];
    dot_ = std::clamp(sum >> kWeightShift, -kStretchLimit, kStretchLimit);
    p_ = squash_within(dot_);
    return dot_;
  }
  // w_i += round(x_i * e / 2^15), e = (bit - p) * 2^(16 - shift_): a rounding high
  // multiply of 16-bit lanes (x86's pmulhrsw), then a clamp.
  VORTEX_INLINE void update(const int16_t* __restrict__ x, int bit) {
    const int32_t error = ((bit << 16) - p_) >> shift_;  // |error| < 2^15
    // every change would round to 0 (|x| <= 2047): the weights stay as they are
    if (error > -8 && error < 8) return;
    int16_t* __restrict__ w = selected_;
    const int16_t e = static_cast<int16_t>(error);
    for (int i = 0; i < N; ++i) {
      // round(x * e / 2^15), written as compilers recognise pmulhrsw; |change| < 2^11 and
      // |w| <= 2^14: the sum fits 16 bits, and vector units add 16-bit lanes
      const int16_t change = static_cast<int16_t>((((x[i] * e) >> 14) + 1) >> 1);
      const int16_t sum = static_cast<int16_t>(w[i] + change);
      w[i] = std::clamp<int16_t>(sum, -kWeightLimit, kWeightLimit);
    }
  }
  int32_t p() const { return p_; }

 private:
  std::vector<int16_t> w_;
  int16_t* selected_ = nullptr;
  int32_t dot_ = 0, p_ = 32768;
  int shift_;
};

}  // namespace cm
}  // namespace vortex
