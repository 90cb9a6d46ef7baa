"""Payload of a neural frame (codec id 2; FORMAT.md "Neural payload").

The frame's n raw bytes are cut into lanes of `lane_length` bytes (the last lane may be
shorter); step t codes position t of every lane that long as one arithmetic-coded stream.
The payload is this header, one LEB128 length per step, then the streams back to back.
"""

from __future__ import annotations

from construct import Array, Int16ul, Struct, this
from vortexfmt.spec import Leb128

MAX_LANE_LENGTH = 65535
MAX_STRIDE = 1024
#: A mixed payload (codec 4) has at most this many lanes.
MAX_MIXED_LANES = 16384

NeuralPayloadHeader = Struct(
    "lane_length" / Int16ul,
    "stride" / Int16ul,
)
NEURAL_PAYLOAD_HEADER_SIZE = NeuralPayloadHeader.sizeof()  # 4

StreamLengths = Struct("lengths" / Array(this._.steps, Leb128))


def step_count(raw_size: int, lane_length: int) -> int:
    """Number of streams (steps) of a frame: the length of its longest lane."""
    return min(raw_size, lane_length)
