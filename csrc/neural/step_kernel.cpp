// CPU kernel of the byte model's decoding step (vortexfmt/neural/integer.py, StepRunner, is
// the reference: this computes the same integers, lane by lane, with int8 keys and values
// and int16 weights, in one call per step instead of some forty torch operations).
//
// Every value is an integer: keys, values and queries are activations (|x| <= 127, which
// is why the state fits int8), dot products and weighted sums stay far below 2^31, and the
// divisions are floor divisions of integers, which is what the reference's float32 division
// followed by floor() computes (see vortexfmt/neural/intmath.py).
//
// A CPython extension module taking numpy arrays (the caller passes views of its CPU
// tensors, the attention state among them, which it updates in place); it links to neither
// torch nor OpenMP.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "array_support.h"
#include "kernel_support.h"

namespace py = pybind11;

using vortex::input;
using vortex::Input;
using vortex::kAny;

namespace {

using vortex::kSymbols;
constexpr int32_t kActMax = 127;  // activations are within +-ACT_MAX (intmath)

// floor(x / 2^shift + 1/2): the reference's round_shift (a left shift when shift < 0).
// `>>` of a negative int is an arithmetic shift, a floor division by 2^shift, with every
// compiler we build with (and by definition since C++20).
VORTEX_INLINE int32_t round_shift(int32_t x, int shift) {
  if (shift <= 0) return x * (1 << -shift);
  return (x + (1 << (shift - 1))) >> shift;
}

VORTEX_INLINE int32_t floor_divide(int32_t numerator, int32_t denominator) {  // denominator > 0
  const int32_t q = numerator / denominator;
  return (numerator % denominator != 0 && numerator < 0) ? q - 1 : q;
}



struct Layer {  // one layer's attention at one position, shared by every lane and head
  int64_t heads, dim, window, ring, lut_last, slot, position, compression, compress_shift,
      newest;
  int score_shift;
  int32_t masked;
  bool block_done;
  int8_t *ring_keys, *ring_values, *memory_keys, *memory_values;
  const int32_t *ring_bias, *memory_bias, *lut;
  const int64_t* block_slots;  // ring slots of the block completed at this position
};

// One (lane, head) of a layer's attention: stores the position's key and value, completes
// a memory block when one ends here, and writes the attended values of the head (`out`,
// head_dim entries) from its query. Keys and values are stored dimension-major, (head_dim,
// slots) per lane and head, so that the loops over slots, the long ones, vectorize.
// (int8_t is a character type, which may alias anything: __restrict__ lets them vectorize.)
VORTEX_INLINE void attend(const Layer& p, int64_t index, const int32_t* __restrict__ query,
                          const int32_t* __restrict__ key, const int32_t* __restrict__ value,
                          int32_t* __restrict__ out, int32_t* __restrict__ scores,
                          int32_t* __restrict__ weights) {
  const int64_t dim = p.dim;
  const int64_t window = p.window, ring = p.ring, slot = p.slot, position = p.position;
  const int64_t head = index % p.heads;
  int8_t* __restrict__ keys = p.ring_keys + index * window * dim;
  int8_t* __restrict__ values = p.ring_values + index * window * dim;
  int8_t* __restrict__ mem_keys = p.memory_keys + index * ring * dim;
  int8_t* __restrict__ mem_values = p.memory_values + index * ring * dim;
  for (int64_t d = 0; d < dim; ++d) {
    keys[d * window + slot] = static_cast<int8_t>(key[d]);
    values[d * window + slot] = static_cast<int8_t>(value[d]);
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
    out[d] = floor_divide(2 * sum + norm, 2 * norm);
  }
}

}  // namespace

