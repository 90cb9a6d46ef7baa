// The context stage of the model: ContextModel turns the bytes before each bit into the
// mixers' inputs (BitInputs): the counters of eighteen hashed contexts (listed in
// begin_byte) and their runs, an order-0 model and the two match models (match_model.h),
// with the weight sets and probability-map contexts that the mixing stage (model.h) picks
// by. What a bit costs in memory lookups is here. The runs and the match models are kept
// in this class, not in their own, because they read and update its state for the byte
// being coded (the lane, its position, the partial byte, the contexts' first buckets).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "contexts.h"
#include "counters.h"
#include "kernel_support.h"
#include "logistic.h"
#include "match_model.h"

namespace vortex {
namespace cm {

struct Params {
  int table_bits;  // log2 of the buckets of each context table
  int stride;      // record length (0: none), chosen by the encoder
};

constexpr int kContexts = 18;
// the contexts' counters, then their runs; order 0, the match models, a bias
constexpr int kInputs = 2 * kContexts + 4;
constexpr int kMixerInputs = (kInputs + 7) / 8 * 8;
constexpr int kMixers = 5;

struct Lane {
  size_t start = 0, length = 0;  // frame bytes [start, start + length)
  uint64_t history = 0;           // the lane's last 8 bytes, the newest lowest
  uint64_t older = 0;             // the 8 bytes before those
  uint32_t word = 0;              // hash of the letters of the current word
  Match match[kMatchModels];
};

// What the mixing stage needs to predict one bit, all of it from the context stage: the
// mixers' inputs and weight sets, and the probability maps' contexts. The encoder may run
// the two stages on two threads, passing these along (encode_frame_on_two_threads).
struct BitInputs {
  alignas(32) int16_t x[kMixerInputs];  // the contexts' counters, then their runs; order 0,
                                        // the match models, a bias
  uint16_t sets[kMixers];               // each mixer's weight set (select_mixing)
  uint16_t order1;                      // the partial byte c0 (1..255) | previous byte << 8
  uint16_t match_context;               // the match probability map's row
  uint8_t bit;                          // which bit of the byte, 0 (the first) to 7
};

// The context stage: the contexts' tables, runs, order 0 and the match models, which turn the
// bytes before each bit into the mixers' inputs (what a bit costs in memory lookups is here).
class ContextModel {
 public:
  ContextModel(const uint8_t* frame, size_t size, size_t lane_length, const Params& params)
      : frame_(frame), size_(size), lane_length_(lane_length), stride_(params.stride),
        match_bits_(std::min(params.table_bits + 4, 24)),
        order0_(8 * 256), runs_(kContexts * 128 * 2), matches_(kMatchModels * 64 * 2) {
    for (int i = 0; i < kContexts; ++i) tables_.emplace_back(params.table_bits);
    for (int m = 0; m < kMatchModels; ++m) match_tables_.emplace_back(size_t{1} << match_bits_);
  }
  // A copy learns on from the same state in memory of its own; rebind() gives it its frame.
  ContextModel(const ContextModel&) = default;
  ContextModel(ContextModel&&) = default;
  ContextModel& operator=(const ContextModel&) = delete;

  // Codes on over `frame` (`size` bytes, lanes of `lane_length`), whose bytes before the
  // position reached are those this model learnt: a primed model's copy, given a frame
  // that starts with the priming bytes (frame.h, PrimedState).
  void rebind(const uint8_t* frame, size_t size, size_t lane_length) {
    frame_ = frame;
    size_ = size;
    lane_length_ = lane_length;
  }

