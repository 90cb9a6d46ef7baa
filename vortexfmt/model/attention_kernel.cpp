// CPU kernels of the byte model's decoding step (vortexfmt/model/integer.py, StepRunner, is
// the reference: these compute the same integers, lane by lane, with int8 keys and values).
//
// Every value is an integer: keys, values and queries are activations (|x| <= 127, which
// is why the state fits int8), dot products and weighted sums stay far below 2^31, and the
// divisions are floor divisions of integers, which is what the reference's float32 division
// followed by floor() computes (see vortexfmt/model/intmath.py).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "kernel_support.h"

namespace {

constexpr int kSymbols = 256;
constexpr int32_t kCdfTotal = 1 << 16;

// floor(x / 2^shift + 1/2): the reference's round_shift (a left shift when shift < 0).
// `>>` of a negative int is an arithmetic shift, a floor division by 2^shift, with every
// compiler torch supports (and by definition since C++20).
inline int32_t round_shift(int32_t x, int shift) {
  if (shift <= 0) return x * (1 << -shift);
  return (x + (1 << (shift - 1))) >> shift;
}

inline int32_t floor_divide(int32_t numerator, int32_t denominator) {  // denominator > 0
  const int32_t q = numerator / denominator;
  return (numerator % denominator != 0 && numerator < 0) ? q - 1 : q;
}

inline int8_t to_int8(float x) { return static_cast<int8_t>(x); }


struct Step {  // what every (lane, head) of one attention step shares
  int64_t heads, window, ring, lut_last, slot, position, compression, compress_shift, newest;
  int score_shift;
  int32_t masked;
  bool block_done;
  const float *q, *k, *v;
  int8_t *ring_keys, *ring_values, *memory_keys, *memory_values;
  const int32_t *ring_bias, *memory_bias, *lut;
  float* out;
  const int64_t* block_slots;  // ring slots of the block completed at this position
};

// One (lane, head) of the step. Keys and values are stored dimension-major, (head_dim,
// slots) per lane and head, so that the loops over slots, the long ones, vectorize.
// (int8_t is a character type, which may alias anything: __restrict__ lets the loops over
// int8 rows and int32 scores vectorize.)
VORTEX_MULTIVERSION void attend(const Step& p, int64_t index, int64_t dim, int32_t* __restrict__ scores,
            int32_t* __restrict__ weights, int32_t* __restrict__ query,
            int32_t* __restrict__ total) {
  const int64_t window = p.window, ring = p.ring, slot = p.slot, position = p.position;
  const int64_t lane = index / p.heads, head = index % p.heads;
  const int64_t base = lane * p.heads * dim + head * dim;
  int8_t* __restrict__ keys = p.ring_keys + index * window * dim;
  int8_t* __restrict__ values = p.ring_values + index * window * dim;
  int8_t* __restrict__ mem_keys = p.memory_keys + index * ring * dim;
  int8_t* __restrict__ mem_values = p.memory_values + index * ring * dim;
  for (int64_t d = 0; d < dim; ++d) {
    query[d] = static_cast<int32_t>(p.q[base + d]);
    keys[d * window + slot] = to_int8(p.k[base + d]);
    values[d * window + slot] = to_int8(p.v[base + d]);
  }
  if (p.block_done) {  // the last `compression` positions become memory block position/C
    const int64_t target = (position / p.compression) % ring;
    for (int64_t d = 0; d < dim; ++d) {
      int32_t key_sum = 0, value_sum = 0;
      for (int64_t i = 0; i < p.compression; ++i) {
        key_sum += keys[d * window + p.block_slots[i]];
        value_sum += values[d * window + p.block_slots[i]];
      }
      mem_keys[d * ring + target] = static_cast<int8_t>(round_shift(key_sum, p.compress_shift));
      mem_values[d * ring + target] =
          static_cast<int8_t>(round_shift(value_sum, p.compress_shift));
    }
  }
  const bool memory = p.newest >= 0;
  const int64_t count = window + (memory ? ring : 0);
  for (int64_t j = 0; j < count; ++j) scores[j] = 0;
  for (int64_t d = 0; d < dim; ++d) {
    const int32_t qd = query[d];
    const int8_t* __restrict__ row = keys + d * window;
    for (int64_t j = 0; j < window; ++j) scores[j] += row[j] * qd;
    if (memory) {
      const int8_t* __restrict__ mem_row = mem_keys + d * ring;
      int32_t* __restrict__ mem_scores = scores + window;
      for (int64_t j = 0; j < ring; ++j) mem_scores[j] += mem_row[j] * qd;
    }
  }
  const int32_t* ring_bias = p.ring_bias + head * window;
  for (int64_t j = 0; j < window; ++j)
    scores[j] = round_shift(scores[j], p.score_shift) + ring_bias[j];
  if (position < window - 1) {  // ring slots not yet written hold no position
    for (int64_t j = 0; j < window; ++j)
      if (((slot - j) % window + window) % window > position) scores[j] = p.masked;
  }
  if (memory) {
    const int32_t* memory_bias = p.memory_bias + head * ring;
    for (int64_t j = 0; j < ring; ++j) {
      scores[window + j] = round_shift(scores[window + j], p.score_shift) + memory_bias[j];
      if (p.newest < ring - 1 && j > p.newest) scores[window + j] = p.masked;
    }
  }
  int32_t best = scores[0];
  for (int64_t j = 1; j < count; ++j) best = std::max(best, scores[j]);
  int32_t norm = 0;
  for (int64_t j = 0; j < count; ++j) {
    const int64_t delta = std::min<int64_t>(int64_t{best} - scores[j], p.lut_last);
    weights[j] = p.lut[delta];
    norm += weights[j];
  }
  for (int64_t d = 0; d < dim; ++d) {
    const int8_t* __restrict__ row = values + d * window;
    int32_t sum = 0;
    for (int64_t j = 0; j < window; ++j) sum += weights[j] * row[j];
    if (memory) {
      const int8_t* __restrict__ mem_row = mem_values + d * ring;
      const int32_t* __restrict__ mem_weights = weights + window;
      for (int64_t j = 0; j < ring; ++j) sum += mem_weights[j] * mem_row[j];
    }
    total[d] = sum;
  }
  for (int64_t d = 0; d < dim; ++d)
    p.out[base + d] = static_cast<float>(floor_divide(2 * total[d] + norm, 2 * norm));
}

}  // namespace

