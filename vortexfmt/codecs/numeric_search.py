"""Which numeric transform (vortexfmt.codecs.numeric) a cm encoder applies to a frame.

Only the encoder runs this; the choice is recorded in the payload. Two stages:

1. A cheap estimate ranks record layouts and per-field predictors (and, unless the user
   gave a layout, ends the search when even the best is not clearly better than the
   same estimate of the frame's bytes as they are): on the frame's first
   ESTIMATE_BYTES bytes, what an adaptive order-1 coder would spend on each field's
   transformed bytes (most significant first) given the byte's place in the value and the
   byte before it. Layouts
   come from the user's layout string, or else are guessed: fields of 2, 4 or 8 bytes in
   either byte order, as one channel or as as many channels (up to 16) as fill the record
   length choose_stride finds. Each field gets the predictor (delta order 0, 1 or 2, zigzag or
   not) of lowest estimate.
2. The best layout, written interleaved and as byte planes, the same layout without
   differences (delta order 0, interleaved: the cm contexts often predict values better
   than a delta does), and the frame as it is (the identity) are each coded by the cm
   kernel itself on a sample of the frame, and the smallest wins, a transform's size
   including its share of the descriptor the payload carries (2 + 2 bytes per field); a
   transform must beat the identity by 1/128 of its size, so that noise in the sample does
   not trade the identity for a transform that is no better.

The estimate is in floating point (an encoder's heuristic: whatever it picks, the payload
records it and decodes exactly); stage 2 compares integer sizes.

Frames shorter than AUTO_MIN_RAW_SIZE are coded as they are unless the user gave a layout:
there, a sample is most of the frame, and measuring would cost more than it could save.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from vortexfmt.codecs.numeric import (
    AUTO_MIN_RAW_SIZE,
    INTERLEAVED,
    PLANES,
    Field,
    Transform,
    apply,
)
from vortexfmt.codecs.record_layout import RecordLayout

#: Bytes of the frame the estimate (stage 1) reads.
ESTIMATE_BYTES = 16 << 10
#: Stage 2 runs only if the best layout's estimate is below this fraction of the frame's
#: own (its bytes as they are, each given the byte before): text and code skip it.
PROMISING = 0.95
#: Sample the cm kernel codes for each candidate (stage 2): 1/SAMPLE_FRACTION of the
#: frame, at least SAMPLE_MIN_BYTES (all of a smaller frame), at most SAMPLE_MAX_BYTES.
#: Four candidates of 1/24 each: a sixth more encoding time, where stage 2 runs.
SAMPLE_FRACTION = 24
SAMPLE_MIN_BYTES = 12 << 10
SAMPLE_MAX_BYTES = 256 << 10
#: A transform's sample must be at least 1/MARGIN smaller than the identity's.
MARGIN = 128
#: Predictors tried per field: (delta order, zigzag).
PREDICTORS = ((0, False), (0, True), (1, True), (2, True))
GUESSED_WIDTHS = (2, 4, 8)
#: Most channels a guessed layout has (a user's layout may have up to 255 fields).
MAX_GUESSED_CHANNELS = 16

#: Codes `data` with record length `stride`; returns its size in bytes.
Measure = Callable[[bytes, int], int]


def descriptor_size(transform: Transform) -> int:
    """Bytes of the payload's numeric descriptor for `transform` (FORMAT.md)."""
    return 2 + 2 * len(transform.fields)


def stride_for(transform: Transform) -> int:
    """The record length the cm contexts see in data `transform` wrote: the record size
    when written interleaved (records of 2..1024 bytes), else none (0): a plane holds one
    byte of each record."""
    if transform.order == INTERLEAVED and 2 <= transform.record_size <= 1024:
        return transform.record_size
    return 0


