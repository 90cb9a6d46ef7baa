// Frames: a frame cut into lanes and coded bit by bit, one stream per lane
// (encode_frame, decode_frame), with the model's ideal code length, and Interrupt, the way
// a caller stops a long frame. The two-thread encoder is in two_threads.h.
//
// A primed frame (a profile's warm start, FORMAT.md "CM payload") has one lane, and its
// model first learns `primed` priming bytes, exactly as if it coded them, writing nothing:
// encoder and decoder run the model over the buffer `priming bytes, then the frame`, and
// only the frame's bytes reach the stream. Both sides learn the same bytes in the same
// order, so they compute the same probabilities.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "coder.h"
#include "context_model.h"
#include "kernel_support.h"
#include "model.h"

namespace vortex {
namespace cm {

// A frame of n bytes is cut into `lanes` lanes of ceil(n / lanes) bytes (the last ones may be
// shorter or empty); step t codes byte t of every lane in lane order, each lane into its own
// stream. One lane codes the frame in order; more lanes let a decoder batch work across lanes.

inline std::vector<Lane> make_lanes(size_t size, size_t lanes, size_t* lane_length) {
  *lane_length = std::max<size_t>(1, (size + lanes - 1) / lanes);
  std::vector<Lane> result(lanes);
  for (size_t i = 0; i < lanes; ++i) {
    result[i].start = std::min(size, i * *lane_length);
    result[i].length = std::min(size, result[i].start + *lane_length) - result[i].start;
  }
  return result;
}

struct EncodedFrame {
  std::vector<std::string> streams;
  double ideal_bits = 0;  // the model's code length, -sum log2 p (statistics only)
};

// A way to stop a long frame: coding asks `poll` every kPollBytes bytes and, when it
// answers true (the caller's signal handlers, or a cancel request), sets `stopped` and
// returns what it has, which is of no use. (No exception: GCC's target_clones functions
// cannot pass one on.)
struct Interrupt {
  bool (*poll)(void* context) = nullptr;
  void* context = nullptr;
  bool stopped = false;
};
constexpr size_t kPollBytes = size_t{1} << 16;  // about a fifth of a second of coding

// Counts the bytes coded (or learnt) and asks `interrupt` once every kPollBytes of them: true to stop.
class InterruptCheck {
 public:
  explicit InterruptCheck(Interrupt* interrupt) : interrupt_(interrupt) {}
  VORTEX_INLINE bool stop_after(size_t bytes) {
    if (interrupt_ == nullptr || interrupt_->poll == nullptr) return false;
    since_ += bytes;
    if (since_ < kPollBytes) return false;
    since_ = 0;
    interrupt_->stopped = interrupt_->poll(interrupt_->context);
    return interrupt_->stopped;
  }

 private:
  Interrupt* interrupt_;
  size_t since_ = 0;
};

// Learns bytes [0, primed) of the single lane of a primed frame: each bit predicted and
// learnt as if coded, nothing written. False when `check` says stop.
VORTEX_INLINE bool learn_priming(Model& model, Lane& lane, const uint8_t* data, size_t primed,
                                 InterruptCheck& check) {
  for (size_t t = 0; t < primed; ++t) {
    model.begin_byte(lane, t);
    const int byte = data[t];
    for (int k = 7; k >= 0; --k) {
      model.predict();
      model.update((byte >> k) & 1);
    }
    model.end_byte(byte);
    if (check.stop_after(1)) return false;
  }
  return true;
}

// A primed model learnt once: the model and its lane after the priming bytes, from which
// each primed frame starts with a copy instead of learning the priming bytes again (for 1
// MiB of priming, a copy of the tables takes a few percent of the time learning takes). A
// frame coded from a copy is the frame coded after learning, byte for byte: the copy holds
// the state learning reaches, and in one lane the model reads only bytes before the one it
// codes, never its frame's size (rebind). Read-only once learnt: frames on several threads
// may copy it at once.
struct PrimedState {
  PrimedState(const uint8_t* bytes, size_t primed, const Params& settings)
      : prime(bytes, bytes + primed), params(settings),
        model(prime.data(), primed, std::max<size_t>(primed, 1), settings) {
    lane.length = primed;
  }
  PrimedState(const PrimedState&) = delete;  // the model points into `prime`
  PrimedState& operator=(const PrimedState&) = delete;

