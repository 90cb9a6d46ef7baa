"""Payload of a context-mixing frame (codec id 5; FORMAT.md "CM payload").

A fixed header, a numeric descriptor when `flags` has NUMERIC_FLAG (format 1.3), the number
of lanes and one LEB128 stream length per lane, then the streams back to back.
"""

from __future__ import annotations

from construct import Array, Default, If, Int8ul, Int16ul, Struct, this
from vortexfmt.spec import Leb128

#: The model revision this version of the format defines; a reader rejects any other.
CM_REVISION = 1
MIN_TABLE_BITS = 10
MAX_TABLE_BITS = 22
MAX_STRIDE = 1024
#: `flags` bit 1: the frame is primed with the archive's profile (its model learnt the
#: profile's priming bytes before the frame's; FORMAT.md "Primed frames"). Format 1.3.
FLAG_PRIMED = 0x02
#: The most priming bytes a profile may hold (FORMAT.md "Profiles"): what a reader adds to
#: a primed frame's memory need.
MAX_PRIME_SIZE = 4 << 20

#: `flags` bit 0 (format 1.3): the frame was rewritten by a numeric transform, which the
#: descriptor after `stride` describes. Bits 2-7 are reserved.
NUMERIC_FLAG = 0x01
KNOWN_FLAGS = NUMERIC_FLAG | FLAG_PRIMED
#: The minor format version that defined NUMERIC_FLAG.
NUMERIC_MINOR_VERSION = 3

#: Descriptor `order`: each record's fields in turn, or byte planes.
ORDER_INTERLEAVED = 0
ORDER_PLANES = 1
#: A field's `width`: bytes of each value.
FIELD_WIDTHS = (1, 2, 4, 8)
#: A field's `mode` bits: source byte order, delta order (bits 1-2, 0..2), zigzag.
MODE_BIG_ENDIAN = 0x01
MODE_DELTA_SHIFT = 1
MODE_DELTA_MASK = 0x06
MODE_ZIGZAG = 0x08
MODE_KNOWN_BITS = MODE_BIG_ENDIAN | MODE_DELTA_MASK | MODE_ZIGZAG
MAX_DELTA_ORDER = 2
MAX_FIELDS = 255

NumericField = Struct(
    "width" / Int8ul,
    "mode" / Int8ul,
)

NumericDescriptor = Struct(
    "order" / Int8ul,
    "count" / Int8ul,
    "fields" / Array(this.count, NumericField),
)

CmPayloadHeader = Struct(
    "revision" / Int8ul,
    "flags" / Int8ul,
    "table_bits" / Int8ul,
    "stride" / Int16ul,
    "numeric" / Default(If(this.flags & NUMERIC_FLAG, NumericDescriptor), None),
    "lanes" / Leb128,
)

StreamLengths = Struct("lengths" / Array(this._.lanes, Leb128))


def max_table_bits(raw_size: int) -> int:
    """Largest `table_bits` a payload of `raw_size` raw bytes may declare: a bucket per raw
    byte, rounded up to a power of two, within MIN_TABLE_BITS..MAX_TABLE_BITS. (The tables
    are what a decoder allocates: a tiny frame must not ask for gigabytes.)"""
    return max(MIN_TABLE_BITS, min(MAX_TABLE_BITS, max(raw_size - 1, 0).bit_length()))
