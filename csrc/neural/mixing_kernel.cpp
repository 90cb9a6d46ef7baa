// CPU kernels of the context mixer (vortexfmt/neural/mixing.py is the reference: these
// compute the same integers, lane by lane, in one pass instead of a dozen tensor passes).
// A CPython extension module taking numpy arrays (the caller passes views of its CPU
// tensors); it links to neither torch nor OpenMP.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>

#include "array_support.h"
#include "kernel_support.h"

namespace py = pybind11;

namespace {

using vortex::input;
using vortex::kAny;
using vortex::kSymbols;

}  // namespace

struct MixArgs {  // what every lane of one mix_cdf call shares
  int64_t contexts, lanes, experts, classes, confidence_context, count_shift, score_bits,
      max_delta, fraction_mask, log2_size;
  int64_t* ex_out;
  int64_t* set_out;
  const int16_t* tab;
  const int64_t* row_of;
  const float* logits;
  int64_t model_multiplier;
  const int32_t* hit;
  const int32_t* miss;
  const int64_t* pred;
  const int64_t* bk;
  const int64_t* wt;
  const int64_t* limits;
  const int32_t* lg;
  const int64_t* ex;
  int32_t* s;
  int32_t* out;
};

// mix_lanes's working memory, allocated by its caller: a multiversioned function must not
// throw (kernel_support.h).
struct MixBuffers {
  explicit MixBuffers(int64_t contexts) : prob(kSymbols), sum(kSymbols), totals(contexts) {}
  std::vector<int64_t> prob;
  std::vector<double> sum;
  std::vector<int64_t> totals;
  bool bad = false;  // a row with a negative count or a total beyond the log2 table
};