// One attention step of one layer for every lane, updating the state in place.
// q, k, v: (lanes, heads * head_dim) float32 holding activations of position `position`;
// ring_keys/ring_values: (lanes, heads, head_dim, window) int8, position p in slot
// p % window; memory_keys/memory_values: (lanes, heads, head_dim, memory_ring) int8,
// compressed block j in slot j % memory_ring; ring_bias: (heads, window) int32 for this
// position's slot phase; memory_bias: (heads, memory_ring) int32 for the newest block's
// phase (-2^30 on slots too old to attend); lut: attention exp table, int32.
// Returns the attended values (lanes, heads * head_dim) float32.
torch::Tensor attention_step(torch::Tensor q, torch::Tensor k, torch::Tensor v,
                             torch::Tensor ring_keys, torch::Tensor ring_values,
                             torch::Tensor memory_keys, torch::Tensor memory_values,
                             torch::Tensor ring_bias, torch::Tensor memory_bias,
                             torch::Tensor lut, int64_t position, int64_t compression,
                             int64_t score_shift, int64_t masked) {
  TORCH_CHECK(q.is_contiguous() && k.is_contiguous() && v.is_contiguous());
  TORCH_CHECK(ring_keys.is_contiguous() && ring_values.is_contiguous() &&
              memory_keys.is_contiguous() && memory_values.is_contiguous() &&
              ring_bias.is_contiguous() && memory_bias.is_contiguous() && lut.is_contiguous());
  const int64_t lanes = ring_keys.size(0);
  const int64_t heads = ring_keys.size(1);
  const int64_t dim = ring_keys.size(2);
  const int64_t window = ring_keys.size(3);
  const int64_t ring = memory_keys.size(3);
  const int64_t slot = position % window;
  const bool block_done = position % compression == compression - 1;
  const int64_t compress_shift = [&] {
    int64_t s = 0;
    while ((int64_t{2} << s) <= compression) ++s;
    return s;
  }();
  // Newest compressed block entirely older than the window (Python floor division).
  const int64_t newest_numerator = position - window - (compression - 1);
  const int64_t newest = newest_numerator >= 0
                             ? newest_numerator / compression
                             : -((-newest_numerator + compression - 1) / compression);
  auto out = torch::empty({lanes, heads * dim}, torch::kFloat32);
  Step p{heads, window, ring, lut.size(0) - 1, slot, position, compression, compress_shift,
         newest, static_cast<int>(score_shift), static_cast<int32_t>(masked), block_done,
         q.data_ptr<float>(), k.data_ptr<float>(), v.data_ptr<float>(),
         ring_keys.data_ptr<int8_t>(), ring_values.data_ptr<int8_t>(),
         memory_keys.data_ptr<int8_t>(), memory_values.data_ptr<int8_t>(),
         ring_bias.data_ptr<int32_t>(), memory_bias.data_ptr<int32_t>(),
         lut.data_ptr<int32_t>(), out.data_ptr<float>(), nullptr};
  std::vector<int64_t> block_slots(compression);
  for (int64_t i = 0; i < compression; ++i)
    block_slots[i] = ((position - i) % window + window) % window;
  p.block_slots = block_slots.data();
  at::parallel_for(0, lanes * heads, 64, [&](int64_t begin, int64_t end) {
    std::vector<int32_t> scores(window + ring), weights(window + ring), query(dim), total(dim);
    for (int64_t index = begin; index < end; ++index)
      attend(p, index, dim, scores.data(), weights.data(), query.data(), total.data());
  });
  return out;
}

