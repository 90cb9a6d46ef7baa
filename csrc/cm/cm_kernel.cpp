// The context-mixing frame codec (codec id 5, "cm"; FORMAT.md "CM payload").
//
// A frame is coded bit by bit, most significant bit first. For each bit, eighteen hashed
// contexts of the lane's bytes (ContextModel::begin_byte lists them) each give an adaptive
// probability and a run prediction, an order-0 model and two match models give theirs; five
// mixers whose weights are learnt online combine these in the logistic domain, a final mixer
// combines the five, and three adaptive probability maps refine the result. The bit is then
// arithmetic-coded with torchac's coder (a binary CDF per bit), which this file reproduces
// bit for bit because torchac decodes only whole arrays: here each bit's probability
// depends on the bits before it. tests/test_cm_codec.py holds these streams equal to
// torchac's, and tests/golden/cm.json pins what the model computes.
//
// Everything on the coding path is integer arithmetic on fixed-width types, with no
// signed overflow, and no floating point but one division whose truncation is exact in
// any precision (counter_rate), so the encoder and the decoder compute the same
// probabilities on every machine and compiler: this is what makes an archive decodable.
#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "kernel_support.h"

namespace vortex {
namespace cm {

// ---- Logistic domain ----------------------------------------------------------------------
// stretch(p) = ln(p / (1 - p)) in units of 1/256, within +-2047; squash is its inverse.

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

// ---- Adaptive probabilities -----------------------------------------------------------------
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

// ---- Context hash tables ------------------------------------------------------------------
// A bucket holds what one context knows about one nibble of the next byte: 15 counters,
// one per node of the nibble's binary tree, a tag that tells contexts sharing the slot
// apart, and for the first nibble's bucket the byte that last followed the context and
// how many times in a row (the run). Buckets are cache lines; a lookup probes two.

struct alignas(64) Bucket {
  uint16_t tag;
  uint8_t run_byte, run_count;
  uint32_t node[15];
};
static_assert(sizeof(Bucket) == 64, "a bucket is one cache line");

// Zeroed memory for tables that are read at random: the OS provides it lazily, and on
// Linux in 2 MiB pages where it can (a lookup then seldom misses the TLB as well).
class ZeroedMemory {
 public:
  explicit ZeroedMemory(size_t bytes) : bytes_(bytes) {
#if defined(__linux__)
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, bytes, MADV_HUGEPAGE);  // advice only: fine if refused
    data_ = p;
#else  // buckets are cache lines: 64-byte alignment, as the type promises
    data_ = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (data_ == nullptr) throw std::bad_alloc();
    std::memset(data_, 0, bytes);
#endif
  }
  ~ZeroedMemory() {
    if (data_ == nullptr) return;
#if defined(__linux__)
    munmap(data_, bytes_);
#else
    std::free(data_);
#endif
  }
  ZeroedMemory(const ZeroedMemory&) = delete;
  ZeroedMemory& operator=(const ZeroedMemory&) = delete;
  ZeroedMemory(ZeroedMemory&& other) noexcept : bytes_(other.bytes_), data_(other.data_) {
    other.data_ = nullptr;
  }
  void* data() const { return data_; }

 private:
  size_t bytes_;
  void* data_;
};

class ContextTable {
 public:
  // a zeroed bucket is empty
  explicit ContextTable(int bits)
      : mask_((size_t{1} << bits) - 1), memory_(sizeof(Bucket) << bits),
        buckets_(static_cast<Bucket*>(memory_.data())) {}

  VORTEX_INLINE void prefetch(uint64_t hash) const {  // both buckets find() may probe
    const size_t i = (hash >> 20) & mask_;
    __builtin_prefetch(&buckets_[i]);
    __builtin_prefetch(&buckets_[i ^ 1]);
  }
  VORTEX_INLINE void prefetch_first(uint64_t hash) const {  // the one it probes first
    __builtin_prefetch(&buckets_[(hash >> 20) & mask_]);
  }