// out[o] = (sum_i x[i] * w[o][i] + bias[o]) >> shift for o < outputs (a left shift when
// shift < 0): intmath.linear, whose rounding constant 2^(shift-1) the caller has added to
// `bias`. |sums| < 2^24 (IntegerByteModel._check_bounds), so int32 is exact.
template <int64_t INPUTS>  // 0: `inputs` at run time; else a constant the loop unrolls by
VORTEX_INLINE void linear_rows(const int16_t* __restrict__ x, int64_t inputs,
                               const int16_t* __restrict__ w, const int32_t* __restrict__ bias,
                               int64_t outputs, int shift, int32_t* __restrict__ out) {
  const int64_t n = INPUTS ? INPUTS : inputs;
  for (int64_t o = 0; o < outputs; ++o) {
    const int16_t* __restrict__ row = w + o * n;
    int32_t sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += int32_t{x[i]} * int32_t{row[i]};
    sum += bias[o];
    out[o] = shift > 0 ? sum >> shift : sum * (1 << -shift);
  }
}

VORTEX_INLINE void linear(const int16_t* __restrict__ x, int64_t inputs,
                          const int16_t* __restrict__ w, const int32_t* __restrict__ bias,
                          int64_t outputs, int shift, int32_t* __restrict__ out) {
  switch (inputs) {  // the default model's sizes
    case 48: return linear_rows<48>(x, inputs, w, bias, outputs, shift, out);
    case 128: return linear_rows<128>(x, inputs, w, bias, outputs, shift, out);
    default: return linear_rows<0>(x, inputs, w, bias, outputs, shift, out);
  }
}

VORTEX_INLINE int32_t clamp_act(int32_t x) { return std::min(std::max(x, -kActMax), kActMax); }

struct Model {  // the operands of one step, shared by every lane
  int64_t layers, d_model, d_ff;
  const int64_t *previous, *match, *match_length, *record;
  const int32_t* embed[4];
  std::vector<const int16_t*> weights;  // per layer: qkv, proj, fc1, fc2; then head
  std::vector<const int32_t*> biases;
  std::vector<int> shifts;
  std::vector<Layer> attention;
  float* logits;
};

// One lane's step: embeddings, every layer, the head's logits (StepRunner.step_logits).
// step_lanes's working memory, allocated by its caller: a multiversioned function must not
// throw (kernel_support.h).
struct StepBuffers {
  explicit StepBuffers(const Model& m)
      : h(m.d_model), a(std::max(m.d_model, m.d_ff)), qkv(3 * m.d_model),
        t(std::max<int64_t>({m.d_model, m.d_ff, 256})), attended(m.d_model),
        scores(m.attention[0].window + m.attention[0].ring),
        weights(m.attention[0].window + m.attention[0].ring) {}
  std::vector<int16_t> h, a;
  std::vector<int32_t> qkv, t, attended, scores, weights;
};

