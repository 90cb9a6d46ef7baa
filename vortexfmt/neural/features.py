"""Context features the model sees besides a lane's own bytes, computed identically by the
encoder and the decoder.

A frame of n bytes is cut into lanes of `lane_length` bytes (the last may be shorter); lane
l holds frame bytes l*T .. l*T+T-1. The decoder recovers position t of every lane at once
(step t), so when predicting step t it knows every lane's bytes before t. The features use
exactly that knowledge, across lanes:

* match: the byte that followed the most recent earlier occurrence, anywhere in the frame,
  of the last MATCH_ORDER bytes of this lane, and how many bytes that match has predicted
  correctly in a row (an LZ77-like model that keeps long repeats within reach);
* record: the byte one record back (frame position - stride) when it is already known.

Everything is int64 integer arithmetic on the CPU, so both sides agree bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

NONE = 256  # feature value meaning "no byte available"
MATCH_ORDER = 5
MATCH_TABLE_BITS = 20
MATCH_LENGTH_BUCKETS = 16


def lane_count(size: int, lane_length: int) -> int:
    return -(-size // lane_length)


def lane_lengths(size: int, lane_length: int) -> torch.Tensor:
    """Length of every lane of a frame of `size` bytes."""
    count = lane_count(size, lane_length)
    lengths = torch.full((count,), lane_length, dtype=torch.int64)
    if count:
        lengths[-1] = size - (count - 1) * lane_length
    return lengths


def to_lanes(data: bytes, lane_length: int) -> torch.Tensor:
    """The frame as an (lanes, lane_length) int64 matrix, zero-padded."""
    count = lane_count(len(data), lane_length)
    padded = np.zeros(count * lane_length, dtype=np.uint8)
    padded[:len(data)] = np.frombuffer(data, dtype=np.uint8)
    return torch.from_numpy(padded.astype(np.int64)).view(count, lane_length)


def length_bucket(length: torch.Tensor) -> torch.Tensor:
    """Match lengths 0..14 as they are, 15 for 15 and more."""
    return length.clamp(max=MATCH_LENGTH_BUCKETS - 1)


@dataclass
class StepFeatures:
    """Feature values for one step, one entry per lane (int64)."""

    previous: torch.Tensor  # the lane's byte at t-1, NONE at t = 0
    match: torch.Tensor  # predicted byte or NONE
    match_length: torch.Tensor  # length bucket
    record: torch.Tensor  # byte one record back or NONE
    run_length: torch.Tensor | None = None  # the match's length, unbucketed


class FrameContext:
    """The decoder's knowledge of a frame, step by step, and the features it yields.

    Call `features(t)` before step t is coded and `advance(t, symbols)` once the bytes at
    position t of every lane (`symbols`, one per lane; padding lanes give 0) are known.
    """

    def __init__(self, size: int, lane_length: int, stride: int) -> None:
        self.lane_length = lane_length
        self.stride = stride
        self.lengths = lane_lengths(size, lane_length)
        self.lanes = len(self.lengths)
        self.data = torch.zeros(self.lanes, lane_length, dtype=torch.int64)
        self._lane_ids = torch.arange(self.lanes, dtype=torch.int64)
        self._table = torch.zeros(1 << MATCH_TABLE_BITS, dtype=torch.int64)
        self._ptr_lane = torch.zeros(self.lanes, dtype=torch.int64)
        self._ptr_pos = torch.zeros(self.lanes, dtype=torch.int64)
        self._match_length = torch.zeros(self.lanes, dtype=torch.int64)
        self._none = torch.full((self.lanes,), NONE, dtype=torch.int64)

    def features(self, t: int) -> StepFeatures:
        previous = self.data[:, t - 1] if t else self._none
        active = self._match_length > 0
        predicted = self.data[self._ptr_lane, self._ptr_pos.clamp(max=self.lane_length - 1)]
        match = torch.where(active, predicted, self._none)
        return StepFeatures(previous, match, length_bucket(self._match_length),
                            self._record(t), self._match_length.clone())

    def _record(self, t: int) -> torch.Tensor:
        if not self.stride:
            return self._none
        source = self._lane_ids * self.lane_length + t - self.stride
        lane, pos = source.div(self.lane_length, rounding_mode="floor"), \
            source.remainder(self.lane_length)
        known = (source >= 0) & (pos < t)
        return torch.where(known, self.data[lane.clamp(min=0), pos], self._none)

    def advance(self, t: int, symbols: torch.Tensor) -> None:
        self.data[:, t] = symbols
        # Follow matches that predicted right; drop the others.
        active = self._match_length > 0
        predicted = self.data[self._ptr_lane, self._ptr_pos.clamp(max=self.lane_length - 1)]
        correct = active & (predicted == symbols)
        next_pos = self._ptr_pos + 1
        correct &= next_pos < self.lengths[self._ptr_lane]
        self._match_length = torch.where(correct, self._match_length + 1,
                                         torch.zeros_like(self._match_length))
        self._ptr_pos = torch.where(correct, next_pos, self._ptr_pos)
        if t + 1 < MATCH_ORDER or t + 1 >= self.lane_length:
            return
        # Context of position t+1 in every lane: its last MATCH_ORDER bytes.
        hashes = self._hash(self.data[:, t + 1 - MATCH_ORDER:t + 1])
        found = self._table[hashes]
        take = (self._match_length == 0) & (found > 0)
        self._ptr_lane = torch.where(take, (found - 1).remainder(self.lanes), self._ptr_lane)
        self._ptr_pos = torch.where(take, (found - 1).div(self.lanes, rounding_mode="floor"),
                                    self._ptr_pos)
        self._match_length = torch.where(take, torch.ones_like(self._match_length),
                                         self._match_length)
        # Record where these contexts occur; the newest (largest) entry wins every slot.
        valid = (t + 1) < self.lengths
        entries = torch.where(valid, (t + 1) * self.lanes + self._lane_ids + 1,
                              torch.zeros_like(self._lane_ids))
        self._table.scatter_reduce_(0, hashes, entries, reduce="amax")

    @staticmethod
    def _hash(context: torch.Tensor) -> torch.Tensor:
        mask = (1 << 22) - 1
        h = torch.zeros(context.shape[0], dtype=torch.int64)
        for column in range(context.shape[1]):
            h = (h * 773 + context[:, column] + 1) & mask
        return ((h * 2654435761) >> 12) & ((1 << MATCH_TABLE_BITS) - 1)


def frame_features(data: bytes, lane_length: int, stride: int) -> tuple[torch.Tensor, ...]:
    """Features of a whole frame, as the decoder will see them: four (lanes, T) int16
    tensors (previous, match, match_length, record). Runs the same steps as the decoder."""
    context = FrameContext(len(data), lane_length, stride)
    lanes = to_lanes(data, lane_length)
    steps = min(lane_length, len(data))
    out = [torch.full((context.lanes, lane_length), NONE, dtype=torch.int16) for _ in range(4)]
    out[2].zero_()
    for t in range(steps):
        step = context.features(t)
        for tensor, value in zip(out, (step.previous, step.match, step.match_length,
                                       step.record), strict=True):
            tensor[:, t] = value
        context.advance(t, lanes[:, t])
    return tuple(out)
