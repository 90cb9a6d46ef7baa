// Adaptive probabilities: the counter (a probability of a 1 and a count in one 32-bit word)
// that every model's prediction is read from, its update rate 1/(n + 1.5), a batch of
// counters updated together, and AdaptiveMap, counters indexed by a small context.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel_support.h"

namespace vortex {
namespace cm {

// A counter is one 32-bit word: a 16-bit probability of a 1 in the high half (stored xor
// 2^15, so that a word of zeros is p = 1/2) and a count n in the low half. Each bit moves p
// by 1/(n + 1.5) of the way to the bit, n saturating at a limit: fast at first, steadier as
// evidence grows. (65535 * 2^15 / 1.5 < 2^31: the product fits an int32.)

VORTEX_INLINE int32_t counter_p16(uint32_t v) {
  return static_cast<int32_t>((v >> 16) ^ 0x8000u);
}
VORTEX_INLINE uint32_t counter_count(uint32_t v) { return v & 0xffff; }

// The rate 2^15 / (n + 1.5) = floor(2^16 / (2n + 3)), by a division vector units also do:
// 2^16 / (2n + 3) is never an integer, and lies at least 2^-16 of itself below the next
// one, far more than a float quotient's rounding error (2^-24 of it, IEEE 754 division
// being correctly rounded; less in a wider precision such as x87's). So the truncated
// quotient is the integer one for every n < 2^16 (also checked exhaustively).
VORTEX_INLINE int32_t counter_rate(uint32_t v) {
  const auto divisor = static_cast<int32_t>(2 * counter_count(v) + 3);
  return static_cast<int32_t>(65536.0f / static_cast<float>(divisor));
}
VORTEX_INLINE uint32_t counter_updated(uint32_t v, int bit, uint32_t limit) {
  const uint32_t n = counter_count(v);
  int32_t p = counter_p16(v);
  p += ((bit * 65535 - p) * counter_rate(v)) >> 15;
  return ((static_cast<uint32_t>(p) ^ 0x8000u) << 16) | (n + (n < limit));
}
VORTEX_INLINE void counter_update(uint32_t& v, int bit, uint32_t limit) {
  v = counter_updated(v, bit, limit);
}

// Counters read for one bit, updated together once it is known: kept side by side, the
// update is the same arithmetic on every lane of a vector unit.
template <int N>
struct CounterBatch {
  static constexpr int kLanes = (N + 7) / 8 * 8;
  alignas(32) uint32_t value[kLanes] = {};
  uint32_t* home[N] = {};  // where each value was read, and is written back

  // Reads counter i at `home`; its 16-bit probability.
  VORTEX_INLINE int32_t load(int i, uint32_t* at) {
    home[i] = at;
    return counter_p16(value[i] = *at);
  }
  // Updates counters 0 .. count - 1 with `bit`.
  VORTEX_INLINE void update(int bit, uint32_t limit, int count) {
    for (int i = 0; i < kLanes; ++i)
      value[i] = counter_updated(value[i], bit, limit);
    // (the counters are in other memory: no store below changes value or home)
    uint32_t* const* __restrict__ to = home;
    const uint32_t* __restrict__ from = value;
    if (count == N) {
#pragma GCC unroll 32
      for (int i = 0; i < N; ++i) *to[i] = from[i];
    } else {
      for (int i = 0; i < count; ++i) *to[i] = from[i];
    }
  }
};

// Probabilities indexed by a small context.
class AdaptiveMap {
 public:
  explicit AdaptiveMap(size_t size) : v_(size, 0) {}
  VORTEX_INLINE int32_t p(size_t i) const { return counter_p16(v_[i]); }
  VORTEX_INLINE void update(size_t i, int bit, uint32_t limit) {
    counter_update(v_[i], bit, limit);
  }
  VORTEX_INLINE uint32_t* at(size_t i) { return &v_[i]; }

 private:
  std::vector<uint32_t> v_;
};

}  // namespace cm
}  // namespace vortex