  const std::vector<uint8_t> prime;  // the priming bytes
  const Params params;                // the table size and stride it was learnt with
  Model model;
  Lane lane;
};

// Learns `state`'s priming bytes. False when `interrupt` stops it (`state` is then of no use).
VORTEX_MULTIVERSION bool learn_primed_state_body(PrimedState* state, Interrupt* interrupt,
                                                 std::exception_ptr* failure) {
  try {
    InterruptCheck check(interrupt);
    return learn_priming(state->model, state->lane, state->prime.data(), state->prime.size(),
                         check);
  } catch (...) {  // nothing may leave a clone (kernel_support.h)
    *failure = std::current_exception();
    return false;
  }
}

// A model that has learnt prime[0, primed) with `params`; null when `interrupt` stopped it.
inline std::unique_ptr<PrimedState> learn_primed_state(const uint8_t* prime, size_t primed,
                                                       const Params& params,
                                                       Interrupt* interrupt = nullptr) {
  if (primed == 0) throw std::invalid_argument("a primed model needs priming bytes");
  auto state = std::make_unique<PrimedState>(prime, primed, params);
  std::exception_ptr failure;
  const bool learnt = learn_primed_state_body(state.get(), interrupt, &failure);
  if (failure) std::rethrow_exception(failure);
  if (!learnt) return nullptr;
  return state;
}

// The model a frame starts with: a copy of `state`'s, coding on over `frame` (the priming
// bytes, then the frame: `size` bytes in one lane, whose Lane is `lane`), or a new one.
VORTEX_INLINE Model starting_model(const PrimedState* state, const uint8_t* frame, size_t size,
                                   size_t lane_length, const Params& params, Lane* lane) {
  if (state == nullptr) return Model(frame, size, lane_length, params);
  Model model(state->model);
  model.rebind(frame, size, lane_length);
  const size_t length = lane->length;
  *lane = state->lane;
  lane->length = length;
  return model;
}

// With `state` (no priming bytes given then), sets `prime` and `primed` to its priming
// bytes, after checking that it can code a frame of these lanes and settings.
inline void take_priming_of(const PrimedState* state, size_t lanes, const Params& params,
                            const uint8_t** prime, size_t* primed) {
  if (state == nullptr) return;
  if (*primed != 0) throw std::invalid_argument("priming bytes and a primed model");
  if (lanes != 1) throw std::invalid_argument("a primed frame has one lane");
  if (state->params.table_bits != params.table_bits || state->params.stride != params.stride)
    throw std::invalid_argument("the primed model was learnt with other table bits or stride");
  *prime = state->prime.data();
  *primed = state->prime.size();
}

// -log2(p / 2^16) for the statistics of encode_frame (not on the coding path): exact below
// 4096 and from 61440 (the likeliest bits, which cost almost nothing), else at the middle
// of p's step of 16 (within 0.2% of the exact cost), so that the tables stay in cache.
struct CodeLengthTable {
  float low[4096], middle[4096], high[4096];
  CodeLengthTable() {
    for (int i = 0; i < 4096; ++i) {
      low[i] = static_cast<float>(16.0 - std::log2(double(std::max(i, 1))));
      middle[i] = static_cast<float>(16.0 - std::log2(double(i * 16 + 8)));
      high[i] = static_cast<float>(16.0 - std::log2(double(61440 + i)));
    }
  }
  float bits(int32_t p) const {
    return p < 4096 ? low[p] : p >= 61440 ? high[p - 61440] : middle[p >> 4];
  }
};

// A frame's streams as they are written, one per lane, and with `measure` the model's ideal
// code length: what both encoders (one thread, two threads) do with each bit.
class FrameStreams {
 public:
  FrameStreams(size_t lanes, bool measure) : encoder_(lanes), measure_(measure) {}
  VORTEX_INLINE void code(size_t lane, int bit, int32_t p, double* bits) {
    encoder_[lane].encode(bit, p);
    if (measure_) *bits += code_length_->bits(bit ? p : 65536 - p);
  }
  EncodedFrame finish(double bits) {
    EncodedFrame result;
    for (auto& e : encoder_) result.streams.push_back(e.finish());
    result.ideal_bits = bits;
    return result;
  }

