// Helpers shared by the C++ kernels (setup.py builds them; vortexfmt/native.py loads them).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <thread>
#include <vector>

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

// How many threads parallel_for may use: VORTEX_THREADS when set to a positive number
// (the tests set it to check that results do not depend on it), else the hardware's count.
// Read it while holding the GIL (getenv races with os.environ updates otherwise).
inline int thread_count() {
  if (const char* value = std::getenv("VORTEX_THREADS")) {
    const int n = std::atoi(value);
    if (n >= 1) return n;
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware == 0 ? 1 : static_cast<int>(hardware);
}

// fn(begin, end) over [0, n) cut into at most `threads` contiguous chunks of at least
// `grain` items, the first on the calling thread, the others on std::threads joined before
// returning (what at::parallel_for did for the kernels, without torch or OpenMP). Callers
// only give it items that are independent of each other (the lanes of a step), so results
// do not depend on how [0, n) is cut. An exception thrown by fn (an allocation that failed)
// is thrown again here, once every thread has finished.
template <typename Fn>
void parallel_for(int64_t n, int64_t grain, int threads, const Fn& fn) {
  if (n <= 0) return;
  const int64_t most = (n + std::max<int64_t>(grain, 1) - 1) / std::max<int64_t>(grain, 1);
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threads, most));
  if (chunks == 1) {
    fn(int64_t{0}, n);
    return;
  }
  std::vector<std::exception_ptr> errors(chunks);
  auto run = [&](int64_t chunk) {
    try {
      fn(n * chunk / chunks, n * (chunk + 1) / chunks);
    } catch (...) {
      errors[chunk] = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(chunks - 1);
  try {
    for (int64_t chunk = 1; chunk < chunks; ++chunk) workers.emplace_back(run, chunk);
  } catch (...) {  // no thread to be had: what was not started runs here
    for (int64_t chunk = static_cast<int64_t>(workers.size()) + 1; chunk < chunks; ++chunk)
      run(chunk);
  }
  run(0);
  for (auto& worker : workers) worker.join();
  for (const auto& error : errors)
    if (error) std::rethrow_exception(error);
}

}  // namespace vortex
