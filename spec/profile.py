"""Profile files (FORMAT.md "Profiles"): the safetensors layout, whose only binary field is
the length of the JSON header that follows it; then the header, then the priming bytes."""

from __future__ import annotations

from construct import Int64ul, Struct

#: Bytes before the JSON header.
PREFIX_SIZE = 8
#: The most bytes of JSON header a reader accepts.
MAX_HEADER_SIZE = 64 << 10

ProfilePrefix = Struct("header_size" / Int64ul)