// Lanes [begin, end) of mix_cdf (see there).
VORTEX_MULTIVERSION void mix_lanes(const MixArgs& a, int64_t begin, int64_t end,
                                   MixBuffers& buffers) {
  const int64_t contexts = a.contexts;
  const int64_t lanes = a.lanes;
  const int64_t experts = a.experts;
  const int64_t classes = a.classes;
  const int64_t confidence_context = a.confidence_context;
  const int64_t count_shift = a.count_shift;
  const int64_t score_bits = a.score_bits;
  const int64_t max_delta = a.max_delta;
  const int64_t fraction_mask = a.fraction_mask;
  int64_t* const ex_out = a.ex_out;
  int64_t* const set_out = a.set_out;
  const int16_t* const tab = a.tab;
  const int64_t* const row_of = a.row_of;
  const float* const logits = a.logits;
  const int32_t* const hit = a.hit;
  const int32_t* const miss = a.miss;
  const int64_t* const pred = a.pred;
  const int64_t* const bk = a.bk;
  const int64_t* const wt = a.wt;
  const int64_t* const limits = a.limits;
  const int32_t* const lg = a.lg;
  const int64_t* const ex = a.ex;
  int32_t* const s = a.s;
  int32_t* const out = a.out;
  std::vector<int64_t>& prob = buffers.prob;
  std::vector<double>& sum = buffers.sum;
  std::vector<int64_t>& totals = buffers.totals;
  for (int64_t lane = begin; lane < end; ++lane) {
    int32_t* ls = s + lane * experts * kSymbols;
    for (int64_t k = 0; k < contexts; ++k) {
      const int16_t* row = tab + row_of[k * lanes + lane] * kSymbols;
      int64_t total = 0;
      int16_t least = 0;
      for (int j = 0; j < kSymbols; ++j) {
        total += row[j];
        least = std::min(least, row[j]);
      }
      totals[k] = total;
      // Every log2 index below is at most (total << count_shift) + 256 when no count is
      // negative: a lane that would read outside the table is reported, not computed.
      if (least < 0 || (total << count_shift) + 256 >= a.log2_size) buffers.bad = true;
    }
    if (buffers.bad) return;
    int64_t confidence = 0;
    for (int64_t i = 0; i + 1 < classes; ++i) confidence += totals[confidence_context] > limits[i];
    set_out[lane] = bk[lane] * classes + confidence;
    const int64_t* lw = wt + set_out[lane] * experts;
    // The model's logits (1/R nat) in 1/64 bit: (logit * multiplier) >> 6, floored.
    for (int j = 0; j < kSymbols; ++j)
      ls[j] = static_cast<int32_t>(
          (static_cast<int64_t>(logits[lane * kSymbols + j]) * a.model_multiplier) >> 6);
    for (int64_t k = 0; k < contexts; ++k) {
      const int16_t* row = tab + row_of[k * lanes + lane] * kSymbols;
      const int32_t base = lg[(totals[k] << count_shift) + 256];
      int32_t* out_row = ls + (k + 1) * kSymbols;
      for (int j = 0; j < kSymbols; ++j) {
        out_row[j] = lg[(int64_t{row[j]} << count_shift) + 1] - base;
      }
    }
    int32_t* match_row = ls + (experts - 1) * kSymbols;
    const bool has = pred[lane] >= 0;
    for (int j = 0; j < kSymbols; ++j) match_row[j] = has ? miss[lane] : 0;
    if (has) match_row[pred[lane]] = hit[lane];
    // Weighted sums in double: every product and partial sum is an integer below 2^53
    // (|scores| < 2^24, |weights| <= 2^20, 9 experts), so they are exact in any order.
    for (int j = 0; j < kSymbols; ++j) sum[j] = 0.0;
    for (int64_t k = 0; k < experts; ++k) {
      const double wk = static_cast<double>(lw[k]);
      const int32_t* sk = ls + k * kSymbols;
      for (int j = 0; j < kSymbols; ++j) sum[j] += static_cast<double>(sk[j]) * wk;
    }
    // floor(sum / 2^16) and the distances to the best, still in double: exact (integers
    // below 2^53, a division by a power of two), and vectorizable, unlike int64.
    // (Eight running maxima and sums below: the compiler may not reorder floating-point
    // reductions itself, though here every order gives the same exact integer.)
    double bests[8];
    for (int i = 0; i < 8; ++i) bests[i] = -1e300;
    for (int j = 0; j < kSymbols; j += 8) {
      for (int i = 0; i < 8; ++i) {
        sum[j + i] = std::floor(sum[j + i] * (1.0 / 65536));
        bests[i] = std::max(bests[i], sum[j + i]);
      }
    }
    double best = bests[0];
    for (int i = 1; i < 8; ++i) best = std::max(best, bests[i]);
    const double delta_limit = static_cast<double>(max_delta - 1);
    int64_t total = 0;
    int top = 0;
    for (int j = 0; j < kSymbols; ++j) {
      const int64_t delta = static_cast<int64_t>(std::min(best - sum[j], delta_limit));
      prob[j] = ex[delta & fraction_mask] >> (delta >> score_bits);
      total += prob[j];
      if (prob[j] > prob[top]) top = j;
    }
    int32_t* lc = out + lane * (kSymbols + 1);
    vortex::cdf_from_weights(prob.data(), total, top, lc);
    // sum_j freq_j * scores[k][j] in double: products below 2^17 * 2^24, sums below 2^49,
    // all integers, so exact in any order.
    for (int j = 0; j < kSymbols; ++j) sum[j] = static_cast<double>(lc[j + 1] - lc[j]);
    for (int64_t k = 0; k < experts; ++k) {  // while this lane's scores are in cache
      const int32_t* sk = ls + k * kSymbols;
      double sums[8] = {};
      for (int j = 0; j < kSymbols; j += 8)
        for (int i = 0; i < 8; ++i) sums[i] += sum[j + i] * static_cast<double>(sk[j + i]);
      double sum_k = 0;
      for (int i = 0; i < 8; ++i) sum_k += sums[i];
      ex_out[lane * experts + k] = static_cast<int64_t>(sum_k);
    }
  }
}

