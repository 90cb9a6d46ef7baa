"""A Vortex chunk (FORMAT.md "Chunks"): one block of bytes coded alone, with no container
around it, for storage systems that keep their own chunk index (Zarr, HDF5).

A fixed 17-byte header, then one frame payload of the codec it names.
"""

from __future__ import annotations

from construct import Const, Int8ul, Int32ul, Int64ul, Struct
from vortexfmt.spec import MAX_FRAME_SIZE, CodecId

CHUNK_MAGIC = b"VXC"
CHUNK_VERSION = 1
#: The codecs a chunk may use: those that need no model (a chunk has no header to name one).
CHUNK_CODECS = (CodecId.STORED, CodecId.ZSTD, CodecId.LZMA, CodecId.CM)
#: The largest raw size a chunk may declare: a frame's (its payload is a frame payload).
MAX_CHUNK_SIZE = MAX_FRAME_SIZE

ChunkHeader = Struct(
    "magic" / Const(CHUNK_MAGIC),
    "version" / Int8ul,
    "codec" / Int8ul,
    "raw_size" / Int64ul,
    "crc32" / Int32ul,
)
CHUNK_HEADER_SIZE = ChunkHeader.sizeof()  # 17