// CDFs (rows, 257) int32 from integer-valued float32 logits (rows, 256): weights
// lut[min(max - logit, size - 1)], then frequencies 1 + floor(w * (2^16 - 256) / sum w),
// what is left of 2^16 added to the first largest weight (intmath.cdf_from_logits).
torch::Tensor cdf_from_logits(torch::Tensor logits, torch::Tensor lut) {
  TORCH_CHECK(logits.is_contiguous() && lut.is_contiguous() && logits.size(1) == kSymbols);
  const int64_t rows = logits.size(0);
  const int64_t lut_last = lut.size(0) - 1;
  auto cdf = torch::empty({rows, kSymbols + 1}, torch::kInt32);
  const float* lg = logits.data_ptr<float>();
  const int32_t* lp = lut.data_ptr<int32_t>();
  int32_t* out = cdf.data_ptr<int32_t>();
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    int32_t weights[kSymbols];
    for (int64_t row = begin; row < end; ++row) {
      const float* x = lg + row * kSymbols;
      float best = x[0];
      for (int j = 1; j < kSymbols; ++j) best = std::max(best, x[j]);
      int32_t sum = 0, top = 0;
      for (int j = 0; j < kSymbols; ++j) {
        const int64_t delta = std::min<int64_t>(static_cast<int64_t>(best - x[j]), lut_last);
        weights[j] = lp[delta];
        sum += weights[j];
        if (weights[j] > weights[top]) top = j;
      }
      int32_t* c = out + row * (kSymbols + 1);
      int32_t used = 0;
      int32_t freq[kSymbols];
      const vortex::Divisor quotient(sum);
      for (int j = 0; j < kSymbols; ++j) {
        freq[j] = 1 + static_cast<int32_t>(quotient.of(int64_t{weights[j]} * (kCdfTotal - kSymbols)));
        used += freq[j];
      }
      freq[top] += kCdfTotal - used;
      c[0] = 0;
      for (int j = 0; j < kSymbols; ++j) c[j + 1] = c[j] + freq[j];
    }
  });
  return cdf;
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attention_step", &attention_step, "one attention step of the byte model");
  m.def("cdf_from_logits", &cdf_from_logits, "CDFs of the byte model's logits");
}
