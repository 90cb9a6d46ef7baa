"""Byte layout of the Vortex container, declared with construct.

The declarations follow FORMAT.md section by section, in the same order, so the two can be
read side by side. This module knows nothing of codecs, models or torch: it only says where
each byte goes. All integers are little-endian.
"""

from __future__ import annotations

import xxhash
from construct import (
    Array,
    Bytes,
    Checksum,
    Const,
    Construct,
    ConstructError,
    Int8ul,
    Int16ul,
    Int32ul,
    Int64ul,
    RawCopy,
    Struct,
    this,
)
from construct.core import stream_read

# --- Constants (FORMAT.md "Constants") -------------------------------------------------------

FILE_MAGIC = b"\x89VTX\r\n\x1a\n"
FRAME_MAGIC = b"\x8fVFR"
SKIPPABLE_MAGIC = b"\x8fVSK"
INDEX_MAGIC = b"\x8fVIX"
TRAILER_MAGIC = b"\x8fVTR"

FORMAT_MAJOR = 1
FORMAT_MINOR = 3  # the latest minor version; a writer records the lowest its archive needs

MODEL_ID_SIZE = 32
MIN_FRAME_SIZE = 1
MAX_FRAME_SIZE = 1 << 28  # 256 MiB: bounds every allocation a reader makes for one frame
MAX_INDEX_ENTRIES = (1 << 32) - 1


class CodecId:
    """Frame codec identifiers (FORMAT.md "Frame codecs")."""

    STORED = 0
    ZSTD = 1
    NEURAL = 2
    LZMA = 3
    MIXED = 4
    CM = 5


#: An unsigned LEB128 value takes at most this many bytes and is below 2^64 (FORMAT.md
#: "Reader limits"); padded encodings within that length are accepted.
MAX_LEB128_BYTES = 10
LEB128_LIMIT = 1 << 64


class Leb128Error(ConstructError):
    """An unsigned LEB128 value longer than MAX_LEB128_BYTES or not below 2^64."""


class _Leb128(Construct):
    """Unsigned LEB128, at most MAX_LEB128_BYTES bytes, value < 2^64.

    Unlike construct's VarInt (whose parse time grows with the square of the encoding's
    length and which accepts any length), parsing reads at most ten bytes; building writes
    the shortest encoding. Padded encodings (a byte 0x80 continues a value) are read."""

    def _parse(self, stream, context, path):
        value = 0
        for index in range(MAX_LEB128_BYTES):
            byte = stream_read(stream, 1, path)[0]
            value |= (byte & 0x7F) << (7 * index)
            if byte < 0x80:
                if value >= LEB128_LIMIT:
                    raise Leb128Error("LEB128 value is not below 2^64", path=path)
                return value
        raise Leb128Error(f"LEB128 value longer than {MAX_LEB128_BYTES} bytes", path=path)

    def _build(self, obj, stream, context, path):
        if not isinstance(obj, int) or not 0 <= obj < LEB128_LIMIT:
            raise Leb128Error("LEB128 value must be an integer in 0..2^64-1", path=path)
        stream.write(encode_leb128(obj))
        return obj

    def _sizeof(self, context, path):
        from construct import SizeofError

        raise SizeofError("LEB128 has no fixed size", path=path)


#: The unsigned LEB128 integer of every variable-length field.
Leb128 = _Leb128()


def encode_leb128(value: int) -> bytes:
    """The shortest unsigned LEB128 encoding of `value` (0 <= value < 2^64)."""
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_leb128_array(data, offset: int, count: int) -> tuple[list[int], int]:
    """(`count` LEB128 values read from `data` at `offset`, the offset after them): the
    same values `Array(count, Leb128)` parses, in linear time. Raises Leb128Error for a
    value that is too long or too large and for data that ends early."""
    values = []
    end = len(data)
    for _ in range(count):
        value = shift = 0
        for _ in range(MAX_LEB128_BYTES):
            if offset >= end:
                raise Leb128Error("LEB128 values are truncated")
            byte = data[offset]
            offset += 1
            value |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        else:
            raise Leb128Error(f"LEB128 value longer than {MAX_LEB128_BYTES} bytes")
        if value >= LEB128_LIMIT:
            raise Leb128Error("LEB128 value is not below 2^64")
        values.append(value)
    return values, offset


