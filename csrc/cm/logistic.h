// The logistic domain that the mixers and the probability maps work in: stretch(p) =
// ln(p / (1 - p)) in units of 1/256, within +-2047, of a 16-bit probability, and squash,
// its inverse, by interpolation in a 33-point table (and both by lookup).
#pragma once

#include <algorithm>
#include <cstdint>

#include "kernel_support.h"

namespace vortex {
namespace cm {

constexpr int32_t kStretchLimit = 2047;

// round(65536 / (1 + e^(-x/256))) at x = -2048, -1920, ..., 2048.
constexpr int32_t kSquashPoints[33] = {
    22, 36, 60, 98, 162, 267, 439, 720, 1179, 1921, 3108, 4971, 7812, 11955, 17625, 24743,
    32768, 40793, 47911, 53581, 57724, 60565, 62428, 63615, 64357, 64816, 65097, 65269, 65374,
    65438, 65476, 65500, 65514};

// A 16-bit probability of a 1 from a logistic value, by linear interpolation.
VORTEX_INLINE int32_t squash(int32_t x) {
  x = std::clamp(x, -kStretchLimit, kStretchLimit) + 2048;
  const int32_t i = x >> 7, w = x & 127;
  return (kSquashPoints[i] * (128 - w) + kSquashPoints[i + 1] * w + 64) >> 7;
}

struct StretchTable {  // stretch of a 12-bit probability: the inverse of squash
  int16_t value[4096];
  StretchTable() {
    int next = 0;
    for (int x = -kStretchLimit; x <= kStretchLimit; ++x) {
      const int p = squash(x) >> 4;
      for (; next <= p; ++next) value[next] = static_cast<int16_t>(x);
    }
    for (; next < 4096; ++next) value[next] = kStretchLimit;
  }
};
const StretchTable kStretch;
VORTEX_INLINE int32_t stretch(int32_t p16) { return kStretch.value[p16 >> 4]; }

struct SquashTable {  // squash of every logistic value within the limit
  uint16_t value[2 * kStretchLimit + 1];
  SquashTable() {
    for (int x = -kStretchLimit; x <= kStretchLimit; ++x)
      value[x + kStretchLimit] = static_cast<uint16_t>(squash(x));
  }
};
const SquashTable kSquash;
// squash(x) for |x| <= kStretchLimit, by lookup
VORTEX_INLINE int32_t squash_within(int32_t x) { return kSquash.value[x + kStretchLimit]; }

}  // namespace cm
}  // namespace vortex
