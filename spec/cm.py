"""Payload of a context-mixing frame (codec id 5; FORMAT.md "CM payload").

A fixed header, the number of lanes and one LEB128 stream length per lane, then the
streams back to back.
"""

from __future__ import annotations

from construct import Array, Int8ul, Int16ul, Struct, this

from vortexfmt.spec import Leb128

#: The model revision this version of the format defines; a reader rejects any other.
CM_REVISION = 1
MIN_TABLE_BITS = 10
MAX_TABLE_BITS = 22
MAX_STRIDE = 1024
#: `flags` bit 0: the frame is primed with the archive's profile (its model learnt the
#: profile's priming bytes before the frame's; FORMAT.md "Primed frames"). Format 1.3.
FLAG_PRIMED = 0x01
KNOWN_FLAGS = FLAG_PRIMED
#: The most priming bytes a profile may hold (FORMAT.md "Profiles"): what a reader adds to
#: a primed frame's memory need.
MAX_PRIME_SIZE = 4 << 20

CmPayloadHeader = Struct(
    "revision" / Int8ul,
    "flags" / Int8ul,
    "table_bits" / Int8ul,
    "stride" / Int16ul,
    "lanes" / Leb128,
)

StreamLengths = Struct("lengths" / Array(this._.lanes, Leb128))


def max_table_bits(raw_size: int) -> int:
    """Largest `table_bits` a payload of `raw_size` raw bytes may declare: a bucket per raw
    byte, rounded up to a power of two, within MIN_TABLE_BITS..MAX_TABLE_BITS. (The tables
    are what a decoder allocates: a tiny frame must not ask for gigabytes.)"""
    return max(MIN_TABLE_BITS, min(MAX_TABLE_BITS, max(raw_size - 1, 0).bit_length()))