  // Prepares the coding of byte `t` of `lane`; the frame bytes it may read are known.
  VORTEX_INLINE void begin_byte(Lane& lane, size_t t) {
    lane_ = &lane;
    t_ = t;
    position_ = lane.start + t;
    const uint64_t h = lane.history;
    const uint64_t c1 = h & 0xff;
    const uint64_t column2 = position_ & 1, column4 = position_ & 3, column8 = position_ & 7;
    uint64_t* c = context_hash_;
    // the lane's last bytes: orders 1, 2, 3 and 8, bytes 2, 3, 2-3, 2 and 4, 3-4 by 4-byte
    // column
    c[0] = hash_context(c1, 1);
    c[1] = hash_context(h & 0xffff, 2);
    c[2] = hash_context(h & 0xffffff, 3);
    c[3] = hash_context(h & 0xffff00, 4);
    c[5] = hash_context(h, 6);
    c[7] = hash_context(h & 0xff00ff00ull, 8);
    c[8] = hash_context((h & 0xffff0000ull) | column4, 9);
    c[16] = hash_context(h & 0xff00, 17);
    c[17] = hash_context(h & 0xff0000, 18);
    c[6] = hash_context(uint64_t{lane.word} << 8 | c1, 7);  // the word so far (text)
    // columns of 2-, 4- and 8-byte values: the same byte of the previous values
    c[13] = hash_context(back(2) | back(4) << 8 | column2 << 16, 14);
    c[11] = hash_context(back(4) | back(8) << 8 | column4 << 16, 12);
    c[4] = hash_context(back(8) | back(16) << 8 | column8 << 16, 5);
    c[15] = hash_context(back(4) | c1 << 8 | column4 << 16, 16);
    c[14] = hash_context(c1 | column8 << 8, 15);
    if (stride_ > 0) {  // records: the bytes one and two records back, and above-left
      const uint64_t above = back(stride_), above2 = back(2 * stride_);
      c[9] = hash_context(above | above2 << 8, 10);
      c[10] = hash_context(above | c1 << 8 | back(stride_ + 1) << 16, 11);
    } else {  // no records: 3-byte values, and bytes 1 and 8 back
      c[9] = hash_context(back(3) | back(6) << 8 | uint64_t(position_ % 3) << 16, 10);
      c[10] = hash_context(back(8) | c1 << 8 | column8 << 16, 11);
    }
    // indirect: what followed the last two occurrences of the previous byte
    c[12] = hash_context(c1 | uint64_t{indirect1_[c1]} << 8, 13);
    for (int i = 0; i < kContexts; ++i) tables_[i].prefetch(c[i]);
    seen_ = 0;
    running_ = 0;
    for (int i = 0; i < kContexts; ++i) {
      const Bucket* b = first_[i] = bucket_[i] = tables_[i].find(c[i]);
      seen_ += b->run_count != 0;
      run_byte_[i] = b->run_byte;
      run_base_[i] = (i * 128 + std::min<int>(b->run_count, 127)) * 2;
      running_ |= static_cast<uint32_t>(b->run_count != 0) << i;
    }
    // bit k of run_ones_[j]: whether context k's run byte has a 1 at bit j (from the top);
    // a multiply gathers the low bits of eight bytes into one
    static_assert(kContexts <= 24, "three words hold the run bytes");
    uint64_t run_bytes[3] = {};  // byte k of word w: context 8w + k's (on any byte order)
    for (int i = 0; i < kContexts; ++i)
      run_bytes[i / 8] |= uint64_t{run_byte_[i]} << (8 * (i % 8));
    for (int j = 0; j < 8; ++j) {
      uint32_t ones = 0;
      for (int w = 0; w < 3; ++w) {
        const uint64_t low_bits = (run_bytes[w] >> (7 - j)) & 0x0101010101010101ull;
        ones |= static_cast<uint32_t>((low_bits * 0x0102040810204080ull) >> 56) << (8 * w);
      }
      run_ones_[j] = ones;
    }
    for (int m = 0; m < kMatchModels; ++m) {
      const uint32_t length = lane.match[m].length;
      expected_[m] = length > 0 ? frame_[lane.match[m].pointer] : -1;
      match_bucket_[m] = length < 16 ? length : std::min(31, 12 + 31 - __builtin_clz(length));
    }
    longest_ = lane.match[1].length > lane.match[0].length ? 1 : 0;
    column_ = stride_ > 0 ? static_cast<int>(position_ % stride_) : static_cast<int>(t & 3);
    order2_hash_ = static_cast<uint32_t>(hash_context(h & 0xffff, 5) >> 52);
    bit_ = 0;
    c0_ = 1;
    select_mixing();
  }

  // The inputs of the mixing stage for the next bit.
  VORTEX_INLINE void inputs(BitInputs* in) {
    const int node = node_index();
    int16_t* x = in->x;
#pragma GCC unroll 32
    for (int i = 0; i < kContexts; ++i)
      x[i] = static_cast<int16_t>(stretch(counters_.load(i, &bucket_[i]->node[node])));
    // the runs: 0 from a context without one
    const uint32_t ones = run_ones_[bit_];
    int16_t* run_x = x + kContexts;
    for (int i = 0; i < kContexts; ++i) run_x[i] = 0;
    int runs = 0;
    for (uint32_t r = running_; r != 0; r &= r - 1) {
      const int i = __builtin_ctz(r);
      const int32_t p = run_counters_.load(runs++, runs_.at(run_base_[i] + (ones >> i & 1)));
      run_x[i] = static_cast<int16_t>(stretch(p));
    }
    runs_read_ = runs;
    int n = 2 * kContexts;
    x[n++] = stretch(order0_.p(bit_ << 8 | c0_));
    for (int m = 0; m < kMatchModels; ++m)
      x[n++] = match_expects(m) ? stretch(matches_.p(size_t(m) * 128 + match_index(m))) : 0;
    x[n++] = 256;
    static_assert(kInputs == kMixerInputs, "no input is left unset");
    for (int k = 0; k < kMixers; ++k) in->sets[k] = sets_[k];
    in->order1 = static_cast<uint16_t>(order1());
    in->match_context = static_cast<uint16_t>(
        match_expects(longest_) ? match_index(longest_) * 8 + bit_ : 64 * 2 * 8 + bit_);
    in->bit = static_cast<uint8_t>(bit_);
  }

