"""The zstd codec (codec id 1): one Zstandard frame per frame (FORMAT.md "Frame codecs")."""

from __future__ import annotations

import threading

import zstandard

from vortexfmt.errors import VortexFormatError
from vortexfmt.spec import CodecId

ZSTD_LEVEL = 19


class ZstdCodec:
    """One Zstandard frame (RFC 8878) without content size or checksum fields."""

    codec_id = CodecId.ZSTD
    name = "zstd"
    thread_safe = True

    def __init__(self, level: int = ZSTD_LEVEL) -> None:
        self.level = level
        self._local = threading.local()  # a ZstdCompressor must not be shared by threads

    def encode(self, raw: bytes) -> bytes:
        compressor = getattr(self._local, "compressor", None)
        if compressor is None:
            compressor = self._local.compressor = zstandard.ZstdCompressor(
                level=self.level, write_content_size=False, write_checksum=False)
        return compressor.compress(raw)

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        # max_output_size bounds the allocation: a payload can never expand past its frame.
        # The payload is one zstd frame: bytes after it are damage, not padding. A frame
        # that declares its content size gets a buffer of that size (python-zstandard then
        # ignores max_output_size): a declared size other than the frame's is damage, found
        # before anything is allocated.
        try:
            declared = zstandard.frame_content_size(payload)
            if declared not in (-1, raw_size):  # -1: not declared (what writers write)
                raise VortexFormatError(f"zstd payload declares {declared} bytes, header "
                                        f"says {raw_size}")
            raw = zstandard.ZstdDecompressor().decompress(
                payload, max_output_size=max(raw_size, 1), allow_extra_data=False)
        except zstandard.ZstdError as error:
            raise VortexFormatError(f"zstd payload is corrupt: {error}") from None
        if len(raw) != raw_size:
            raise VortexFormatError(
                f"zstd payload decodes to {len(raw)} bytes, header says {raw_size}")
        return raw