VORTEX_MULTIVERSION void step_lanes(const Model& m, int64_t begin, int64_t end,
                                    StepBuffers& buffers) {
  const int64_t D = m.d_model, F = m.d_ff, heads = m.attention[0].heads;
  const int64_t dim = D / heads;
  std::vector<int16_t>& h = buffers.h;
  std::vector<int16_t>& a = buffers.a;
  std::vector<int32_t>& qkv = buffers.qkv;
  std::vector<int32_t>& t = buffers.t;
  std::vector<int32_t>& attended = buffers.attended;
  std::vector<int32_t>& scores = buffers.scores;
  std::vector<int32_t>& weights = buffers.weights;
  for (int64_t lane = begin; lane < end; ++lane) {
    const int32_t* e0 = m.embed[0] + m.previous[lane] * D;
    const int32_t* e1 = m.embed[1] + m.match[lane] * D;
    const int32_t* e2 = m.embed[2] + m.match_length[lane] * D;
    const int32_t* e3 = m.embed[3] + m.record[lane] * D;
    for (int64_t d = 0; d < D; ++d)
      h[d] = static_cast<int16_t>(clamp_act(e0[d] + e1[d] + e2[d] + e3[d]));
    for (int64_t layer = 0; layer < m.layers; ++layer) {
      const int64_t w = 4 * layer;
      linear(h.data(), D, m.weights[w], m.biases[w], 3 * D, m.shifts[w], qkv.data());
      for (auto& x : qkv) x = clamp_act(x);
      for (int64_t head = 0; head < heads; ++head) {
        const int64_t o = head * dim;
        int32_t* q = qkv.data() + o;
        attend(m.attention[layer], lane * heads + head, q, q + D, q + 2 * D,
               attended.data() + o, scores.data(), weights.data());
      }
      for (int64_t d = 0; d < D; ++d) a[d] = static_cast<int16_t>(attended[d]);
      linear(a.data(), D, m.weights[w + 1], m.biases[w + 1], D, m.shifts[w + 1], t.data());
      for (int64_t d = 0; d < D; ++d)  // residual
        h[d] = static_cast<int16_t>(clamp_act(h[d] + clamp_act(t[d])));
      linear(h.data(), D, m.weights[w + 2], m.biases[w + 2], F, m.shifts[w + 2], t.data());
      for (int64_t f = 0; f < F; ++f)  // ReLU
        a[f] = static_cast<int16_t>(clamp_act(std::max(t[f], 0)));
      linear(a.data(), F, m.weights[w + 3], m.biases[w + 3], D, m.shifts[w + 3], t.data());
      for (int64_t d = 0; d < D; ++d)  // residual
        h[d] = static_cast<int16_t>(clamp_act(h[d] + clamp_act(t[d])));
    }
    const int64_t w = 4 * m.layers;
    linear(h.data(), D, m.weights[w], m.biases[w], 256, m.shifts[w], t.data());
    float* out = m.logits + lane * 256;
    for (int j = 0; j < 256; ++j) out[j] = static_cast<float>(t[j]);
  }
}