  VORTEX_INLINE void update(int bit) {
    counters_.update(bit, 60, kContexts);
    run_counters_.update(bit, 255, runs_read_);
    const uint32_t ones = run_ones_[bit_];  // the runs whose byte agrees with the bit go on
    running_ &= bit ? ones : ~ones;
    order0_.update(bit_ << 8 | c0_, bit, 255);
    for (int m = 0; m < kMatchModels; ++m)
      if (match_expects(m)) matches_.update(size_t(m) * 128 + match_index(m), bit, 1023);
    c0_ = c0_ << 1 | bit;
    ++bit_;
    if (bit_ < 8) select_mixing();
    if (bit_ == 3) {  // the second nibble's buckets are one of two: ask memory for both
      // (their first bucket only: four lines a context would crowd the memory queue)
      for (int i = 0; i < kContexts; ++i) {
        tables_[i].prefetch_first(hash_context(context_hash_[i], c0_ << 1));
        tables_[i].prefetch_first(hash_context(context_hash_[i], c0_ << 1 | 1));
      }
    } else if (bit_ == 4) {  // the second nibble's buckets, keyed by the first nibble
      for (int i = 0; i < kContexts; ++i) {
        context_hash_[i] = hash_context(context_hash_[i], c0_);
        bucket_[i] = tables_[i].find(context_hash_[i]);
      }
    }
  }