def max_payload_size(raw_size: int) -> int:
    """Largest payload a frame of `raw_size` raw bytes may carry (FORMAT.md "Frame header")."""
    return raw_size + (raw_size >> 3) + 1024


def xxh32(data: bytes) -> int:
    """Structure checksum: XXH32 with seed 0."""
    return xxhash.xxh32_intdigest(data)


def xxh64(data: bytes) -> int:
    """Content checksum: XXH64 with seed 0."""
    return xxhash.xxh64_intdigest(data)


def _self_checked(name: str, body: Struct) -> Struct:
    """A structure followed by the XXH32 of its own bytes."""
    return Struct(
        name / RawCopy(body),
        "checksum" / Checksum(Int32ul, lambda data: xxh32(data), this[name].data),
    )


# --- File header (FORMAT.md "File header") -------------------------------------------------

FileHeaderBody = Struct(
    "magic" / Const(FILE_MAGIC),
    "version_major" / Int8ul,
    "version_minor" / Int8ul,
    "flags" / Int16ul,
    "frame_size" / Int32ul,
    "model_id" / Bytes(MODEL_ID_SIZE),
)
FileHeader = _self_checked("header", FileHeaderBody)
FILE_HEADER_SIZE = FileHeader.sizeof()  # 52

# --- Frame (FORMAT.md "Frame") --------------------------------------------------------------

FrameHeaderBody = Struct(
    "magic" / Const(FRAME_MAGIC),
    "codec" / Int8ul,
    "flags" / Int8ul,
    "reserved" / Int16ul,
    "frame_number" / Int32ul,
    "raw_size" / Int32ul,
    "payload_size" / Int32ul,
    "raw_checksum" / Int64ul,
)
FrameHeader = _self_checked("header", FrameHeaderBody)
FRAME_HEADER_SIZE = FrameHeader.sizeof()  # 32

# --- Skippable section (FORMAT.md "Skippable section") --------------------------------------

SkippableHeaderBody = Struct(
    "magic" / Const(SKIPPABLE_MAGIC),
    "kind" / Int16ul,
    "reserved" / Int16ul,
    "length" / Int32ul,
)
SkippableHeader = _self_checked("header", SkippableHeaderBody)
SKIPPABLE_HEADER_SIZE = SkippableHeader.sizeof()  # 16

# --- Seek index (FORMAT.md "Seek index") ----------------------------------------------------

IndexEntry = Struct(
    "frame_offset" / Int64ul,
    "raw_offset" / Int64ul,
    "raw_size" / Int32ul,
    "payload_size" / Int32ul,
)
INDEX_ENTRY_SIZE = IndexEntry.sizeof()  # 24

IndexBody = Struct(
    "magic" / Const(INDEX_MAGIC),
    "count" / Int32ul,
    "entries" / Array(this.count, IndexEntry),
)
Index = _self_checked("index", IndexBody)
INDEX_FIXED_SIZE = 4 + 4 + 4  # magic, count, checksum


def index_size(count: int) -> int:
    """Bytes taken by a seek index of `count` entries."""
    return INDEX_FIXED_SIZE + count * INDEX_ENTRY_SIZE


# --- Trailer (FORMAT.md "Trailer") ----------------------------------------------------------

TrailerBody = Struct(
    "index_offset" / Int64ul,
    "raw_size" / Int64ul,
    "content_checksum" / Int64ul,
)
Trailer = Struct(
    "trailer" / RawCopy(TrailerBody),
    "checksum" / Checksum(Int32ul, lambda data: xxh32(data), this.trailer.data),
    "magic" / Const(TRAILER_MAGIC),
)
TRAILER_SIZE = Trailer.sizeof()  # 32