 private:
  static const CodeLengthTable* table() {
    static const CodeLengthTable code_length_table;
    return &code_length_table;
  }
  std::vector<Encoder> encoder_;
  bool measure_;
  const CodeLengthTable* code_length_ = table();
};

// Codes `size` bytes in `lanes` lanes; with `measure`, also sums the ideal code length, and
// with `probabilities`, appends each bit's probability of a 1 (u16, little-endian) to its
// lane's string there (for the tests that hold the streams equal to torchac's). With
// `primed` > 0 (one lane only), data[0, primed) are priming bytes, learnt (or, with
// `state`, already learnt there) and not coded, and the frame is data[primed, size).
VORTEX_MULTIVERSION EncodedFrame encode_frame_body(const uint8_t* data, size_t size,
                                                   size_t lanes, const Params& params,
                                                   bool measure,
                                                   std::vector<std::string>* probabilities,
                                                   Interrupt* interrupt,
                                                   std::exception_ptr* failure,
                                                   size_t primed, const PrimedState* state) {
  try {
    InterruptCheck check(interrupt);
    size_t lane_length = 0;
    std::vector<Lane> lane = make_lanes(size, lanes, &lane_length);
    Model model = starting_model(state, data, size, lane_length, params, lane.data());
    FrameStreams streams(lanes, measure);
    double bits = 0;  // a local, not a member: it stays in a register
    if (state == nullptr && primed > 0 && !learn_priming(model, lane[0], data, primed, check))
      return {};
    const size_t steps = lanes > 0 ? lane[0].length : 0;
    for (size_t t = primed; t < steps; ++t) {
      for (size_t i = 0; i < lanes && t < lane[i].length; ++i) {
        model.begin_byte(lane[i], t);
        const int byte = data[lane[i].start + t];
        for (int k = 7; k >= 0; --k) {
          const int bit = (byte >> k) & 1;
          const int32_t p = model.predict();
          streams.code(i, bit, p, &bits);
          if (probabilities != nullptr) {
            (*probabilities)[i].push_back(static_cast<char>(p & 0xff));
            (*probabilities)[i].push_back(static_cast<char>(p >> 8));
          }
          model.update(bit);
        }
        model.end_byte(byte);
      }
      if (check.stop_after(lanes)) return {};
    }
    return streams.finish(bits);
  } catch (...) {  // nothing may leave a clone (kernel_support.h)
    *failure = std::current_exception();
    return {};
  }
}

// The bytes a primed frame's model runs over: the priming bytes, then the frame.
inline std::string primed_buffer(const uint8_t* prime, size_t primed, const uint8_t* data,
                                 size_t size) {
  std::string buffer(primed + size, '\0');
  if (primed > 0) std::copy(prime, prime + primed, buffer.begin());
  if (size > 0) std::copy(data, data + size, buffer.begin() + primed);
  return buffer;
}

// With `state` (prime and primed are then not given), a frame primed with its bytes.
inline EncodedFrame encode_frame(const uint8_t* data, size_t size, size_t lanes,
                                const Params& params, bool measure,
                                std::vector<std::string>* probabilities = nullptr,
                                Interrupt* interrupt = nullptr,
                                const uint8_t* prime = nullptr, size_t primed = 0,
                                const PrimedState* state = nullptr) {
  std::exception_ptr failure;
  EncodedFrame result;
  take_priming_of(state, lanes, params, &prime, &primed);
  if (primed == 0) {
    result = encode_frame_body(data, size, lanes, params, measure, probabilities, interrupt,
                               &failure, 0, nullptr);
  } else {
    if (lanes != 1) throw std::invalid_argument("a primed frame has one lane");
    const std::string buffer = primed_buffer(prime, primed, data, size);
    result = encode_frame_body(reinterpret_cast<const uint8_t*>(buffer.data()), buffer.size(),
                               1, params, measure, probabilities, interrupt, &failure, primed,
                               state);
  }
  if (failure) std::rethrow_exception(failure);
  return result;
}

// A lane's decoder read more than kMaxBitsPastEnd bits past the end of its stream: the
// stream is too short for the lane's bytes (damaged, or not written by an encoder).
struct StreamOverrun : std::runtime_error {
  explicit StreamOverrun(size_t lane)
      : std::runtime_error("lane " + std::to_string(lane) + "'s stream ends before its bytes "
                           "do (more than " + std::to_string(kMaxBitsPastEnd) +
                           " bits read past its end)") {}
};

// Decodes `size` bytes from one stream per lane. With `primed` > 0 (one stream only), the
// model first learns the priming bytes prime[0, primed) as the encoder did (with `state`,
// which has learnt them, it starts from a copy of that model).
VORTEX_MULTIVERSION std::string decode_frame_body(
    const std::vector<std::pair<const uint8_t*, size_t>>& streams, size_t size,
    const Params& params, Interrupt* interrupt, std::exception_ptr* failure,
    const uint8_t* prime, size_t primed, const PrimedState* state) {
  try {
    InterruptCheck check(interrupt);
    const size_t lanes = streams.size();
    size_t lane_length = 0;
    std::vector<Lane> lane = make_lanes(primed + size, lanes, &lane_length);
    std::string out(primed + size, '\0');
    uint8_t* frame = reinterpret_cast<uint8_t*>(out.data());
    if (primed > 0) std::copy(prime, prime + primed, frame);
    Model model = starting_model(state, frame, primed + size, lane_length, params, lane.data());
    std::vector<Decoder> decoder;
    for (const auto& s : streams) decoder.emplace_back(s.first, s.second);
    if (state == nullptr && primed > 0 && !learn_priming(model, lane[0], frame, primed, check))
      return {};
    const size_t steps = lanes > 0 ? lane[0].length : 0;
    for (size_t t = primed; t < steps; ++t) {
      for (size_t i = 0; i < lanes && t < lane[i].length; ++i) {
        model.begin_byte(lane[i], t);
        int byte = 0;
        for (int k = 0; k < 8; ++k) {
          const int bit = decoder[i].decode(model.predict());
          model.update(bit);
          byte = byte << 1 | bit;
        }
        frame[lane[i].start + t] = static_cast<uint8_t>(byte);
        if (decoder[i].overran()) throw StreamOverrun(i);
        model.end_byte(byte);
      }
      if (check.stop_after(lanes)) return {};
    }
    if (primed > 0) out.erase(0, primed);
    return out;
  } catch (...) {  // nothing may leave a clone (kernel_support.h)
    *failure = std::current_exception();
    return {};
  }
}

inline std::string decode_frame(const std::vector<std::pair<const uint8_t*, size_t>>& streams,
                                size_t size, const Params& params,
                                Interrupt* interrupt = nullptr,
                                const uint8_t* prime = nullptr, size_t primed = 0,
                                const PrimedState* state = nullptr) {
  take_priming_of(state, streams.size(), params, &prime, &primed);
  if (primed > 0 && streams.size() != 1)
    throw std::invalid_argument("a primed frame has one lane");
  std::exception_ptr failure;
  std::string result = decode_frame_body(streams, size, params, interrupt, &failure, prime,
                                         primed, state);
  if (failure) std::rethrow_exception(failure);
  return result;
}

}  // namespace cm
}  // namespace vortex
