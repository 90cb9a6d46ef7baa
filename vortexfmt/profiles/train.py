"""Making a profile from sample files by measurement (`vortex train`).

The files are read in order (each up to `max_bytes_per_file`). Their last bytes are held
out as test frames of `frame_size` bytes (a quarter of the data, at most MAX_TEST_FRAMES
frames); what comes before is where the priming bytes come from. The settings are chosen
by coding the test frames primed with the bytes just before them:

1. the record length (the stride the cm encoder would pick for the sample, or none) and
   the table size (each within FORMAT.md's bounds for a frame of `frame_size` bytes),
   with PRIMING_CANDIDATES' middle size of priming bytes;
2. the priming size: the smallest of PRIMING_CANDIDATES (that the data allows) whose test
   frames come within PRIMING_TOLERANCE of the best, since every frame coded with the
   profile first learns all of its priming bytes (a cost per frame about that of coding
   them) -- unless the caller fixes the size.

The profile's priming bytes are then the last bytes of the files (every file's last
bytes, in equal shares), test frames included: all the files are training data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vortexfmt import native
from vortexfmt.codecs.cm import SHORTEST_STRIDE
from vortexfmt.codecs.stride import choose_stride
from vortexfmt.errors import VortexError
from vortexfmt.profiles.files import (
    MAX_PRIME_SIZE,
    MAX_PROFILE_TABLE_BITS,
    Profile,
    ProfileSettings,
)
from vortexfmt.spec import cm as cm_layout

PRIMING_CANDIDATES = (64 << 10, 256 << 10, 1 << 20)
PRIMING_TOLERANCE = 0.01
MAX_TEST_FRAMES = 2
DEFAULT_FRAME_SIZE = 64 << 10
#: Priming bytes are whole multiples of this (the column contexts see the same phase).
PRIMING_ALIGNMENT = 8


@dataclass
class Trial:
    """One measured setting: the test frames' total coded size."""

    table_bits: int
    stride: int
    prime_size: int
    coded_bytes: int


@dataclass
class TrainedProfile:
    profile: Profile
    trials: list[Trial]
    test_bytes: int
    cold_bytes: int  # the test frames coded without priming, with the chosen settings


def train_profile(files: list[Path], format_name: str, *,
                  frame_size: int = DEFAULT_FRAME_SIZE, prime_size: int | None = None,
                  max_bytes_per_file: int | None = None, layout: str | None = None,
                  log: Callable[[str], None] | None = None) -> TrainedProfile:
    """A profile for `files` (VortexError when they hold too little data)."""
    if prime_size is not None and not PRIMING_ALIGNMENT <= prime_size <= MAX_PRIME_SIZE:
        raise VortexError(f"--prime-size must lie in {PRIMING_ALIGNMENT}..{MAX_PRIME_SIZE}")
    samples = []
    for path in files:
        with open(path, "rb") as handle:
            samples.append(handle.read(max_bytes_per_file or MAX_PRIME_SIZE * 4))
    data = b"".join(samples)
    if len(data) < 2 * PRIMING_ALIGNMENT:
        raise VortexError(f"too little training data ({len(data)} bytes)")
    frame_size = max(PRIMING_ALIGNMENT, min(frame_size, len(data) // 4 or 1))
    count = max(1, min(MAX_TEST_FRAMES, len(data) // 4 // frame_size))
    test_start = len(data) - count * frame_size
    tests = [data[test_start + i * frame_size:test_start + (i + 1) * frame_size]
             for i in range(count)]
    history = data[:test_start]
    candidates = [p for p in PRIMING_CANDIDATES if p <= len(history)] or \
        [_aligned(len(history))]
    trials: list[Trial] = []

    def measure(table_bits: int, stride: int, size: int) -> int:
        coded = sum(_coded_size(test, table_bits, stride, _before(data, test_start + i *
                                                                  frame_size, size))
                    for i, test in enumerate(tests))
        trials.append(Trial(table_bits, stride, size, coded))
        if log is not None:
            log(f"table_bits {table_bits}, stride {stride}, {size} priming bytes: "
                f"{coded} bytes for {count * frame_size}")
        return coded

    stride_found = choose_stride(history[-(1 << 20):] or tests[0], shortest=SHORTEST_STRIDE)
    # within what the format allows the frame size and a profile allows any frame
    largest = min(cm_layout.max_table_bits(frame_size), MAX_PROFILE_TABLE_BITS)
    table_choices = sorted({max(cm_layout.MIN_TABLE_BITS, min(largest, bits))
                            for bits in (largest - 2, largest)})
    probe = prime_size or candidates[len(candidates) // 2]
    probe = min(probe, _aligned(len(history))) or candidates[0]
    settings = min(((bits, stride) for bits in table_choices
                    for stride in sorted({stride_found, 0})),
                   key=lambda s: (measure(s[0], s[1], probe), s))
    table_bits, stride = settings
    if prime_size is None:
        sizes = {p: measure(table_bits, stride, p) if p != probe else
                 next(t.coded_bytes for t in trials
                      if (t.table_bits, t.stride, t.prime_size) == (table_bits, stride, p))
                 for p in sorted(set(candidates) | {probe})}
        best = min(sizes.values())
        prime_size = min(p for p, coded in sizes.items()
                         if coded <= best * (1 + PRIMING_TOLERANCE))
    cold = sum(_coded_size(test, table_bits, stride, b"") for test in tests)
    prime = _priming_bytes(samples, min(prime_size, _aligned(len(data))))
    profile = Profile(ProfileSettings(format_name, table_bits, stride, layout), prime)
    return TrainedProfile(profile, trials, count * frame_size, cold)


def _aligned(size: int) -> int:
    return min(MAX_PRIME_SIZE, size) // PRIMING_ALIGNMENT * PRIMING_ALIGNMENT


def _before(data: bytes, end: int, size: int) -> bytes:
    return data[max(0, end - size):end]


def _coded_size(frame: bytes, table_bits: int, stride: int, prime: bytes) -> int:
    """Bytes of the cm streams of `frame` (one lane) primed with `prime`."""
    table_bits = min(table_bits, cm_layout.max_table_bits(len(frame)))
    streams, _ = native.cm_kernel().encode(frame, 1, table_bits, stride, False, None, 1, prime)
    return sum(len(s) for s in streams)


def _priming_bytes(samples: list[bytes], size: int) -> bytes:
    """`size` bytes: the last bytes of each sample, in equal shares (a share a sample
    cannot fill goes to the others), in the samples' order."""
    shares = [0] * len(samples)
    left = size
    while left > 0:
        open_samples = [i for i, s in enumerate(samples) if len(s) > shares[i]]
        if not open_samples:
            break
        each = max(PRIMING_ALIGNMENT, left // len(open_samples) // PRIMING_ALIGNMENT *
                   PRIMING_ALIGNMENT)
        for i in open_samples:
            take = min(each, len(samples[i]) - shares[i], left)
            shares[i] += take
            left -= take
    return b"".join(s[len(s) - n:] for s, n in zip(samples, shares, strict=True) if n)
