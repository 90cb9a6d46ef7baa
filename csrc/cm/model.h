// The model: MixingModel, the mixing stage (five mixers whose weight sets small contexts
// pick, a final mixer, three adaptive probability maps), which turns a bit's BitInputs
// into its probability of a 1; and Model, the context stage (context_model.h) and the
// mixing stage one bit after the other, as decoding (and encoding on one thread) runs them.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "apm.h"
#include "context_model.h"
#include "kernel_support.h"
#include "mixer.h"

namespace vortex {
namespace cm {

// The mixing stage: five mixers with weight sets picked by small contexts, a final mixer
// by bit position, and three adaptive probability maps (order 0, order 1, match state).
class MixingModel {
 public:
  MixingModel()
      : apm_order0_(256, 6), apm_order1_(65536, 6), apm_match_(64 * 2 * 8 + 8, 6),
        final_(8, 4096 / kMixers, 5) {
    mixers_.emplace_back(32 * (kContexts + 1), 4096 / 8, 4);
    mixers_.emplace_back(256, 4096 / 8, 4);
    mixers_.emplace_back(2048, 4096 / 8, 4);
    mixers_.emplace_back(1024, 4096 / 8, 4);
    mixers_.emplace_back(4096, 4096 / 8, 4);
  }

  // Asks memory for the weight rows and the order-1 map's row a bit will read first.
  VORTEX_INLINE void prefetch(const uint16_t* sets, uint32_t order1) const {
    for (int k = 0; k < kMixers; ++k) mixers_[k].prefetch(sets[k]);
    apm_order1_.prefetch(order1);
  }

  // The probability (16 bits, 1..65535) that the bit is a 1.
  VORTEX_INLINE int32_t predict(const BitInputs& in) {
    for (int k = 0; k < kMixers; ++k)
      mixed_[k] = static_cast<int16_t>(mixers_[k].mix(in.x, in.sets[k]));
    const int32_t st = final_.mix(mixed_, in.bit);
    const int32_t a0 = apm_order0_.p(st, in.order1 & 0xff);
    const int32_t a1 = apm_order1_.p(st, in.order1);
    const int32_t am = apm_match_.p(st, in.match_context);
    return std::clamp((final_.p() + a0 + a1 + am + 2) >> 2, 1, 65535);
  }

  // Learns from the bit predict(in) predicted.
  VORTEX_INLINE void update(const BitInputs& in, int bit) {
    for (auto& mixer : mixers_) mixer.update(in.x, bit);
    final_.update(mixed_, bit);
    apm_order0_.update(bit);
    apm_order1_.update(bit);
    apm_match_.update(bit);
  }

 private:
  std::vector<Mixer<kMixerInputs>> mixers_;
  ProbabilityMap apm_order0_, apm_order1_, apm_match_;
  Mixer<kMixers> final_;
  int16_t mixed_[kMixers];
};

// Both stages, one bit after the other: what decoding needs (and encoding on one thread).
class Model {
 public:
  Model(const uint8_t* frame, size_t size, size_t lane_length, const Params& params)
      : context_(frame, size, lane_length, params) {}
  // A copy learns on from the same state (every table copied: about the memory of the
  // tables); what it points into between bytes is set again by begin_byte and predict.
  Model(const Model&) = default;
  Model(Model&&) = default;
  Model& operator=(const Model&) = delete;
  // As ContextModel::rebind.
  void rebind(const uint8_t* frame, size_t size, size_t lane_length) {
    context_.rebind(frame, size, lane_length);
  }

  // Prepares the coding of byte `t` of `lane`; the frame bytes it may read are known.
  VORTEX_INLINE void begin_byte(Lane& lane, size_t t) {
    context_.begin_byte(lane, t);
    mixing_.prefetch(context_.sets(), context_.order1());
  }
  // The probability (16 bits, 1..65535) that the next bit is a 1.
  VORTEX_INLINE int32_t predict() {
    context_.inputs(&in_);
    return mixing_.predict(in_);
  }
  VORTEX_INLINE void update(int bit) {
    mixing_.update(in_, bit);
    context_.update(bit);
    if (in_.bit < 7) mixing_.prefetch(context_.sets(), context_.order1());
  }
  // Ends the byte begun by begin_byte, now known to be `byte`.
  VORTEX_INLINE void end_byte(int byte) { context_.end_byte(byte); }

  // The two stages, for the two-thread encoder to start from copies of a primed model's.
  const ContextModel& context() const { return context_; }
  const MixingModel& mixing() const { return mixing_; }

 private:
  ContextModel context_;
  MixingModel mixing_;
  BitInputs in_;
};

}  // namespace cm
}  // namespace vortex
