// Helpers shared by the C++ kernels (vortexfmt/native.py builds them).
#pragma once

#include <cstdint>

// Hot loops get an AVX2 build next to the baseline one, picked when the module loads
// (GCC function multi-versioning): the build must not assume the CPU it runs on, since
// torch caches it in a home directory that machines may share. Integer arithmetic (and
// doubles holding integers below 2^53, and cm's counter_rate, a float quotient truncated
// where no rounding can cross an integer) gives the same results in both.
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define VORTEX_MULTIVERSION __attribute__((target_clones("avx2", "default")))
#else
#define VORTEX_MULTIVERSION
#endif
// A VORTEX_MULTIVERSION function must not let an exception out: with GCC (12 at least), one
// that reaches a clone's frame calls std::terminate, and a failed allocation would end the
// process. So they do not allocate: their callers do (the step and mixing kernels), or they
// catch what they throw into an std::exception_ptr that a plain caller throws again (cm).
// For helpers of a VORTEX_MULTIVERSION function: inlined, they are compiled for each clone.
#if defined(__GNUC__)
#define VORTEX_INLINE inline __attribute__((always_inline))
#else
#define VORTEX_INLINE inline
#endif

namespace vortex {

constexpr int kSymbols = 256;
constexpr int64_t kCdfTotal = int64_t{1} << 16;

// Exact floor(a / b) for 0 <= a < 2^52 and b >= 1, many a and one b: a multiplication
// by the double reciprocal is within one of the quotient, and integer steps make it exact
// (64-bit division costs tens of cycles, 256 times per CDF).
class Divisor {
 public:
  explicit Divisor(int64_t b) : b_(b), inverse_(1.0 / static_cast<double>(b)) {}
  int64_t of(int64_t a) const {
    int64_t q = static_cast<int64_t>(static_cast<double>(a) * inverse_);
    if (q * b_ > a) --q;
    else if ((q + 1) * b_ <= a) ++q;
    return q;
  }

 private:
  int64_t b_;
  double inverse_;
};

// A CDF (257 entries, 0 to 2^16) from non-negative integer weights with total `total`
// whose first largest is `top`: frequencies 1 + floor(w * (2^16 - 256) / total), what is
// left of 2^16 to `top` (intmath.cdf_from_weights, which both kernels must match).
template <typename Weight>
VORTEX_INLINE void cdf_from_weights(const Weight* weights, int64_t total, int top,
                                    int32_t* cdf) {
  const Divisor quotient(total);
  int32_t freq[kSymbols];
  int64_t used = 0;
  for (int j = 0; j < kSymbols; ++j) {
    freq[j] = static_cast<int32_t>(1 + quotient.of(int64_t{weights[j]} * (kCdfTotal - kSymbols)));
    used += freq[j];
  }
  freq[top] += static_cast<int32_t>(kCdfTotal - used);
  cdf[0] = 0;
  for (int j = 0; j < kSymbols; ++j) cdf[j + 1] = cdf[j] + freq[j];
}

}  // namespace vortex