// The logits (lanes, 256) float32 (integer-valued) of the next position of every lane, as
// a numpy array. previous, match, match_length, record: (lanes,) int64 features; embed: the
// four int32 embedding tables (rows, d_model); weights: int16 (outputs, inputs) and biases:
// int32 (rounding constant included), per layer qkv, proj, fc1, fc2, then the head; shifts
// the same; per layer the state ring_keys, ring_values (lanes, heads, head_dim, window) and
// memory_keys, memory_values (lanes, heads, head_dim, memory_ring) int8, written in place
// (views of the caller's tensors), ring_bias (heads, window) and memory_bias (heads,
// memory_ring) int32 for this position's phases; lut: the attention exp table, int32.
py::array_t<float> model_step(const py::array& previous_in, const py::array& match_in,
                              const py::array& match_length_in, const py::array& record_in,
                              const std::vector<py::array>& embed_in,
                              const std::vector<py::array>& weights_in,
                              const std::vector<py::array>& biases_in,
                              const std::vector<int64_t>& shifts,
                              std::vector<py::array> ring_keys,
                              std::vector<py::array> ring_values,
                              std::vector<py::array> memory_keys,
                              std::vector<py::array> memory_values,
                              const std::vector<py::array>& ring_bias_in,
                              const std::vector<py::array>& memory_bias_in,
                              const py::array& lut_in, int64_t position, int64_t compression,
                              int64_t score_shift, int64_t masked) {
  const int64_t layers = static_cast<int64_t>(ring_keys.size());
  const size_t linears = static_cast<size_t>(4 * layers + 1);
  if (layers < 1 || embed_in.size() != 4 || weights_in.size() != linears ||
      biases_in.size() != linears || shifts.size() != linears ||
      ring_values.size() != ring_keys.size() || memory_keys.size() != ring_keys.size() ||
      memory_values.size() != ring_keys.size() || ring_bias_in.size() != ring_keys.size() ||
      memory_bias_in.size() != ring_keys.size())
    throw py::value_error("model_step: the lists of operands do not match the layer count");
  vortex::check_array<int8_t>(ring_keys[0], "model_step: ring_keys", {kAny, kAny, kAny, kAny});
  vortex::check_array<int8_t>(memory_keys[0], "model_step: memory_keys",
                              {kAny, kAny, kAny, kAny});
  const int64_t lanes = ring_keys[0].shape(0);
  const int64_t heads = ring_keys[0].shape(1);
  const int64_t dim = ring_keys[0].shape(2);
  const int64_t window = ring_keys[0].shape(3);
  const int64_t ring = memory_keys[0].shape(3);
  const int64_t d_model = heads * dim;
  if (heads < 1 || dim < 1 || window < 1 || ring < 1)
    throw py::value_error("model_step: empty attention state");
  vortex::check_array<int16_t>(weights_in[2], "model_step: weights[2]", {kAny, d_model});
  const int64_t d_ff = weights_in[2].shape(0);
  if (position < 0 || compression < 1 || compression > window || score_shift < -30 ||
      score_shift > 30)
    throw py::value_error("model_step: bad position, compression or score_shift");
  for (const int64_t shift : shifts)
    if (shift < -30 || shift > 30) throw py::value_error("model_step: bad shift");

  std::vector<Input<int64_t>> features;
  std::vector<Input<int32_t>> embed;
  const py::array* feature_in[4] = {&previous_in, &match_in, &match_length_in, &record_in};
  for (int i = 0; i < 4; ++i) {
    features.push_back(input<int64_t>(*feature_in[i], "model_step: features", {lanes}));
    embed.push_back(input<int32_t>(embed_in[i], "model_step: embed", {kAny, d_model}));
    const int64_t* f = features.back().data();
    const int64_t size = embed.back().shape(0);
    for (int64_t lane = 0; lane < lanes; ++lane)
      if (f[lane] < 0 || f[lane] >= size)
        throw py::value_error("model_step: a feature is outside its embedding table");
  }
  std::vector<Input<int16_t>> weights;
  std::vector<Input<int32_t>> biases;
  for (int64_t layer = 0; layer <= layers; ++layer) {
    const bool head = layer == layers;
    const int64_t outputs[4] = {3 * d_model, d_model, d_ff, d_model};
    const int64_t inputs[4] = {d_model, d_model, d_model, d_ff};
    for (int part = 0; part < (head ? 1 : 4); ++part) {
      const size_t i = static_cast<size_t>(4 * layer + part);
      const int64_t out = head ? 256 : outputs[part], in = head ? d_model : inputs[part];
      weights.push_back(input<int16_t>(weights_in[i], "model_step: weights", {out, in}));
      biases.push_back(input<int32_t>(biases_in[i], "model_step: biases", {out}));
    }
  }
  std::vector<Input<int32_t>> ring_bias, memory_bias;
  for (int64_t layer = 0; layer < layers; ++layer) {
    ring_bias.push_back(input<int32_t>(ring_bias_in[layer], "model_step: ring_bias",
                                       {heads, window}));
    memory_bias.push_back(input<int32_t>(memory_bias_in[layer], "model_step: memory_bias",
                                         {heads, ring}));
  }
  const auto lut = input<int32_t>(lut_in, "model_step: lut", {kAny});
  if (lut.shape(0) < 1) throw py::value_error("model_step: empty lut");

  const int64_t slot = position % window;
  int64_t compress_shift = 0;
  while ((int64_t{2} << compress_shift) <= compression) ++compress_shift;
  // Newest compressed block entirely older than the window (Python floor division).
  const int64_t newest_numerator = position - window - (compression - 1);
  const int64_t newest = newest_numerator >= 0
                             ? newest_numerator / compression
                             : -((-newest_numerator + compression - 1) / compression);
  std::vector<int64_t> block_slots(compression);
  for (int64_t i = 0; i < compression; ++i)
    block_slots[i] = ((position - i) % window + window) % window;
  Model m;
  m.layers = layers;
  m.d_model = d_model;
  m.d_ff = d_ff;
  m.previous = features[0].data();
  m.match = features[1].data();
  m.match_length = features[2].data();
  m.record = features[3].data();
  for (int i = 0; i < 4; ++i) m.embed[i] = embed[i].data();
  for (size_t i = 0; i < linears; ++i) {
    m.weights.push_back(weights[i].data());
    m.biases.push_back(biases[i].data());
    m.shifts.push_back(static_cast<int>(shifts[i]));
  }
  for (int64_t layer = 0; layer < layers; ++layer) {
    const std::initializer_list<py::ssize_t> ring_shape = {lanes, heads, dim, window};
    const std::initializer_list<py::ssize_t> memory_shape = {lanes, heads, dim, ring};
    m.attention.push_back(Layer{
        heads, dim, window, ring, lut.shape(0) - 1, slot, position, compression,
        compress_shift, newest, static_cast<int>(score_shift), static_cast<int32_t>(masked),
        position % compression == compression - 1,
        vortex::in_place<int8_t>(ring_keys[layer], "model_step: ring_keys", ring_shape),
        vortex::in_place<int8_t>(ring_values[layer], "model_step: ring_values", ring_shape),
        vortex::in_place<int8_t>(memory_keys[layer], "model_step: memory_keys", memory_shape),
        vortex::in_place<int8_t>(memory_values[layer], "model_step: memory_values",
                                 memory_shape),
        ring_bias[layer].data(), memory_bias[layer].data(), lut.data(), block_slots.data()});
  }
  py::array_t<float> logits({lanes, int64_t{256}});
  m.logits = logits.mutable_data();
  const int threads = vortex::thread_count();
  {
    py::gil_scoped_release release;
    vortex::parallel_for(lanes, 16, threads, [&](int64_t begin, int64_t end) {
      StepBuffers buffers(m);
      step_lanes(m, begin, end, buffers);
    });
  }
  return logits;
}

