// The encoder on two threads: the context stage on a thread of its own, ahead of the
// mixing stage and the coder, through a ring of BitInputs; the same streams as
// encode_frame's (frame.h), primed frames included (both stages learn the priming bytes,
// the mixing stage codes only the frame's; or, given a primed model learnt once, each
// stage starts from a copy of its part of that model).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "context_model.h"
#include "frame.h"
#include "kernel_support.h"
#include "model.h"

namespace vortex {
namespace cm {

// The encoder knows every bit in advance, and each stage's state depends only on the bytes
// (never on the other stage): so one thread can run the context stage ahead while another
// mixes and codes, through a ring of chunks of BitInputs. The streams are the same bytes as
// encode_frame's (the tests hold them equal); a decoder needs each bit before the next
// inputs, so decoding stays on one thread.

class InputRing {
 public:
  static constexpr size_t kChunkBytes = 256;  // a chunk holds the inputs of this many bytes
  static constexpr size_t kChunks = 16;
  static constexpr size_t kChunkRecords = kChunkBytes * 8;

  InputRing() : records_(kChunks * kChunkRecords) {}

  // Chunk n to fill, once the reader is done with what was there; nullptr once aborted.
  BitInputs* begin_writing(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return aborted_ || n < read_ + kChunks; });
    return aborted_ ? nullptr : &records_[(n % kChunks) * kChunkRecords];
  }
  void end_writing(size_t n) { advance(&written_, n + 1); }
  // Chunk n to read, once written; nullptr once aborted.
  const BitInputs* begin_reading(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [&] { return aborted_ || n < written_; });
    return aborted_ ? nullptr : &records_[(n % kChunks) * kChunkRecords];
  }
  void end_reading(size_t n) { advance(&read_, n + 1); }
  // Wakes both sides for good: the writer failed or the reader stops.
  void abort() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      aborted_ = true;
    }
    changed_.notify_all();
  }

 private:
  void advance(size_t* count, size_t value) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      *count = value;
    }
    changed_.notify_all();
  }

  std::vector<BitInputs> records_;
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t written_ = 0, read_ = 0;  // chunks
  bool aborted_ = false;
};

// The context stage of encode_frame_on_two_threads: every bit's inputs, in coding order
// (the priming bytes' first, for a primed frame).
// The context stage's model: a copy of `state`'s, coding on over `data` from the lane
// `state` left (as starting_model, frame.h), or a new one.
inline ContextModel starting_context(const PrimedState* state, const uint8_t* data,
                                     size_t size, size_t lane_length, const Params& params,
                                     Lane* lane) {
  if (state == nullptr) return ContextModel(data, size, lane_length, params);
  ContextModel model(state->model.context());
  model.rebind(data, size, lane_length);
  const size_t length = lane->length;
  *lane = state->lane;
  lane->length = length;
  return model;
}

VORTEX_MULTIVERSION void run_context_stage(const uint8_t* data, size_t size,
                                           const std::vector<Lane>& lanes, size_t lane_length,
                                           const Params& params, const PrimedState* state,
                                           size_t start, InputRing* ring,
                                           std::exception_ptr* failure) {
  try {
    std::vector<Lane> lane = lanes;  // this stage's own: begin_byte changes them
    ContextModel model = starting_context(state, data, size, lane_length, params, lane.data());
    size_t chunk = 0, bytes = 0;  // chunks written, bytes in the one being written
    BitInputs* in = nullptr;
    const size_t steps = lane.empty() ? 0 : lane[0].length;
    for (size_t t = start; t < steps; ++t) {
      for (size_t i = 0; i < lane.size() && t < lane[i].length; ++i) {
        if (bytes == 0 && (in = ring->begin_writing(chunk)) == nullptr) return;
        model.begin_byte(lane[i], t);
        const int byte = data[lane[i].start + t];
        for (int k = 7; k >= 0; --k) {
          model.inputs(in++);
          model.update((byte >> k) & 1);
        }
        model.end_byte(byte);
        if (++bytes == InputRing::kChunkBytes) {
          ring->end_writing(chunk++);
          bytes = 0;
        }
      }
    }
    if (bytes > 0) ring->end_writing(chunk);
  } catch (...) {  // nothing may leave a clone (kernel_support.h)
    *failure = std::current_exception();
    return;
  }
}

