"""What decoding one frame may cost a reader (FORMAT.md "Reader limits").

A frame declares what its decoder allocates: a cm frame its tables (`table_bits`), a neural
or mixed frame its lanes (`lane_length`), every frame its raw and payload sizes. A reader
computes the memory a frame needs from those declarations alone, before it allocates
anything, and rejects the frame when the need exceeds its memory limit
(DEFAULT_MEMORY_LIMIT unless the caller gives another): like zstd's window limit, this
bounds a reader's cost whatever an archive declares. Every frame a writer of this version
produces fits the default limit (tests/test_hostile.py holds it to that).

The functions here count bytes, rounded up, of what the reference decoder holds while
decoding one frame: the frame's payload and raw bytes, plus the codec's own state. They
are torch-free and parse nothing beyond the payload headers.
"""

from __future__ import annotations

from dataclasses import dataclass

from vortexfmt.spec import cm as cm_layout
from vortexfmt.spec import neural as neural_layout

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30

#: The memory one frame may need when a reader is given no limit (per frame: a reader
#: decoding several frames at once on threads needs this per thread).
DEFAULT_MEMORY_LIMIT = 1 * GiB

# --- cm (codec 5): csrc/cm/cm_kernel.cpp ------------------------------------------------------

#: Context tables: eighteen (kContexts) of 2^table_bits 64-byte buckets (ContextTable).
CM_CONTEXTS = 18
CM_BUCKET_BYTES = 64
#: Match tables: two (kMatchModels) of 2^min(table_bits + 4, 24) u32 positions.
CM_MATCH_MODELS = 2
CM_MATCH_BITS_CAP = 24
#: Everything of the model whose size does not depend on the frame: five mixers (8032
#: weight sets of 40 int16 weights), three adaptive probability maps ((256 + 65536 + 1032)
#: x 33 u16), the order-0, run and match maps: 5.1 MB, rounded up.
CM_MODEL_BYTES = 6 * MiB
#: Per lane: the kernel's Lane and Decoder and stream views (~140 bytes) and the reader's
#: parsed lengths and (offset, length) pairs (~170 bytes of Python objects), rounded up.
CM_LANE_BYTES = 512


def cm_table_bytes(table_bits: int) -> int:
    """Bytes of a cm decoder's hash tables at `table_bits`:

        18 * 64 * 2^table_bits  +  2 * 4 * 2^min(table_bits + 4, 24)

    320 MiB at 18 (DEFAULT_MAX_TABLE_BITS, the writer's largest), 4.6 GiB at 22."""
    match_bits = min(table_bits + 4, CM_MATCH_BITS_CAP)
    return CM_CONTEXTS * CM_BUCKET_BYTES * (1 << table_bits) + \
        CM_MATCH_MODELS * 4 * (1 << match_bits)


#: Per raw byte of a frame with a numeric transform, what undoing it holds at once beside
#: the decoded bytes: one field's columns, its values and their temporaries, the frame
#: rewritten, and the bytes returned (measured with tracemalloc: 5.0 at most, on 4 MiB
#: frames of one 1- or 8-byte field of delta order 2 with zigzag), and one to spare.
CM_NUMERIC_BYTES_PER_RAW_BYTE = 6


def cm_frame_memory(raw_size: int, payload_size: int, table_bits: int, lanes: int,
                    numeric: bool = False, primed: bool = False) -> int:
    """Memory to decode a cm frame:

        cm_table_bytes(table_bits) + CM_MODEL_BYTES + lanes * CM_LANE_BYTES
        + raw_size + payload_size
        (+ CM_NUMERIC_BYTES_PER_RAW_BYTE * raw_size if `numeric`)
        (+ cm_table_bytes(table_bits) + CM_MODEL_BYTES + 3 * MAX_PRIME_SIZE if `primed`:
        the model that learnt the profile's priming bytes, kept to be copied for each
        frame, its copy of those bytes, the profile's, and their copy before the frame in
        the frame's buffer)
    """
    model = cm_table_bytes(table_bits) + CM_MODEL_BYTES
    return model + lanes * CM_LANE_BYTES + raw_size + payload_size + \
        (CM_NUMERIC_BYTES_PER_RAW_BYTE * raw_size if numeric else 0) + \
        (model + 3 * cm_layout.MAX_PRIME_SIZE if primed else 0)


# --- neural (codec 2) and mixed (codec 4): vortexfmt/neural/ -----------------------------------

#: The features' match table (features.MATCH_TABLE_BITS: 2^20 int64) and the model's
#: weights and lookup tables (the built-in model's are under 1 MiB), rounded up.
NEURAL_FIXED_BYTES = 16 * MiB
#: Per byte of the (lanes, lane_length) int64 matrix of the frame's bytes (features.py).
NEURAL_MATRIX_BYTES_PER_BYTE = 8
#: Per lane, per step: the model's state for the lane (the built-in model: 2 layers x
#: (2 x 32 window + 2 x 25 memory slots) x 48 dimensions of int8 keys and values = 10,944
#: bytes, see model_lane_state_bytes), the step's CDF (257 int32, and its int16 copy for
#: the coder) and temporaries, and the lane's feature vectors: 15.2 KB, rounded up.
NEURAL_LANE_BYTES = 16 * KiB
#: Mixed frames add the count tables: 7 x 2^16 rows x 256 int16 counts (mixing.TABLE_BITS)
#: = 224 MiB, and the 2^20-entry int64 log table (8 MiB).
MIXED_TABLE_BYTES = 7 * (1 << 16) * 256 * 2 + (1 << 20) * 8
#: ... and per lane the scores of the nine experts (9 x 256 int32) and their gradients.
MIXED_LANE_BYTES = 20 * KiB
#: Per step: the parsed stream length (a Python int and its list slot), rounded up.
NEURAL_STEP_BYTES = 64