// Scores (lanes, experts, 256) int32, CDFs (lanes, 257) int32, for the gradient once the
// byte is known sum_j freq_j * scores[e][j] (lanes, experts) int64, and each lane's weight
// set (lanes,) int64, of one step, as numpy arrays.
// tables: (rows, 256) int16 count tables; rows: (contexts, lanes) int64, the row each
// context selects; logits: (lanes, 256) float32, the byte model's integer logits, which
// score (logit * model_multiplier) >> 6; match_hit, match_miss: (lanes,)
// int32; predicted: (lanes,) int64, -1 for no match; bucket: (lanes,) int64 match bucket;
// weight_table: (sets, experts) int64; the weight set is bucket * (limits + 1) + how many
// of `confidence_limits` the total count of context `confidence_context` exceeds;
// log2: int32 table; exp2: (2^score_bits,) int64.
py::tuple mix_cdf(const py::array& tables_in, const py::array& rows_in,
                  const py::array& logits_in, int64_t model_multiplier,
                  const py::array& match_hit_in, const py::array& match_miss_in,
                  const py::array& predicted_in, const py::array& bucket_in,
                  const py::array& weight_table_in, const py::array& confidence_limits_in,
                  int64_t confidence_context, const py::array& log2_in,
                  const py::array& exp2_in, int64_t score_bits, int64_t max_delta,
                  int64_t count_shift) {
  const auto tables = input<int16_t>(tables_in, "mix_cdf: tables", {kAny, kSymbols});
  const auto rows = input<int64_t>(rows_in, "mix_cdf: rows", {kAny, kAny});
  const int64_t contexts = rows.shape(0);
  const int64_t lanes = rows.shape(1);
  const int64_t experts = contexts + 2;
  const auto logits = input<float>(logits_in, "mix_cdf: logits", {lanes, kSymbols});
  const auto match_hit = input<int32_t>(match_hit_in, "mix_cdf: match_hit", {lanes});
  const auto match_miss = input<int32_t>(match_miss_in, "mix_cdf: match_miss", {lanes});
  const auto predicted = input<int64_t>(predicted_in, "mix_cdf: predicted", {lanes});
  const auto bucket = input<int64_t>(bucket_in, "mix_cdf: bucket", {lanes});
  const auto weight_table =
      input<int64_t>(weight_table_in, "mix_cdf: weight_table", {kAny, experts});
  const auto confidence_limits =
      input<int64_t>(confidence_limits_in, "mix_cdf: confidence_limits", {kAny});
  const auto log2 = input<int32_t>(log2_in, "mix_cdf: log2", {kAny});
  const auto exp2 = input<int64_t>(exp2_in, "mix_cdf: exp2", {kAny});
  const int64_t classes = confidence_limits.shape(0) + 1;
  const int64_t sets = weight_table.shape(0);
  if (contexts < 1 || confidence_context < 0 || confidence_context >= contexts)
    throw py::value_error("mix_cdf: confidence_context is not one of the contexts");
  if (score_bits < 0 || score_bits > 30 || exp2.shape(0) < (int64_t{1} << score_bits) ||
      max_delta < 1 || ((max_delta - 1) >> score_bits) >= 63 || count_shift < 0 ||
      count_shift > 30 || log2.shape(0) < 257)
    throw py::value_error("mix_cdf: bad score_bits, max_delta, count_shift or tables");
  const int64_t table_rows = tables.shape(0);
  const int64_t* row_of = rows.data();
  for (int64_t i = 0; i < contexts * lanes; ++i)
    if (row_of[i] < 0 || row_of[i] >= table_rows)
      throw py::value_error("mix_cdf: a row is outside the count tables");
  const int64_t* pred = predicted.data();
  const int64_t* bk = bucket.data();
  for (int64_t lane = 0; lane < lanes; ++lane) {
    if (pred[lane] < -1 || pred[lane] >= kSymbols)
      throw py::value_error("mix_cdf: a predicted byte is outside -1..255");
    if (bk[lane] < 0 || bk[lane] >= sets / classes)
      throw py::value_error("mix_cdf: a bucket has no weight set");
  }
  py::array_t<int32_t> scores({lanes, experts, int64_t{kSymbols}});
  py::array_t<int32_t> cdf({lanes, int64_t{kSymbols + 1}});
  py::array_t<int64_t> expected({lanes, experts});
  py::array_t<int64_t> weight_set({lanes});
  const int64_t fraction_mask = (int64_t{1} << score_bits) - 1;
  const MixArgs args{contexts,       lanes,
                     experts,        classes,
                     confidence_context, count_shift,
                     score_bits,     max_delta,
                     fraction_mask,  log2.shape(0),
                     expected.mutable_data(), weight_set.mutable_data(),
                     tables.data(),  row_of,
                     logits.data(),  model_multiplier,
                     match_hit.data(), match_miss.data(),
                     pred,           bk,
                     weight_table.data(), confidence_limits.data(),
                     log2.data(),    exp2.data(),
                     scores.mutable_data(), cdf.mutable_data()};
  const int threads = vortex::thread_count();
  std::atomic<bool> bad{false};
  {
    py::gil_scoped_release release;
    vortex::parallel_for(lanes, 16, threads, [&](int64_t begin, int64_t end) {
      MixBuffers buffers(contexts);
      mix_lanes(args, begin, end, buffers);
      if (buffers.bad) bad = true;
    });
  }
  if (bad) throw py::value_error("mix_cdf: a count table row is negative or beyond log2");
  return py::make_tuple(scores, cdf, expected, weight_set);
}