// The mixing stage of encode_frame_on_two_threads: codes the bits whose inputs the ring
// holds, but for the first `primed` bytes (a primed frame's priming bytes), which it only
// learns. An empty result with interrupt->stopped, or with nothing (the other side
// failed).
VORTEX_MULTIVERSION EncodedFrame run_mixing_stage(const uint8_t* data, size_t lanes_count,
                                                  const std::vector<Lane>& lane, bool measure,
                                                  size_t primed, const PrimedState* state,
                                                  size_t start, InputRing* ring,
                                                  Interrupt* interrupt, bool* complete,
                                                  std::exception_ptr* failure) {
  try {
    InterruptCheck check(interrupt);
    MixingModel model = state != nullptr ? state->model.mixing() : MixingModel();
    FrameStreams streams(lanes_count, measure);
    double bits = 0;
    size_t chunk = 0, bytes = 0;  // chunks read, bytes read of the current one
    const BitInputs* in = nullptr;
    const size_t steps = lane.empty() ? 0 : lane[0].length;
    for (size_t t = start; t < steps; ++t) {
      for (size_t i = 0; i < lanes_count && t < lane[i].length; ++i) {
        if (bytes == 0 && (in = ring->begin_reading(chunk)) == nullptr) return {};
        const int byte = data[lane[i].start + t];
        for (int k = 7; k >= 0; --k) {
          const int bit = (byte >> k) & 1;
          if (k > 0) model.prefetch(in[1].sets, in[1].order1);
          const int32_t p = model.predict(*in);
          if (t >= primed) streams.code(i, bit, p, &bits);
          model.update(*in, bit);
          ++in;
        }
        if (++bytes == InputRing::kChunkBytes) {
          ring->end_reading(chunk++);
          bytes = 0;
        }
      }
      if (check.stop_after(lanes_count)) return {};
    }
    *complete = true;
    return streams.finish(bits);
  } catch (...) {  // nothing may leave a clone (kernel_support.h)
    *failure = std::current_exception();
    return {};
  }
}

// encode_frame's streams, with the context stage on a thread of its own: about as fast as
// the slower stage, where encode_frame takes as long as both (for a machine with a core to
// spare). Polls `interrupt` on the calling thread. `prime`, `primed`, `state`: as
// encode_frame's (with `state`, each stage starts from a copy of its primed model's).
inline EncodedFrame encode_frame_on_two_threads(const uint8_t* data, size_t size, size_t lanes,
                                                const Params& params, bool measure,
                                                Interrupt* interrupt = nullptr,
                                                const uint8_t* prime = nullptr,
                                                size_t primed = 0,
                                                const PrimedState* state = nullptr) {
  take_priming_of(state, lanes, params, &prime, &primed);
  const size_t start = state != nullptr ? primed : 0;  // the bytes the stages run over
  std::string buffer;  // a primed frame's: the priming bytes, then the frame
  if (primed > 0) {
    if (lanes != 1) throw std::invalid_argument("a primed frame has one lane");
    buffer = primed_buffer(prime, primed, data, size);
    data = reinterpret_cast<const uint8_t*>(buffer.data());
    size = buffer.size();
  }
  size_t lane_length = 0;
  std::vector<Lane> lane = make_lanes(size, lanes, &lane_length);
  InputRing ring;
  std::exception_ptr context_failure, mixing_failure;
  std::thread context_thread;
  try {
    context_thread = std::thread([&] {
      run_context_stage(data, size, lane, lane_length, params, state, start, &ring,
                        &context_failure);
      if (context_failure) ring.abort();  // the mixing stage may wait for inputs
    });
  } catch (const std::system_error&) {  // no thread to be had: on this one
    if (state != nullptr)  // data is the buffer already; the state has the priming bytes
      return encode_frame(data + primed, size - primed, lanes, params, measure, nullptr,
                          interrupt, nullptr, 0, state);
    if (primed > 0)  // data is the buffer already
      return encode_frame(data + primed, size - primed, lanes, params, measure, nullptr,
                          interrupt, data, primed);
    return encode_frame(data, size, lanes, params, measure, nullptr, interrupt);
  }
  bool complete = false;
  EncodedFrame result = run_mixing_stage(data, lanes, lane, measure, primed, state, start,
                                         &ring, interrupt, &complete, &mixing_failure);
  if (!complete) ring.abort();  // stopped or failed: the context stage may wait for room
  context_thread.join();
  if (context_failure) std::rethrow_exception(context_failure);
  if (mixing_failure) std::rethrow_exception(mixing_failure);
  return result;
}

}  // namespace cm
}  // namespace vortex