def model_lane_state_bytes(n_layers: int, d_model: int, window: int, memory: int,
                           compression: int, element_bytes: int = 1) -> int:
    """Bytes of one lane's decoding state for a model of this configuration: keys and
    values of `window` positions and of `memory + window // compression + 1` memory slots
    per layer (integer.StepRunner.new_state), `element_bytes` each (1: the CPU kernel's
    int8 layout; 4: float32 on other devices)."""
    ring = memory + window // compression + 1
    return n_layers * 2 * (window + ring) * d_model * element_bytes


def neural_lane_count(raw_size: int, lane_length: int) -> int:
    return -(-raw_size // lane_length)


def neural_frame_memory(raw_size: int, payload_size: int, lane_length: int,
                        mixed: bool) -> int:
    """Memory to decode a neural (or, with `mixed`, a mixed) frame of `raw_size` bytes cut
    into lanes of `lane_length` bytes (L = ceil(raw_size / lane_length) lanes, S =
    min(raw_size, lane_length) steps):

        NEURAL_FIXED_BYTES + 8 * L * lane_length + L * NEURAL_LANE_BYTES
        + S * NEURAL_STEP_BYTES + raw_size + payload_size
        [mixed: + MIXED_TABLE_BYTES + L * MIXED_LANE_BYTES]
    """
    lanes = neural_lane_count(raw_size, lane_length)
    steps = neural_layout.step_count(raw_size, lane_length)
    need = NEURAL_FIXED_BYTES + NEURAL_MATRIX_BYTES_PER_BYTE * lanes * lane_length + \
        lanes * NEURAL_LANE_BYTES + steps * NEURAL_STEP_BYTES + raw_size + payload_size
    if mixed:
        need += MIXED_TABLE_BYTES + lanes * MIXED_LANE_BYTES
    return need



def model_lane_length_within(raw_size: int, lane_length: int, mixed: bool,
                             limit: int = DEFAULT_MEMORY_LIMIT) -> int | None:
    """The lane length a writer uses for a model-codec frame of `raw_size` bytes so that every
    reader decodes it within `limit` (the default limit: what a writer produces must always
    fit it): `lane_length` if its frame fits (with the largest payload FORMAT.md allows),
    else `lane_length` doubled until it fits (longer lanes, fewer of them: less state), or
    None when no lane length up to FORMAT.md's largest fits (the frame is too large for the
    model codecs)."""
    from vortexfmt.spec import max_payload_size

    payload = max_payload_size(raw_size)
    while True:
        lanes = neural_lane_count(raw_size, lane_length)
        if (not mixed or lanes <= neural_layout.MAX_MIXED_LANES) and \
                neural_frame_memory(raw_size, payload, lane_length, mixed) <= limit:
            return lane_length
        if lane_length >= neural_layout.MAX_LANE_LENGTH:
            return None
        lane_length = min(neural_layout.MAX_LANE_LENGTH, 2 * lane_length)


def largest_model_frame(mixed: bool, limit: int = DEFAULT_MEMORY_LIMIT) -> int:
    """The largest frame, in raw bytes, a model codec (neural, or with `mixed` the mixed
    codec) can write within `limit` at the longest lanes FORMAT.md allows."""
    low, high = 0, 1 << 40  # memory grows with the frame at a fixed lane length
    while low < high:
        middle = (low + high + 1) // 2
        if model_lane_length_within(middle, neural_layout.MAX_LANE_LENGTH, mixed,
                                    limit) is None:
            high = middle - 1
        else:
            low = middle
    return low

# --- stored (0), zstd (1), lzma (3) -------------------------------------------------------------

#: libzstd's default window limit, which the reader keeps (FORMAT.md "Frame codecs").
ZSTD_WINDOW_BYTES = 1 << 27
#: A decoder's fixed state (zstd's or liblzma's), rounded up.
CLASSIC_FIXED_BYTES = 1 * MiB


def stored_frame_memory(raw_size: int, payload_size: int) -> int:
    """stored: the payload and the raw bytes (raw_size + payload_size)."""
    return raw_size + payload_size


def zstd_frame_memory(raw_size: int, payload_size: int) -> int:
    """zstd: raw_size + payload_size + 2^27 (the largest window) + 1 MiB."""
    return raw_size + payload_size + ZSTD_WINDOW_BYTES + CLASSIC_FIXED_BYTES


def lzma_frame_memory(raw_size: int, payload_size: int) -> int:
    """lzma: raw_size + payload_size + dict_size(raw_size) + 1 MiB."""
    dict_size = max(4096, 1 << max(raw_size - 1, 0).bit_length())
    return raw_size + payload_size + dict_size + CLASSIC_FIXED_BYTES


# --- Per frame ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FrameNeed:
    """The memory a frame needs to decode, and what in its declarations asks for most."""

    codec_id: int
    memory: int
    reason: str


def format_bytes(count: int) -> str:
    """'4.6 GiB', '320 MiB', '12 KiB', '100 bytes': short, for messages."""
    for unit, size in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if count >= size:
            value = count / size
            text = f"{value:.1f}".rstrip("0").rstrip(".") if value < 10 else f"{value:.0f}"
            return f"{text} {unit}"
    return f"{count} bytes"


def check_memory_limit(memory_limit: int | None) -> int:
    """The memory limit a reader uses for `memory_limit` (None: DEFAULT_MEMORY_LIMIT);
    raises ValueError for one that is not a positive integer."""
    if memory_limit is None:
        return DEFAULT_MEMORY_LIMIT
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, int) or \
            memory_limit < 1:
        raise ValueError(f"memory_limit must be a positive number of bytes, got "
                         f"{memory_limit!r}")
    return memory_limit
