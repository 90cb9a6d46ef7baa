"""The record length an encoder looks for in a frame (numpy only: cm's encoder needs it,
and a process that codes only cm frames never imports torch)."""

from __future__ import annotations

import numpy as np

MAX_STRIDE = 1024


def choose_stride(data: bytes, sample: int = 1 << 16, shortest: int = 2) -> int:
    """Record length guess: the lag in shortest..MAX_STRIDE at which bytes most often repeat.

    Returns 0 (no record structure) when no lag repeats at least 5% of sampled bytes.
    Only the encoder calls this; the chosen stride is stored in the payload.
    """
    values = np.frombuffer(data[:sample + MAX_STRIDE], dtype=np.uint8)
    if len(values) <= 2 * MAX_STRIDE:
        return 0
    tail = values[MAX_STRIDE:]
    counts = np.array([np.count_nonzero(tail == values[MAX_STRIDE - lag:len(values) - lag])
                       for lag in range(shortest, MAX_STRIDE + 1)])
    best = int(counts.argmax())
    return best + shortest if counts[best] >= 0.05 * len(tail) else 0
