"""The lzma codec (codec id 3): a raw LZMA2 stream per frame (FORMAT.md "Frame codecs")."""

from __future__ import annotations

import lzma
import threading

from vortexfmt.errors import CodingCancelled, VortexFormatError
from vortexfmt.spec import CodecId

LZMA_PRESET = 9 | lzma.PRESET_EXTREME


def lzma_dict_size(raw_size: int) -> int:
    """LZMA2 dictionary size for a frame: the next power of two >= raw_size, at least 4 KiB."""
    return max(4096, 1 << max(0, raw_size - 1).bit_length())


#: lzma encodes a frame in pieces of this many bytes, looking at `stop` between them (about
#: 0.1 s each here). liblzma's stream does not depend on how its input is cut: it is the
#: one lzma.compress writes (tests/test_spec.py holds them equal).
LZMA_PIECE = 256 << 10


class LzmaCodec:
    """A raw LZMA2 stream (no .xz container) whose dictionary spans the frame."""

    codec_id = CodecId.LZMA
    name = "lzma"
    thread_safe = True
    #: encode() takes `stop` (a threading.Event): once set, it stops with CodingCancelled
    #: before its next piece. decode() takes it too, and decodes all the same (about
    #: 30 MB/s here: 0.13 s for a 4 MiB frame).
    cancellable = True

    def encode(self, raw: bytes, stop: threading.Event | None = None) -> bytes:
        filters = [{"id": lzma.FILTER_LZMA2, "preset": LZMA_PRESET,
                    "dict_size": lzma_dict_size(len(raw))}]
        compressor = lzma.LZMACompressor(format=lzma.FORMAT_RAW, filters=filters)
        view = memoryview(raw)
        pieces = []
        for start in range(0, len(view), LZMA_PIECE):
            if stop is not None and stop.is_set():
                raise CodingCancelled("lzma frame encoding cancelled")
            pieces.append(compressor.compress(view[start:start + LZMA_PIECE]))
        pieces.append(compressor.flush())
        return b"".join(pieces)

    def decode(self, payload: bytes, raw_size: int,
               stop: threading.Event | None = None) -> bytes:
        filters = [{"id": lzma.FILTER_LZMA2, "dict_size": lzma_dict_size(raw_size)}]
        decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_RAW, filters=filters)
        try:
            raw = decompressor.decompress(payload, max_length=raw_size + 1)
        except lzma.LZMAError as error:
            raise VortexFormatError(f"lzma payload is corrupt: {error}") from None
        if len(raw) != raw_size or not decompressor.eof or decompressor.unused_data:
            raise VortexFormatError(
                f"lzma payload decodes to {len(raw)} bytes, header says {raw_size}")
        return raw
