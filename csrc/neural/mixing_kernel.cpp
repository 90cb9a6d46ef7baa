// CPU kernels of the context mixer (vortexfmt/coding/mixing.py is the reference: these
// compute the same integers, lane by lane, in one pass instead of a dozen tensor passes).
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernel_support.h"

namespace {

using vortex::kSymbols;


}  // namespace

struct MixArgs {  // what every lane of one mix_cdf call shares
  int64_t contexts, lanes, experts, classes, confidence_context, count_shift, score_bits,
      max_delta, fraction_mask;
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
      for (int j = 0; j < kSymbols; ++j) total += row[j];
      totals[k] = total;
    }
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
// set (lanes,) int64, of one step.
// tables: (rows, 256) int16 count tables; rows: (contexts, lanes) int64, the row each
// context selects; logits: (lanes, 256) float32, the byte model's integer logits, which
// score (logit * model_multiplier) >> 6; match_hit, match_miss: (lanes,)
// int32; predicted: (lanes,) int64, -1 for no match; bucket: (lanes,) int64 match bucket;
// weight_table: (sets, experts) int64; the weight set is bucket * (limits + 1) + how many
// of `confidence_limits` the total count of context `confidence_context` exceeds;
// log2: int32 table; exp2: (64,) int64.
std::vector<torch::Tensor> mix_cdf(torch::Tensor tables, torch::Tensor rows,
                                   torch::Tensor logits, int64_t model_multiplier,
                                   torch::Tensor match_hit,
                                   torch::Tensor match_miss, torch::Tensor predicted,
                                   torch::Tensor bucket, torch::Tensor weight_table,
                                   torch::Tensor confidence_limits,
                                   int64_t confidence_context, torch::Tensor log2,
                                   torch::Tensor exp2, int64_t score_bits, int64_t max_delta,
                                   int64_t count_shift) {
  TORCH_CHECK(logits.scalar_type() == torch::kFloat32, "mix_cdf takes float32 logits");
  for (const auto& tensor : {tables, rows, logits, match_hit, match_miss, predicted,
                             bucket, weight_table, confidence_limits, log2, exp2})
    TORCH_CHECK(tensor.is_contiguous(), "mix_cdf takes contiguous tensors");
  const int64_t contexts = rows.size(0);
  const int64_t lanes = rows.size(1);
  const int64_t experts = contexts + 2;
  const int64_t classes = confidence_limits.size(0) + 1;
  TORCH_CHECK(weight_table.size(1) == experts, "weights do not match the experts");
  auto scores = torch::empty({lanes, experts, kSymbols}, torch::kInt32);
  auto cdf = torch::empty({lanes, kSymbols + 1}, torch::kInt32);
  auto expected = torch::empty({lanes, experts}, torch::kInt64);
  auto weight_set = torch::empty({lanes}, torch::kInt64);
  int64_t* ex_out = expected.data_ptr<int64_t>();
  int64_t* set_out = weight_set.data_ptr<int64_t>();
  const int16_t* tab = tables.data_ptr<int16_t>();
  const int64_t* row_of = rows.data_ptr<int64_t>();
  const int32_t* hit = match_hit.data_ptr<int32_t>();
  const int32_t* miss = match_miss.data_ptr<int32_t>();
  const int64_t* pred = predicted.data_ptr<int64_t>();
  const int64_t* bk = bucket.data_ptr<int64_t>();
  const int64_t* wt = weight_table.data_ptr<int64_t>();
  const int64_t* limits = confidence_limits.data_ptr<int64_t>();
  const int32_t* lg = log2.data_ptr<int32_t>();
  const int64_t* ex = exp2.data_ptr<int64_t>();
  int32_t* s = scores.data_ptr<int32_t>();
  int32_t* out = cdf.data_ptr<int32_t>();
  const int64_t fraction_mask = (int64_t{1} << score_bits) - 1;
  const MixArgs args{contexts,  lanes, experts,  classes,  confidence_context,
                     count_shift, score_bits, max_delta, fraction_mask, ex_out, set_out,
                     tab, row_of, logits.data_ptr<float>(), model_multiplier, hit, miss,
                     pred, bk, wt, limits, lg, ex, s, out};
  at::parallel_for(0, lanes, 16, [&](int64_t begin, int64_t end) {
    MixBuffers buffers(contexts);
    mix_lanes(args, begin, end, buffers);
  });
  return {scores, cdf, expected, weight_set};
}

// Sums over the active lanes of each bucket of the mixer's gradient
// (scores[y] * 2^16 - sum_j freq_j * scores[j]), and how many lanes each bucket had.
std::vector<torch::Tensor> mix_gradient(torch::Tensor scores, torch::Tensor expected,
                                        torch::Tensor symbols, torch::Tensor bucket,
                                        torch::Tensor active, int64_t buckets) {
  const int64_t lanes = scores.size(0);
  const int64_t experts = scores.size(1);
  auto per_lane = torch::zeros({lanes, experts}, torch::kInt64);
  const int32_t* s = scores.data_ptr<int32_t>();
  const int64_t* ex = expected.data_ptr<int64_t>();
  const int64_t* y = symbols.data_ptr<int64_t>();
  const bool* on = active.data_ptr<bool>();
  int64_t* g = per_lane.data_ptr<int64_t>();
  at::parallel_for(0, lanes, 16, [&](int64_t begin, int64_t end) {
    for (int64_t lane = begin; lane < end; ++lane) {
      if (!on[lane]) continue;
      for (int64_t k = 0; k < experts; ++k) {
        const int32_t* row = s + (lane * experts + k) * kSymbols;
        g[lane * experts + k] = (int64_t{row[y[lane]]} << 16) - ex[lane * experts + k];
      }
    }
  });
  auto total = torch::zeros({buckets, experts}, torch::kInt64);
  auto count = torch::zeros({buckets}, torch::kInt64);
  int64_t* t = total.data_ptr<int64_t>();
  int64_t* n = count.data_ptr<int64_t>();
  const int64_t* b = bucket.data_ptr<int64_t>();
  for (int64_t lane = 0; lane < lanes; ++lane) {
    if (!on[lane]) continue;
    n[b[lane]] += 1;
    for (int64_t k = 0; k < experts; ++k) t[b[lane] * experts + k] += g[lane * experts + k];
  }
  return {total, count};
}

// Adds one to tables[rows[k][lane]][symbols[lane]] for every context k and active lane,
// then scales down (row * limit / max of row, floored) each row where an added-to cell
// passed `limit`: what ContextMixer.update does with index_add_ and unique().
void count_update(torch::Tensor tables, torch::Tensor rows, torch::Tensor symbols,
                  torch::Tensor active, int64_t limit) {
  TORCH_CHECK(tables.is_contiguous() && rows.is_contiguous() && symbols.is_contiguous() &&
              active.is_contiguous(), "count_update takes contiguous tensors");
  const int64_t contexts = rows.size(0);
  const int64_t lanes = rows.size(1);
  int16_t* tab = tables.data_ptr<int16_t>();
  const int64_t* row_of = rows.data_ptr<int64_t>();
  const int64_t* y = symbols.data_ptr<int64_t>();
  const bool* on = active.data_ptr<bool>();
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("count_update", &count_update, "count table update of one mixing step");
  m.def("mix_cdf", &mix_cdf, "scores and CDFs of one mixing step");
  m.def("mix_gradient", &mix_gradient, "the mixer's gradient sums by bucket");
}