// CDFs (rows, 257) int32 from integer-valued float32 logits (rows, 256): weights
// lut[min(max - logit, size - 1)], then frequencies 1 + floor(w * (2^16 - 256) / sum w),
// what is left of 2^16 added to the first largest weight (intmath.cdf_from_logits).
py::array_t<int32_t> cdf_from_logits(const py::array& logits_in, const py::array& lut_in) {
  const auto logits = input<float>(logits_in, "cdf_from_logits: logits", {kAny, kSymbols});
  const auto lut = input<int32_t>(lut_in, "cdf_from_logits: lut", {kAny});
  const int64_t rows = logits.shape(0);
  const int64_t lut_last = lut.shape(0) - 1;
  if (lut_last < 0) throw py::value_error("cdf_from_logits: empty lut");
  py::array_t<int32_t> cdf({rows, int64_t{kSymbols + 1}});
  const float* lg = logits.data();
  const int32_t* lp = lut.data();
  int32_t* out = cdf.mutable_data();
  const int threads = vortex::thread_count();
  py::gil_scoped_release release;
  vortex::parallel_for(rows, 64, threads, [&](int64_t begin, int64_t end) {
    int32_t weights[kSymbols];
    for (int64_t row = begin; row < end; ++row) {
      const float* x = lg + row * kSymbols;
      float best = x[0];
      for (int j = 1; j < kSymbols; ++j) best = std::max(best, x[j]);
      int32_t sum = 0, top = 0;
      for (int j = 0; j < kSymbols; ++j) {
        // (max with 0: a NaN logit reads lut[0], not outside the table)
        const int64_t delta =
            std::max<int64_t>(0, std::min<int64_t>(static_cast<int64_t>(best - x[j]), lut_last));
        weights[j] = lp[delta];
        sum += weights[j];
        if (weights[j] > weights[top]) top = j;
      }
      vortex::cdf_from_weights(weights, sum, top, out + row * (kSymbols + 1));
    }
  });
  return cdf;
}

PYBIND11_MODULE(_step_kernel, m) {
  m.doc() = "The byte model's CPU decoding step (numpy arrays in and out; see neural/integer.py)";
  m.def("model_step", &model_step, "one decoding step of the byte model");
  m.def("cdf_from_logits", &cdf_from_logits, "CDFs of the byte model's logits");
}
