// The context hash tables: hash_context, which keys a context (and a nibble of it), and
// ContextTable, cache-line buckets of counters found by that hash, each with a tag and the
// context's run (its last byte, repeated how many times). ContextModel (context_model.h)
// chooses the contexts and reads these buckets.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

#include "counters.h"
#include "kernel_support.h"

namespace vortex {
namespace cm {

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

// Zeroed arrays for tables that are read at random: the OS provides the memory lazily, and
// on Linux in 2 MiB pages where it can (a lookup then seldom misses the TLB as well). A
// copy holds the same elements in memory of its own (a primed model's state, copied for
// each frame: frame.h, PrimedState).
template <typename T>
class ZeroedArray {
 public:
  explicit ZeroedArray(size_t count) : bytes_(count * sizeof(T)) {
#if defined(__linux__)
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    madvise(p, bytes_, MADV_HUGEPAGE);  // advice only: fine if refused
    data_ = static_cast<T*>(p);
#else  // buckets are cache lines: 64-byte alignment, as the type promises
    data_ = static_cast<T*>(std::aligned_alloc(64, (bytes_ + 63) / 64 * 64));
    if (data_ == nullptr) throw std::bad_alloc();
    std::memset(data_, 0, bytes_);
#endif
  }
  ~ZeroedArray() {
    if (data_ == nullptr) return;
#if defined(__linux__)
    munmap(data_, bytes_);
#else
    std::free(data_);
#endif
  }
  ZeroedArray(const ZeroedArray& other) : ZeroedArray(other.bytes_ / sizeof(T)) {
    std::memcpy(data_, other.data_, bytes_);
  }
  ZeroedArray& operator=(const ZeroedArray&) = delete;
  ZeroedArray(ZeroedArray&& other) noexcept : bytes_(other.bytes_), data_(other.data_) {
    other.data_ = nullptr;
  }
  VORTEX_INLINE T& operator[](size_t i) const { return data_[i]; }

 private:
  size_t bytes_;
  T* data_;
};

class ContextTable {
 public:
  // a zeroed bucket is empty
  explicit ContextTable(int bits) : mask_((size_t{1} << bits) - 1), buckets_(size_t{1} << bits) {}

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
  ZeroedArray<Bucket> buckets_;
};

VORTEX_INLINE uint64_t hash_context(uint64_t x, uint64_t salt) {
  x = (x + salt * 0x9E3779B97F4A7C15ull) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  x *= 0x94D049BB133111EBull;
  return x ^ (x >> 29);
}

}  // namespace cm
}  // namespace vortex
