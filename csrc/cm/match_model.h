// The match models' parameters and per-lane state (Match). While the earlier occurrence a
// match model follows agrees with the bytes coded, it predicts the byte that followed that
// occurrence, with a probability learnt per match length; occurrences are found through a
// table of positions hashed by the last kMatchOrder[m] bytes, and checked byte by byte.
//
// Their code is ContextModel's (context_model.h: match_slot, update_match, match_expects,
// match_index): it shares the byte being coded, the lane and the frame with the contexts.
#pragma once

#include <cstddef>
#include <cstdint>

namespace vortex {
namespace cm {

// Match models: each follows the last earlier occurrence of the lane's last kMatchOrder[m]
// bytes (a short one finds repeats soon, a long one picks the right one among many).
constexpr int kMatchModels = 2;
constexpr int kMatchOrder[kMatchModels] = {6, 16};
constexpr uint32_t kMaxMatchLength = 65535;

struct Match {
  size_t pointer = 0;   // frame position the match predicts
  uint32_t length = 0;  // bytes that agree before it; 0: no match
};

}  // namespace cm
}  // namespace vortex