// Sums over the active lanes of each bucket of the mixer's gradient
// (scores[y] * 2^16 - sum_j freq_j * scores[j]), and how many lanes each bucket had.
py::tuple mix_gradient(const py::array& scores_in, const py::array& expected_in,
                       const py::array& symbols_in, const py::array& bucket_in,
                       const py::array& active_in, int64_t buckets) {
  const auto scores = input<int32_t>(scores_in, "mix_gradient: scores", {kAny, kAny, kSymbols});
  const int64_t lanes = scores.shape(0);
  const int64_t experts = scores.shape(1);
  const auto expected = input<int64_t>(expected_in, "mix_gradient: expected", {lanes, experts});
  const auto symbols = input<int64_t>(symbols_in, "mix_gradient: symbols", {lanes});
  const auto bucket = input<int64_t>(bucket_in, "mix_gradient: bucket", {lanes});
  const auto active = input<bool>(active_in, "mix_gradient: active", {lanes});
  if (buckets < 0) throw py::value_error("mix_gradient: buckets < 0");
  const int32_t* s = scores.data();
  const int64_t* ex = expected.data();
  const int64_t* y = symbols.data();
  const int64_t* b = bucket.data();
  const bool* on = active.data();
  for (int64_t lane = 0; lane < lanes; ++lane) {
    if (!on[lane]) continue;
    if (y[lane] < 0 || y[lane] >= kSymbols || b[lane] < 0 || b[lane] >= buckets)
      throw py::value_error("mix_gradient: an active lane's byte or bucket is out of range");
  }
  std::vector<int64_t> per_lane(static_cast<size_t>(lanes * experts), 0);
  py::array_t<int64_t> total({buckets, experts});
  py::array_t<int64_t> count({buckets});
  int64_t* t = total.mutable_data();
  int64_t* n = count.mutable_data();
  const int threads = vortex::thread_count();
  {
    py::gil_scoped_release release;
    int64_t* g = per_lane.data();
    vortex::parallel_for(lanes, 16, threads, [&](int64_t begin, int64_t end) {
      for (int64_t lane = begin; lane < end; ++lane) {
        if (!on[lane]) continue;
        for (int64_t k = 0; k < experts; ++k) {
          const int32_t* row = s + (lane * experts + k) * kSymbols;
          g[lane * experts + k] = (int64_t{row[y[lane]]} << 16) - ex[lane * experts + k];
        }
      }
    });
    std::fill(t, t + buckets * experts, int64_t{0});
    std::fill(n, n + buckets, int64_t{0});
    for (int64_t lane = 0; lane < lanes; ++lane) {  // in lane order, as before
      if (!on[lane]) continue;
      n[b[lane]] += 1;
      for (int64_t k = 0; k < experts; ++k) t[b[lane] * experts + k] += g[lane * experts + k];
    }
  }
  return py::make_tuple(total, count);
}

// Adds one to tables[rows[k][lane]][symbols[lane]] for every context k and active lane,
// then scales down (row * limit / max of row, floored) each row where an added-to cell
// passed `limit`: what ContextMixer.update does with index_add_ and unique(). `tables`
// (a view of the mixer's tensor) is written in place.
void count_update(py::array tables_in, const py::array& rows_in, const py::array& symbols_in,
                  const py::array& active_in, int64_t limit) {
  int16_t* tab = vortex::in_place<int16_t>(tables_in, "count_update: tables", {kAny, kSymbols});
  const int64_t table_rows = tables_in.shape(0);
  const auto rows = input<int64_t>(rows_in, "count_update: rows", {kAny, kAny});
  const int64_t contexts = rows.shape(0);
  const int64_t lanes = rows.shape(1);
  const auto symbols = input<int64_t>(symbols_in, "count_update: symbols", {lanes});
  const auto active = input<bool>(active_in, "count_update: active", {lanes});
  if (limit < 1 || limit > INT16_MAX - 1) throw py::value_error("count_update: bad limit");
  const int64_t* row_of = rows.data();
  const int64_t* y = symbols.data();
  const bool* on = active.data();
  for (int64_t i = 0; i < contexts * lanes; ++i) {
    if (!on[i % lanes]) continue;
    if (row_of[i] < 0 || row_of[i] >= table_rows || y[i % lanes] < 0 ||
        y[i % lanes] >= kSymbols)
      throw py::value_error("count_update: an active lane's row or byte is out of range");
  }
  py::gil_scoped_release release;
  for (int64_t i = 0; i < contexts * lanes; ++i) {
    if (on[i % lanes]) tab[row_of[i] * kSymbols + y[i % lanes]] += 1;
  }
  for (int64_t i = 0; i < contexts * lanes; ++i) {
    if (!on[i % lanes]) continue;
    int16_t* row = tab + row_of[i] * kSymbols;
    if (row[y[i % lanes]] <= limit) continue;  // also when an earlier lane scaled it
    int32_t largest = 0;
    for (int j = 0; j < kSymbols; ++j) largest = std::max<int32_t>(largest, row[j]);
    for (int j = 0; j < kSymbols; ++j)
      row[j] = static_cast<int16_t>(int32_t{row[j]} * limit / largest);
  }
}

PYBIND11_MODULE(_mixing_kernel, m) {
  m.doc() = "The context mixer's CPU kernels (numpy arrays in and out; see neural/mixing.py)";
  m.def("count_update", &count_update, "count table update of one mixing step (in place)");
  m.def("mix_cdf", &mix_cdf, "scores and CDFs of one mixing step");
  m.def("mix_gradient", &mix_gradient, "the mixer's gradient sums by bucket");
}
