"""Adaptive context mixing over the byte model (codec id 4, FORMAT.md "Mixed payload").

The byte model is trained once and frozen; real files hold strings, tables and repeats it
has never seen. This stage lets every frame adapt to its own data: count tables of the
bytes that followed each context so far in the frame (orders 1, 2, 3, 4 and 6 of the lane's
own bytes, the byte one record back with the previous byte, and the column of a record with
the byte one record back), the match model's hit rate by match length, and the model's own
prediction are combined by a mixer whose weights it learns as the frame is decoded.

Every quantity is an integer and every operation is integer arithmetic on int16/int32/int64
tensors (gathers, sums, shifts, floor division, index_add of integers), so results do not
depend on summation order, thread count, batch size or device: the encoder and the decoder
compute the same CDFs wherever they run. The two lookup tables are integers defined here:
`EXP2_FRACTION` is written out, and `log2_table` is computed with integer squaring only.

Scores are log-probabilities in 1/64 bit (`SCORE_BITS`). At step t every lane gets

    z_j = sum_i w[s, i] * s_i[j] >> 16   (s: the lane's weight set: its match-length
                                          bucket and how often its order-4 context was seen)
    p_j proportional to 2^((z_j - max z) / 64),   CDF as `intmath.cdf_from_weights`

and once the bytes y of step t are known the weights move along the gradient of log p(y),
summed over the lanes of each weight set: w[s, i] += floor(G[s, i] * 2^LEARNING_SHIFT /
(count[s] * 2^16)) with G = sum over lanes of (s_i[y] * 2^16 - sum_j freq_j * s_i[j]).
FORMAT.md "Mixed payload" states all of it.
"""

from __future__ import annotations

import functools

import torch

from vortexfmt import native
from vortexfmt.neural import intmath
from vortexfmt.neural.features import NONE, FrameContext
from vortexfmt.spec.neural import MAX_MIXED_LANES