  // Ends the byte begun by begin_byte, now known to be `byte`.
  VORTEX_INLINE void end_byte(int byte) {
    Lane& lane = *lane_;
    uint16_t& followers = indirect1_[lane.history & 0xff];
    followers = static_cast<uint16_t>(followers << 8 | byte);
    lane.older = lane.older << 8 | lane.history >> 56;
    lane.history = lane.history << 8 | static_cast<uint64_t>(byte);
    size_t slot[kMatchModels];
    for (int m = 0; m < kMatchModels; ++m) {  // read below: ask memory now
      slot[m] = match_slot(m, lane);
      __builtin_prefetch(&match_tables_[m][slot[m]]);
    }
    for (int i = 0; i < kContexts; ++i) {
      Bucket* b = first_[i];
      if (b->run_count != 0 && b->run_byte == byte) {
        if (b->run_count < 255) ++b->run_count;
      } else {
        b->run_byte = static_cast<uint8_t>(byte);
        b->run_count = 1;
      }
    }
    const bool letter = (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || byte >= 128;
    lane.word = letter ? (lane.word ^ static_cast<uint32_t>(byte | 32)) * 0x2F0F1u : 0;
    for (int m = 0; m < kMatchModels; ++m) update_match(m, lane, byte, slot[m]);
  }

  // The mixers' weight sets for the next bit.
  const uint16_t* sets() const { return sets_; }
  // The order-1 probability map's context for the next bit.
  uint32_t order1() const { return c0_ | (lane_->history & 0xff) << 8; }

 private:
  // The match table slot of the lane's last kMatchOrder[m] bytes.
  VORTEX_INLINE size_t match_slot(int m, const Lane& lane) const {
    const int order = kMatchOrder[m];
    const uint64_t context =
        order <= 8 ? lane.history & (~0ull >> (64 - 8 * order))
                   : lane.history ^ hash_context(lane.older & (~0ull >> (128 - 8 * order)), 98);
    return hash_context(context, 99 + m) >> (64 - match_bits_);
  }

  // Follows match model m past `byte`, or looks for a new match when it has none; `slot`
  // is match_slot(m, lane).
  VORTEX_INLINE void update_match(int m, Lane& lane, int byte, size_t slot) {
    Match& match = lane.match[m];
    if (match.length > 0) {
      if (frame_[match.pointer] == byte && match.pointer + 1 < size_ && known(match.pointer + 1)) {
        match.length = std::min(match.length + 1, kMaxMatchLength);
        ++match.pointer;
      } else {
        match.length = 0;
      }
    }
    const int order = kMatchOrder[m];
    if (t_ + 1 < static_cast<size_t>(order)) return;
    ZeroedArray<uint32_t>& table = match_tables_[m];
    if (match.length == 0 && table[slot] != 0) {
      // the frame position that followed the context's last occurrence: a match when it
      // is known and at least `order` bytes before it agree with the lane's last
      const size_t next = table[slot] - 1;
      if (next < size_ && known(next)) {
        const size_t before = next - 1;  // the occurrence's last byte, in the same lane
        const size_t reach = std::min<size_t>({32, before % lane_length_ + 1, t_ + 1});
        uint32_t length = 0;
        while (length < reach && frame_[before - length] == frame_[position_ - length]) ++length;
        if (length >= static_cast<uint32_t>(order)) {
          match.length = length;
          match.pointer = next;
        }
      }
    }
    table[slot] = static_cast<uint32_t>(position_ + 2);  // the next position, + 1
  }

  // Picks the weight set of each mixer for the next bit (the one inputs() is asked for
  // next), by: match length and contexts seen before; the partial byte; the previous byte;
  // the record column; the last two bytes (hashed) with the partial byte.
  VORTEX_INLINE void select_mixing() {
    const uint32_t c1 = lane_->history & 0xff;
    sets_[0] = static_cast<uint16_t>(seen_ * 32 + match_bucket_[longest_]);
    sets_[1] = static_cast<uint16_t>(c0_);
    sets_[2] = static_cast<uint16_t>(c1 * 8 + bit_);
    sets_[3] = static_cast<uint16_t>((std::min(column_, 127) * 8 + bit_) & 1023);
    sets_[4] = static_cast<uint16_t>((order2_hash_ ^ (c0_ << 4)) & 4095);
  }

  // Node of the current bit in its nibble's tree: 0, then 1-2, 3-6, 7-14.
  VORTEX_INLINE int node_index() const {
    return bit_ < 4 ? static_cast<int>(c0_) - 1
                    : static_cast<int>((c0_ & ((1u << (bit_ - 4)) - 1)) | (1u << (bit_ - 4))) - 1;
  }
  VORTEX_INLINE bool match_expects(int m) const {
    return expected_[m] >= 0 && ((static_cast<uint32_t>(expected_[m]) | 256u) >> (8 - bit_)) == c0_;
  }
  VORTEX_INLINE size_t match_index(int m) const {
    return size_t(match_bucket_[m]) * 2 + ((expected_[m] >> (7 - bit_)) & 1);
  }
  // The lane's byte `distance` back, 0 before its start.
  VORTEX_INLINE uint64_t back(size_t distance) const {
    return distance <= t_ ? frame_[position_ - distance] : 0;
  }
  // Whether the decoder knows frame byte `p` while coding byte t_ of the current lane: it
  // knows bytes before t_ of every lane, and byte t_ of the lanes coded before this one.
  VORTEX_INLINE bool known(size_t p) const {
    const size_t offset = p % lane_length_;
    return offset < t_ || (offset == t_ && p < lane_->start);
  }

  const uint8_t* frame_;
  size_t size_, lane_length_;
  int stride_;
  int match_bits_;
  // the position after each context's last occurrence, + 1
  std::vector<ZeroedArray<uint32_t>> match_tables_;
  std::vector<ContextTable> tables_;
  AdaptiveMap order0_, runs_, matches_;
  // the byte being coded
  Lane* lane_ = nullptr;
  size_t t_ = 0, position_ = 0;
  uint64_t context_hash_[kContexts];
  Bucket* bucket_[kContexts];
  Bucket* first_[kContexts];
  // Runs: context i predicts byte run_byte_[i] while bit i of running_ is set (it has a
  // run and the bits so far agree), with the probability at runs_[run_base_[i] + bit].
  uint8_t run_byte_[kContexts];
  int run_base_[kContexts];
  uint32_t running_ = 0;
  uint32_t run_ones_[8];  // by bit of the byte, the contexts whose run byte has a 1 there
  uint16_t indirect1_[256] = {};  // the last two bytes that followed each byte value
  int expected_[kMatchModels], match_bucket_[kMatchModels], longest_ = 0;
  int column_ = 0, bit_ = 0, seen_ = 0;
  uint32_t order2_hash_ = 0;  // 12 bits of a hash of the lane's last two bytes
  uint32_t c0_ = 1;  // the bits of the byte so far, after a leading 1
  CounterBatch<kContexts> counters_, run_counters_;  // the current bit's
  int runs_read_ = 0;  // how many of run_counters_ are in use
  uint16_t sets_[kMixers] = {};  // the mixers' weight sets for the next bit (select_mixing)
};

}  // namespace cm
}  // namespace vortex