  // The bucket of context `hash`: a match of its tag in the pair of buckets it maps to, or
  // the less used of the two, emptied and claimed.
  VORTEX_INLINE Bucket* find(uint64_t hash) {
    const uint16_t tag = static_cast<uint16_t>(hash >> 48) | 1;
    Bucket* a = &buckets_[(hash >> 20) & mask_];
    if (a->tag == tag) return a;
    Bucket* b = &buckets_[((hash >> 20) & mask_) ^ 1];
    if (b->tag == tag) return b;
    Bucket* victim = counter_count(a->node[0]) <= counter_count(b->node[0]) ? a : b;
    std::memset(victim, 0, sizeof(Bucket));
    victim->tag = tag;
    return victim;
  }

 private:
  size_t mask_;
  ZeroedMemory memory_;
  Bucket* buckets_;
};

VORTEX_INLINE uint64_t hash_context(uint64_t x, uint64_t salt) {
  x = (x + salt * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 29);
}

// ---- Mixers ---------------------------------------------------------------------------------
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

// ---- torchac's arithmetic coder, one binary symbol at a time ---------------------------------
// torchac codes symbol s of a CDF c (16-bit, total 2^16) as the range [c[s], c[s+1]) with a
// 32-bit coder that writes bits, most significant first (see torchac_backend.cpp). A bit
// with probability p1/2^16 of being 1 is the symbol of the CDF (0, 2^16 - p1, 2^16).

class Encoder {
 public:
  VORTEX_INLINE void encode(int bit, int32_t p1) {
    const uint32_t c0 = 65536 - static_cast<uint32_t>(p1);
    const uint64_t span = uint64_t{high_} - low_ + 1;
    const uint32_t c_low = bit ? c0 : 0, c_high = bit ? 65536 : c0;
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
  std::string finish() {
    ++pending_;
    emit_with_pending(low_ < 0x40000000u ? 0 : 1);
    while (count_ != 0) emit(0);
    return std::move(out_);
  }

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

class Decoder {
 public:
  Decoder(const uint8_t* data, size_t size) : data_(data), size_(size) {
    for (int i = 0; i < 32; ++i) shift_in();
  }
  VORTEX_INLINE int decode(int32_t p1) {
    const uint32_t c0 = 65536 - static_cast<uint32_t>(p1);
    const uint64_t span = uint64_t{high_} - low_ + 1;
    // torchac: count = ((value - low + 1) * 2^16 - 1) / span, and the symbol is 1 when
    // count >= c0; without the division: c0 * span <= (value - low + 1) * 2^16 - 1.
    const int bit = uint64_t{c0} * span <= ((uint64_t{value_} - low_ + 1) << 16) - 1;
    const uint32_t c_low = bit ? c0 : 0, c_high = bit ? 65536 : c0;
    high_ = (low_ - 1) + static_cast<uint32_t>((span * c_high) >> 16);
    low_ = low_ + static_cast<uint32_t>((span * c_low) >> 16);
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
    return bit;
  }

 private:
  VORTEX_INLINE void shift_in() {  // past the end of the stream, zeros (as torchac)
    if (cached_ == 0) {
      if (position_ == size_) {
        value_ <<= 1;
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
};

// ---- The model ------------------------------------------------------------------------------

struct Params {
  int table_bits;  // log2 of the buckets of each context table
  int stride;      // record length (0: none), chosen by the encoder
};

constexpr int kContexts = 18;
// the contexts' counters, then their runs; order 0, the match models, a bias
constexpr int kInputs = 2 * kContexts + 4;
constexpr int kMixerInputs = (kInputs + 7) / 8 * 8;
constexpr int kMixers = 5;
// Match models: each follows the last earlier occurrence of the lane's last kMatchOrder[m]
// bytes (a short one finds repeats soon, a long one picks the right one among many).
constexpr int kMatchModels = 2;
constexpr int kMatchOrder[kMatchModels] = {6, 16};
constexpr uint32_t kMaxMatchLength = 65535;

struct Match {
  size_t pointer = 0;   // frame position the match predicts
  uint32_t length = 0;  // bytes that agree before it; 0: no match
};

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
    for (int m = 0; m < kMatchModels; ++m) {
      match_memory_.emplace_back(sizeof(uint32_t) << match_bits_);
      match_table_[m] = static_cast<uint32_t*>(match_memory_.back().data());
    }
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
      __builtin_prefetch(&match_table_[m][slot[m]]);
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
    uint32_t* table = match_table_[m];
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
  std::vector<ZeroedMemory> match_memory_;
  uint32_t* match_table_[kMatchModels];  // position after each context's last occurrence, + 1
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

 private:
  ContextModel context_;
  MixingModel mixing_;
  BitInputs in_;
};

// ---- Frames -----------------------------------------------------------------------------------
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

// Counts the bytes coded and asks `interrupt` once every kPollBytes of them: true to stop.
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
// lane's string there (for the tests that hold the streams equal to torchac's).
VORTEX_MULTIVERSION EncodedFrame encode_frame_body(const uint8_t* data, size_t size,
                                                   size_t lanes, const Params& params,
                                                   bool measure,
                                                   std::vector<std::string>* probabilities,
                                                   Interrupt* interrupt,
                                                   std::exception_ptr* failure) {
  try {
    InterruptCheck check(interrupt);
    size_t lane_length = 0;
    std::vector<Lane> lane = make_lanes(size, lanes, &lane_length);
    Model model(data, size, lane_length, params);
    FrameStreams streams(lanes, measure);
    double bits = 0;  // a local, not a member: it stays in a register
    const size_t steps = lanes > 0 ? lane[0].length : 0;
    for (size_t t = 0; t < steps; ++t) {
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

inline EncodedFrame encode_frame(const uint8_t* data, size_t size, size_t lanes,
                                const Params& params, bool measure,
                                std::vector<std::string>* probabilities = nullptr,
                                Interrupt* interrupt = nullptr) {
  std::exception_ptr failure;
  EncodedFrame result = encode_frame_body(data, size, lanes, params, measure, probabilities,
                                          interrupt, &failure);
  if (failure) std::rethrow_exception(failure);
  return result;
}

// ---- Encoding on two threads -----------------------------------------------------------------
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

// The context stage of encode_frame_on_two_threads: every bit's inputs, in coding order.
VORTEX_MULTIVERSION void run_context_stage(const uint8_t* data, size_t size,
                                           const std::vector<Lane>& lanes, size_t lane_length,
                                           const Params& params, InputRing* ring,
                                           std::exception_ptr* failure) {
  try {
    std::vector<Lane> lane = lanes;  // this stage's own: begin_byte changes them
    ContextModel model(data, size, lane_length, params);
    size_t chunk = 0, bytes = 0;  // chunks written, bytes in the one being written
    BitInputs* in = nullptr;
    const size_t steps = lane.empty() ? 0 : lane[0].length;
    for (size_t t = 0; t < steps; ++t) {
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
// holds. An empty result with interrupt->stopped, or with nothing (the other side failed).
VORTEX_MULTIVERSION EncodedFrame run_mixing_stage(const uint8_t* data, size_t lanes_count,
                                                  const std::vector<Lane>& lane, bool measure,
                                                  InputRing* ring, Interrupt* interrupt,
                                                  bool* complete,
                                                  std::exception_ptr* failure) {
  try {
    InterruptCheck check(interrupt);
    MixingModel model;
    FrameStreams streams(lanes_count, measure);
    double bits = 0;
    size_t chunk = 0, bytes = 0;  // chunks read, bytes read of the current one
    const BitInputs* in = nullptr;
    const size_t steps = lane.empty() ? 0 : lane[0].length;
    for (size_t t = 0; t < steps; ++t) {
      for (size_t i = 0; i < lanes_count && t < lane[i].length; ++i) {
        if (bytes == 0 && (in = ring->begin_reading(chunk)) == nullptr) return {};
        const int byte = data[lane[i].start + t];
        for (int k = 7; k >= 0; --k) {
          const int bit = (byte >> k) & 1;
          if (k > 0) model.prefetch(in[1].sets, in[1].order1);
          const int32_t p = model.predict(*in);
          streams.code(i, bit, p, &bits);
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
// spare). Polls `interrupt` on the calling thread.
inline EncodedFrame encode_frame_on_two_threads(const uint8_t* data, size_t size, size_t lanes,
                                                const Params& params, bool measure,
                                                Interrupt* interrupt = nullptr) {
  size_t lane_length = 0;
  std::vector<Lane> lane = make_lanes(size, lanes, &lane_length);
  InputRing ring;
  std::exception_ptr context_failure, mixing_failure;
  std::thread context_thread;
  try {
    context_thread = std::thread([&] {
      run_context_stage(data, size, lane, lane_length, params, &ring, &context_failure);
      if (context_failure) ring.abort();  // the mixing stage may wait for inputs
    });
  } catch (const std::system_error&) {  // no thread to be had: on this one
    return encode_frame(data, size, lanes, params, measure, nullptr, interrupt);
  }
  bool complete = false;
  EncodedFrame result = run_mixing_stage(data, lanes, lane, measure, &ring, interrupt,
                                         &complete, &mixing_failure);
  if (!complete) ring.abort();  // stopped or failed: the context stage may wait for room
  context_thread.join();
  if (context_failure) std::rethrow_exception(context_failure);
  if (mixing_failure) std::rethrow_exception(mixing_failure);
  return result;
}

// Decodes `size` bytes from one stream per lane.
VORTEX_MULTIVERSION std::string decode_frame_body(
    const std::vector<std::pair<const uint8_t*, size_t>>& streams, size_t size,
    const Params& params, Interrupt* interrupt, std::exception_ptr* failure) {
  try {
    InterruptCheck check(interrupt);
    const size_t lanes = streams.size();
    size_t lane_length = 0;
    std::vector<Lane> lane = make_lanes(size, lanes, &lane_length);
    std::string out(size, '\0');
    uint8_t* frame = reinterpret_cast<uint8_t*>(out.data());
    Model model(frame, size, lane_length, params);
    std::vector<Decoder> decoder;
    for (const auto& s : streams) decoder.emplace_back(s.first, s.second);
    const size_t steps = lanes > 0 ? lane[0].length : 0;
    for (size_t t = 0; t < steps; ++t) {
      for (size_t i = 0; i < lanes && t < lane[i].length; ++i) {
        model.begin_byte(lane[i], t);
        int byte = 0;
        for (int k = 0; k < 8; ++k) {
          const int bit = decoder[i].decode(model.predict());
          model.update(bit);
          byte = byte << 1 | bit;
        }
        frame[lane[i].start + t] = static_cast<uint8_t>(byte);
        model.end_byte(byte);
      }
      if (check.stop_after(lanes)) return {};
    }
    return out;
  } catch (...) {  // nothing may leave a clone (kernel_support.h)
    *failure = std::current_exception();
    return {};
  }
}

inline std::string decode_frame(const std::vector<std::pair<const uint8_t*, size_t>>& streams,
                                size_t size, const Params& params,
                                Interrupt* interrupt = nullptr) {
  std::exception_ptr failure;
  std::string result = decode_frame_body(streams, size, params, interrupt, &failure);
  if (failure) std::rethrow_exception(failure);
  return result;
}

}  // namespace cm
}  // namespace vortex

#ifndef VORTEX_CM_STANDALONE
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

namespace py = pybind11;

namespace {

// Raised (as the module's Cancelled) when `stop` is set while a frame is being coded.
struct Cancelled : std::runtime_error {
  Cancelled() : std::runtime_error("coding cancelled") {}
};

// What coding polls, with the GIL: the caller's signal handlers (so that Ctrl-C stops a
// frame coded on the main thread), then the `stop` event (threading.Event or None).
struct PollState {
  py::handle stop;
  bool raised = false;  // a handler, or stop.is_set(), raised: the Python error is set
};

bool poll_python(void* context) {
  auto* state = static_cast<PollState*>(context);
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    state->raised = true;
    return true;
  }
  if (state->stop.is_none()) return false;
  // nothing may be thrown from here through the coding loops (see vortex::cm::Interrupt)
  try {
    const py::object answer = state->stop.attr("is_set")();
    const int truth = PyObject_IsTrue(answer.ptr());
    if (truth >= 0) return truth != 0;
  } catch (py::error_already_set& error) {
    error.restore();
  } catch (...) {
    PyErr_SetString(PyExc_RuntimeError, "asking the stop event failed");
  }
  state->raised = true;  // the Python error is set
  return true;
}

// Runs `code(&interrupt)` without the GIL, stopping as PollState says.
template <typename Code>
auto interruptible(py::object stop, Code&& code) {
  PollState state{stop};
  vortex::cm::Interrupt interrupt{&poll_python, &state};
  auto result = [&] {
    py::gil_scoped_release release;
    return code(&interrupt);
  }();
  if (interrupt.stopped) {
    if (state.raised) throw py::error_already_set();
    throw Cancelled();
  }
  return result;
}

vortex::cm::Params checked_params(int table_bits, int stride) {
  if (table_bits < 1 || table_bits > 30) throw std::invalid_argument("table_bits out of range");
  if (stride < 0 || stride > 1 << 16) throw std::invalid_argument("stride out of range");
  return vortex::cm::Params{table_bits, stride};
}

// (streams, ideal bits) of `data` coded in `lanes` lanes, on one thread or two (the same
// streams either way).
py::tuple encode(py::bytes data, size_t lanes, int table_bits, int stride, bool measure,
                 py::object stop, int threads) {
  const std::string_view raw = data;
  if (lanes < 1) throw std::invalid_argument("lanes must be at least 1");
  if (threads != 1 && threads != 2) throw std::invalid_argument("threads must be 1 or 2");
  const auto params = checked_params(table_bits, stride);
  const auto* bytes = reinterpret_cast<const uint8_t*>(raw.data());
  const vortex::cm::EncodedFrame frame = interruptible(stop, [&](auto* interrupt) {
    if (threads == 2)
      return vortex::cm::encode_frame_on_two_threads(bytes, raw.size(), lanes, params, measure,
                                                     interrupt);
    return vortex::cm::encode_frame(bytes, raw.size(), lanes, params, measure, nullptr,
                                    interrupt);
  });
  py::list streams;
  for (const auto& s : frame.streams) streams.append(py::bytes(s));
  return py::make_tuple(streams, frame.ideal_bits);
}

// Each lane's bit probabilities (u16 each, little-endian) as `encode` codes them.
py::list probabilities(py::bytes data, size_t lanes, int table_bits, int stride) {
  const std::string_view raw = data;
  if (lanes < 1) throw std::invalid_argument("lanes must be at least 1");
  const auto params = checked_params(table_bits, stride);
  std::vector<std::string> result(lanes);
  {
    py::gil_scoped_release release;
    vortex::cm::encode_frame(reinterpret_cast<const uint8_t*>(raw.data()), raw.size(), lanes,
                             params, false, &result);
  }
  py::list out;
  for (const auto& s : result) out.append(py::bytes(s));
  return out;
}

// The `size` bytes coded by the streams payload[offset : offset + length], one per lane.
py::bytes decode(py::bytes payload, const std::vector<std::pair<size_t, size_t>>& streams,
                 size_t size, int table_bits, int stride, py::object stop) {
  const std::string_view bytes = payload;
  if (streams.empty()) throw std::invalid_argument("at least one stream is needed");
  std::vector<std::pair<const uint8_t*, size_t>> views;
  for (const auto& [offset, length] : streams) {
    if (offset > bytes.size() || length > bytes.size() - offset)
      throw std::invalid_argument("stream outside the payload");
    views.emplace_back(reinterpret_cast<const uint8_t*>(bytes.data()) + offset, length);
  }
  const auto params = checked_params(table_bits, stride);
  const std::string out = interruptible(stop, [&](auto* interrupt) {
    return vortex::cm::decode_frame(views, size, params, interrupt);
  });
  return py::bytes(out);
}

}  // namespace

PYBIND11_MODULE(_cm_kernel, m) {
  py::register_exception<Cancelled>(m, "Cancelled");
  m.def("encode", &encode, "context-mixing streams of a frame and its ideal code length",
        py::arg("data"), py::arg("lanes"), py::arg("table_bits"), py::arg("stride"),
        py::arg("measure"), py::arg("stop") = py::none(), py::arg("threads") = 1);
  m.def("decode", &decode, "a frame from its context-mixing streams", py::arg("payload"),
        py::arg("streams"), py::arg("size"), py::arg("table_bits"), py::arg("stride"),
        py::arg("stop") = py::none());
  m.def("probabilities", &probabilities, "each lane's bit probabilities, as encode codes them");
}
#endif  // VORTEX_CM_STANDALONE
