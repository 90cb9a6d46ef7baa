// The adaptive probability map (APM, or SSE in paq8's terms): a second estimate of a
// probability in a small context, interpolated between 33 learnt values over the stretch
// domain; the mixing stage averages three of them with the final mixer (model.h).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernel_support.h"
#include "logistic.h"

namespace vortex {
namespace cm {

// An adaptive probability map: refines a probability in a context by interpolating between
// 33 learnt values over the stretch domain.
class ProbabilityMap {
 public:
  ProbabilityMap(size_t contexts, int rate) : t_(contexts * 33), rate_(rate) {
    for (size_t c = 0; c < contexts; ++c)
      for (int j = 0; j < 33; ++j) t_[c * 33 + j] = static_cast<uint16_t>(kSquashPoints[j]);
  }
  VORTEX_INLINE void prefetch(size_t context) const {
    __builtin_prefetch(&t_[context * 33]);
    __builtin_prefetch(&t_[context * 33 + 32]);
  }
  VORTEX_INLINE int32_t p(int32_t x, size_t context) {
    x = std::clamp(x, -kStretchLimit, kStretchLimit) + 2048;
    const size_t base = context * 33 + (x >> 7);
    const int32_t w = x & 127;
    index_ = base + (w >> 6);
    return (t_[base] * (128 - w) + t_[base + 1] * w) >> 7;
  }
  VORTEX_INLINE void update(int bit) {
    int32_t v = t_[index_];
    v += ((bit ? 65535 : 0) - v) >> rate_;
    t_[index_] = static_cast<uint16_t>(std::max(v, 1));
  }

 private:
  std::vector<uint16_t> t_;
  size_t index_ = 0;
  int rate_;
};

}  // namespace cm
}  // namespace vortex