def choose_transform(raw: bytes, layout: RecordLayout | None, measure: Measure,
                     identity_stride: int) -> Transform | None:
    """The transform to apply to `raw`, or None to code it as it is (the identity, whose
    record length is `identity_stride`)."""
    if layout is None and len(raw) < AUTO_MIN_RAW_SIZE:
        return None
    if layout is not None and len(raw) < layout.record_size:
        return None
    head = raw[:ESTIMATE_BYTES]
    if layout is not None:
        shapes = [tuple((f.width, f.big_endian) for f in layout.fields)]
    else:
        shapes = _guessed_shapes(identity_stride)
    bits, fields, undifferenced = min((_estimate(head, shape) for shape in shapes),
                                      key=lambda estimate: estimate[0])
    if layout is None and bits >= PROMISING * _adaptive_bits(np.frombuffer(head, np.uint8), 1):
        return None
    candidates = [Transform(fields), Transform(fields, PLANES)]
    if undifferenced != fields:
        candidates.append(Transform(undifferenced))
    sample = _sample(raw)
    best, best_size = None, measure(sample, identity_stride)
    threshold = best_size - best_size // MARGIN
    for transform in candidates:
        coded = apply(sample, transform)
        # the payload also carries the transform's descriptor (2 + 2F bytes): its share of
        # the sample counts against the transform (all of it where the sample is the frame)
        descriptor = -(-descriptor_size(transform) * len(sample) // len(raw))
        size = measure(coded, stride_for(transform)) + descriptor
        if size < threshold and size < best_size:
            best, best_size = transform, size
    return best


def _sample(raw: bytes) -> bytes:
    size = min(len(raw), max(SAMPLE_MIN_BYTES, min(SAMPLE_MAX_BYTES,
                                                   len(raw) // SAMPLE_FRACTION)))
    start = (len(raw) - size) // 2  # the middle: past any header at the start
    return bytes(raw[start:start + size])


def _guessed_shapes(stride: int) -> list[tuple[tuple[int, bool], ...]]:
    shapes = []
    for width, big_endian in itertools.product(GUESSED_WIDTHS, (False, True)):
        shapes.append(((width, big_endian),))
        channels = stride // width if stride % width == 0 else 0
        if 1 < channels <= MAX_GUESSED_CHANNELS:
            shapes.append(((width, big_endian),) * channels)
    return shapes


def _estimate(head: bytes, shape) -> tuple[int, tuple[Field, ...], tuple[Field, ...]]:
    """(estimated bits, fields with their best predictors, fields with their best
    predictors of delta order 0) of a record shape."""
    record = sum(width for width, _ in shape)
    records = len(head) // record
    body = np.frombuffer(head, np.uint8, records * record).reshape(records, record)
    total, fields, undifferenced, offset = 0, [], [], 0
    for width, big_endian in shape:
        columns = body[:, offset:offset + width].tobytes()
        offset += width
        scored = []
        for delta, zigzag in PREDICTORS:
            field = Field(width, big_endian, delta, zigzag)
            coded = np.frombuffer(apply(columns, Transform((field,))), np.uint8)
            scored.append((_adaptive_bits(coded, width), len(scored), field))
        best = min(scored)
        total += best[0]
        fields.append(best[2])
        undifferenced.append(min(s for s in scored if s[2].delta == 0)[2])
    return total, tuple(fields), tuple(undifferenced)


def _adaptive_bits(coded: np.ndarray, width: int) -> int:
    """Bits an adaptive order-1 coder would spend on `coded` (values of `width` bytes, most
    significant first), each byte given its place in the value and the byte before it:
    the Krichevsky-Trofimov code length, sum over contexts of
    log2(Gamma(n + 128) / Gamma(128)) - sum over symbols of log2(Gamma(c + 1/2) /
    Gamma(1/2)), which, unlike the empirical entropy, charges for contexts seen too few
    times to learn (many narrow fields in a small sample). Or the order-0 one (the
    context is the place alone) where that is smaller."""
    if len(coded) < 2:
        return 8 * len(coded)
    place = np.arange(len(coded), dtype=np.int64) % width
    previous = np.concatenate(([0], coded[:-1])).astype(np.int64)
    symbols = coded.astype(np.int64)
    order1 = _kt_bits(place << 8 | previous, symbols)
    order0 = _kt_bits(place, symbols)
    return int(min(order0, order1))


def _kt_bits(context: np.ndarray, symbols: np.ndarray) -> float:
    # one sort (numpy's stable sort of int32 is a radix sort) counts the (context, symbol)
    # pairs and, as the context is the key's high part, the contexts
    keys = np.sort((context << 8 | symbols).astype(np.int32), kind="stable")
    pairs, totals = _run_lengths(keys), _run_lengths(keys >> 8)
    return float(_KT_TABLES[1][totals].sum() - _KT_TABLES[0][pairs].sum())


def _run_lengths(ordered: np.ndarray) -> np.ndarray:
    ends = np.concatenate((np.flatnonzero(np.diff(ordered)), [len(ordered) - 1]))
    return np.diff(np.concatenate(([-1], ends)))


def _kt_tables(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sum_{k<c} log2(k + 1/2), sum_{k<n} log2(k + 128)) for every c, n <= size."""
    steps = np.arange(size, dtype=np.float64)
    return (np.concatenate(([0.0], np.cumsum(np.log2(steps + 0.5)))),
            np.concatenate(([0.0], np.cumsum(np.log2(steps + 128.0)))))


#: Built once (threads share them): no count in an estimate exceeds ESTIMATE_BYTES.
_KT_TABLES = _kt_tables(ESTIMATE_BYTES)