SCORE_BITS = 6  # scores are in units of 2^-6 bit
WEIGHT_ONE = 1 << 16
WEIGHT_LIMIT = 1 << 20
LEARNING_SHIFT = 5  # learning rate 32 / 2^16 per unit of score gradient
COUNT_LIMIT = 255  # a table row whose largest count passes this is scaled down
#: log2 of the rows of each count table (COUNT_CONTEXTS order).
TABLE_BITS = (16, 16, 16, 16, 16, 16, 16)
COUNT_SHIFT = 4  # a count c scores log2((c * 2^k + 1) / (total * 2^k + 256)): prior 256 / 2^k
LOG_TABLE_SIZE = 1 << 20  # covers 256 * COUNT_LIMIT * 2^COUNT_SHIFT + 256
MAX_DELTA = 16 << SCORE_BITS  # scores more than 16 bits below the best weigh 2^-16
MATCH_BUCKETS = 24
#: Weight sets: match bucket x confidence class of the order-4 context (CONFIDENCE_LIMITS).
CONFIDENCE_LIMITS = (0, 3, 15)
CONFIDENCE_CONTEXT = 3  # order4
WEIGHT_SETS = MATCH_BUCKETS * (len(CONFIDENCE_LIMITS) + 1)
MATCH_COUNT_LIMIT = 1 << 15
#: A count grows by at most the number of lanes (spec.neural.MAX_MIXED_LANES) in one step,
#: so int16 counts stay below COUNT_LIMIT + 16384 < 2^15; the hit and miss counts stay below
#: MATCH_COUNT_LIMIT + 16384, inside the log table.
MAX_LANES = MAX_MIXED_LANES
#: The byte model's logits are in 1/R nat (R: its out_resolution); times
#: (LOG2_E_4096 // R) / 64 ~ 64 / (R ln 2) they are in 1/64 bit.
LOG2_E_4096 = 5909  # floor(4096 / ln 2)
#: Count tables: name and the context that selects a row.
COUNT_CONTEXTS = ("order1", "order2", "order3", "order4", "order6", "record", "column")
EXPERTS = ("model",) + COUNT_CONTEXTS + ("match",)
INITIAL_WEIGHTS = (WEIGHT_ONE,) + (WEIGHT_ONE * 3 // 10,) * len(COUNT_CONTEXTS) \
    + (WEIGHT_ONE // 2,)

#: round(2^16 * 2^(-i/64)) for i in 0..63.
EXP2_FRACTION = (
    65536, 64830, 64132, 63441, 62757, 62081, 61413, 60751, 60097, 59449, 58809, 58176,
    57549, 56929, 56316, 55709, 55109, 54515, 53928, 53347, 52773, 52204, 51642, 51085,
    50535, 49991, 49452, 48920, 48393, 47871, 47356, 46846, 46341, 45842, 45348, 44859,
    44376, 43898, 43425, 42958, 42495, 42037, 41584, 41136, 40693, 40255, 39821, 39392,
    38968, 38548, 38133, 37722, 37316, 36914, 36516, 36123, 35734, 35349, 34968, 34591,
    34219, 33850, 33486, 33125,
)


def floor_log2(values: torch.Tensor) -> torch.Tensor:
    """floor(log2 v) of int64 values 1 <= v < 2^32 (0 for v = 0), by binary search."""
    exponent = torch.zeros_like(values)
    for bit in (16, 8, 4, 2, 1):
        big = (values >> (exponent + bit)) > 0
        exponent = torch.where(big, exponent + bit, exponent)
    return exponent


@functools.lru_cache(maxsize=2)
def log2_table(size: int = LOG_TABLE_SIZE) -> torch.Tensor:
    """log2(n) in 1/64 bit for 1 <= n < size (entry 0 is 0), int32, from integers only.

    n = 2^e * m with m in [1, 2) held as a 30-bit fraction; each fraction bit of log2(m)
    comes from squaring m (truncated to 30 bits) and halving it when it reaches 2."""
    n = torch.arange(size, dtype=torch.int64).clamp(min=1)
    exponent = floor_log2(n)
    mantissa = (n << 30) >> exponent  # in [2^30, 2^31)
    fraction = torch.zeros(size, dtype=torch.int64)
    for _ in range(SCORE_BITS):
        mantissa = (mantissa * mantissa) >> 30
        two = mantissa >= 1 << 31
        fraction = fraction * 2 + two.to(torch.int64)
        mantissa = torch.where(two, mantissa >> 1, mantissa)
    table = (exponent << SCORE_BITS) + fraction
    table[0] = 0
    return table.to(torch.int32)


def _hash_step(h: torch.Tensor, byte: torch.Tensor) -> torch.Tensor:
    return (h * 0x2F0F1 + byte + 1) & ((1 << 30) - 1)


def _row(h: torch.Tensor, salt: int, bits: int) -> torch.Tensor:
    return (((h ^ (salt << 24)) * 2654435761) >> 14) & ((1 << bits) - 1)


def match_bucket(length: torch.Tensor) -> torch.Tensor:
    """Match lengths 0..15 as they are, then one bucket per power of two up to 2^11+."""
    return torch.where(length < 16, length, 12 + floor_log2(length)) \
        .clamp(max=MATCH_BUCKETS - 1)


class ContextMixer:
    """One frame's adaptive statistics. Call `cdf(t, logits, match, run_length, record)`
    for step t, then `update(symbols, active)` with the bytes of step t before the next
    step."""

    def __init__(self, context: FrameContext, out_resolution: int,
                 device: torch.device | str = "cpu") -> None:
        self.context = context
        self.model_multiplier = LOG2_E_4096 // out_resolution
        self.device = torch.device(device)
        lanes = context.lanes
        if lanes > MAX_LANES:
            raise ValueError(f"{lanes} lanes; context mixing allows at most {MAX_LANES}")
        self.log2 = log2_table().to(self.device)
        self.exp2 = torch.tensor(EXP2_FRACTION, dtype=torch.int64, device=self.device)
        self.log255 = int(self.log2[255])
        sizes = [1 << bits for bits in TABLE_BITS]
        self.table_offsets = torch.tensor([sum(sizes[:i]) for i in range(len(sizes))],
                                          dtype=torch.int64).unsqueeze(1)
        self.tables = torch.zeros(sum(sizes), 256, dtype=torch.int16, device=self.device)
        self.weights = torch.tensor([INITIAL_WEIGHTS] * WEIGHT_SETS, dtype=torch.int64,
                                    device=self.device)
        self.hits = torch.zeros(MATCH_BUCKETS, dtype=torch.int64, device=self.device)
        self.misses = torch.zeros(MATCH_BUCKETS, dtype=torch.int64, device=self.device)
        self.confidence_limits = torch.tensor(CONFIDENCE_LIMITS, dtype=torch.int64)
        self.lane_ids = torch.arange(lanes, device=self.device)
        self.positions = torch.arange(lanes, dtype=torch.int64) * context.lane_length
        self._step: dict[str, torch.Tensor] = {}

    # Contexts ------------------------------------------------------------------------------

    def _rows(self, t: int, record: torch.Tensor) -> torch.Tensor:
        """(contexts, lanes) table rows of every lane at step t, offset into the flat table."""
        data = self.context.data
        lanes = self.context.lanes
        none = torch.full((lanes,), NONE, dtype=torch.int64)
        back = [data[:, t - k] if t >= k else none for k in range(1, 7)]
        h = torch.zeros(lanes, dtype=torch.int64)
        hashes = []
        for order in range(1, 7):
            h = _hash_step(h, back[order - 1])
            if order != 5:
                hashes.append(h)
        hashes.append(_hash_step(_hash_step(h.new_zeros(lanes), record), back[0]))
        stride = self.context.stride
        column = (self.positions + t) % stride if stride else torch.zeros_like(h)
        hashes.append(_hash_step(_hash_step(h.new_zeros(lanes), column), record))
        rows = torch.stack([_row(h, salt, bits) for salt, (h, bits)
                            in enumerate(zip(hashes, TABLE_BITS, strict=True), start=1)])
        return (rows + self.table_offsets).to(self.device)

    # Prediction ------------------------------------------------------------------------------

    def cdf(self, t: int, logits: torch.Tensor, match: torch.Tensor,
            match_length: torch.Tensor, record: torch.Tensor) -> torch.Tensor:
        """CDFs (lanes, 257) int32 for step t from the model's integer logits (lanes, 256)
        (1/out_resolution nat), the match model's predicted byte (NONE: no match), its run
        length, and the byte one record back."""
        rows = self._rows(t, record)
        bucket = match_bucket(match_length.to(self.device))
        match = match.to(self.device)
        has = match != NONE
        hits, misses = self.hits[bucket], self.misses[bucket]
        seen = self.log2[2 * (hits + misses) + 2]
        hit_score = (self.log2[2 * hits + 1] - seen).to(torch.int32)
        miss_score = (self.log2[2 * misses + 1] - seen - self.log255).to(torch.int32)
        predicted = torch.where(has, match, -1)
        kernel = native.mixing_kernel() if self.device.type == "cpu" else None
        if kernel is not None:
            # The kernel takes numpy views of the CPU tensors and returns numpy arrays,
            # which torch.from_numpy wraps without a copy.
            scores, cdf, expected, weight_set = map(torch.from_numpy, kernel.mix_cdf(
                self.tables.numpy(), rows.contiguous().numpy(),
                logits.to(torch.float32).contiguous().numpy(), self.model_multiplier,
                hit_score.numpy(), miss_score.numpy(), predicted.numpy(), bucket.numpy(),
                self.weights.numpy(), self.confidence_limits.numpy(), CONFIDENCE_CONTEXT,
                self.log2.numpy(), self.exp2.numpy(), SCORE_BITS, MAX_DELTA, COUNT_SHIFT))
        else:
            model_scores = ((logits.to(self.device, torch.int64) * self.model_multiplier)
                            >> 6).to(torch.int32)
            counts = self.tables[rows.view(-1)].view(len(COUNT_CONTEXTS), len(match), 256)
            observed = counts[CONFIDENCE_CONTEXT].sum(dim=-1, dtype=torch.int64)
            confidence = torch.zeros_like(observed)
            for limit in CONFIDENCE_LIMITS:
                confidence += (observed > limit).to(torch.int64)
            weight_set = bucket * (len(CONFIDENCE_LIMITS) + 1) + confidence
            scores, cdf = self._reference_cdf(counts, model_scores, hit_score, miss_score,
                                              predicted, self.weights[weight_set])
            expected = None
        self._step = {"rows": rows, "scores": scores, "bucket": bucket,
                      "weight_set": weight_set, "has": has, "predicted": predicted, "cdf": cdf,
                      "expected": expected, "kernel": kernel}
        return cdf

    def _reference_cdf(self, counts, model_scores, hit_score, miss_score, predicted,
                       weights) -> tuple[torch.Tensor, torch.Tensor]:
        """What the C++ kernel computes, as torch operations (any device)."""
        lanes = len(predicted)
        scores = torch.empty(lanes, len(EXPERTS), 256, dtype=torch.int32, device=self.device)
        scores[:, 0] = model_scores
        totals = counts.to(torch.int64).sum(dim=-1, keepdim=True)
        scores[:, 1:-1] = (self.log2[(counts.to(torch.int64) << COUNT_SHIFT) + 1]
                           - self.log2[(totals << COUNT_SHIFT) + 256]).transpose(0, 1)
        has = predicted >= 0
        match_scores = scores[:, -1]
        match_scores.copy_(torch.where(has, miss_score, 0).unsqueeze(1).expand(lanes, 256))
        match_scores[self.lane_ids[has], predicted[has]] = hit_score[has]
        mixed = (scores.to(torch.int64) * weights.unsqueeze(-1)).sum(dim=1) >> 16
        delta = (mixed.amax(dim=-1, keepdim=True) - mixed).clamp_(max=MAX_DELTA - 1)
        probability = self.exp2[delta & ((1 << SCORE_BITS) - 1)] >> (delta >> SCORE_BITS)
        return scores, intmath.cdf_from_weights(probability)

    # Learning ---------------------------------------------------------------------------------

    def update(self, symbols: torch.Tensor, active: torch.Tensor) -> None:
        """Learn from the bytes `symbols` (lanes,) of the step just coded; lanes not
        `active` (shorter than this step) are ignored."""
        step = self._step
        symbols = symbols.to(self.device, torch.int64)
        active = active.to(self.device)
        bucket = step["bucket"]
        kernel = step["kernel"]  # the one that computed this step's CDFs, or None
        if kernel is not None:
            total, count = map(torch.from_numpy, kernel.mix_gradient(
                *(x.contiguous().numpy() for x in (step["scores"], step["expected"], symbols,
                                                   step["weight_set"], active)),
                WEIGHT_SETS))
        else:
            total, count = self._reference_gradient(step["scores"], step["cdf"], symbols,
                                                    step["weight_set"], active)
        step_size = torch.div(total << LEARNING_SHIFT, count.clamp(min=1).unsqueeze(1) << 16,
                              rounding_mode="floor")
        self.weights = (self.weights + step_size).clamp_(-WEIGHT_LIMIT, WEIGHT_LIMIT)
        # Match model hit rates by length bucket.
        y = symbols[active]
        bucket = bucket[active]
        has = step["has"][active]
        hit = (step["predicted"][active] == y) & has
        self.hits.index_add_(0, bucket[has], hit[has].to(torch.int64))
        self.misses.index_add_(0, bucket[has], (~hit[has]).to(torch.int64))
        over = (self.hits + self.misses) > MATCH_COUNT_LIMIT
        self.hits = torch.where(over, self.hits >> 1, self.hits)
        self.misses = torch.where(over, self.misses >> 1, self.misses)
        # Count tables: add one to each context's row for the byte that followed it. Every
        # count was <= COUNT_LIMIT before, so a row passes the limit only where a cell did.
        if kernel is not None:
            # In place: the numpy view shares the memory of self.tables (contiguous, made
            # by torch.zeros and only ever updated in place), so the writes land there.
            kernel.count_update(self.tables.numpy(), step["rows"].contiguous().numpy(),
                                symbols.contiguous().numpy(), active.contiguous().numpy(),
                                COUNT_LIMIT)
            return
        rows = step["rows"][:, active].reshape(-1)
        cells = (rows << 8) + y.repeat(len(COUNT_CONTEXTS))
        flat = self.tables.view(-1)
        flat.index_add_(0, cells, torch.ones(len(cells), dtype=torch.int16, device=self.device))
        full = rows[flat[cells] > COUNT_LIMIT]
        if full.numel():
            full = full.unique()
            counts = self.tables[full].to(torch.int32)
            largest = counts.amax(dim=-1, keepdim=True)
            self.tables[full] = torch.div(counts * COUNT_LIMIT, largest,
                                          rounding_mode="floor").to(torch.int16)

    def _reference_gradient(self, scores, cdf, symbols, weight_set,
                            active) -> tuple[torch.Tensor, torch.Tensor]:
        """What the C++ kernel computes, as torch operations (any device)."""
        scores = scores[active].to(torch.int64)
        cdf = cdf[active].to(torch.int64)
        y = symbols[active]
        weight_set = weight_set[active]
        freq = cdf[:, 1:] - cdf[:, :-1]
        chosen = scores[torch.arange(len(y), device=self.device), :, y]
        gradient = (chosen << 16) - (scores * freq.unsqueeze(1)).sum(dim=-1)
        total = torch.zeros_like(self.weights).index_add_(0, weight_set, gradient)
        count = torch.zeros(WEIGHT_SETS, dtype=torch.int64, device=self.device) \
            .index_add_(0, weight_set, torch.ones_like(weight_set))
        return total, count
