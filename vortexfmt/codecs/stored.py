"""The stored codec (codec id 0): a frame's raw bytes, unchanged (FORMAT.md "Frame codecs")."""

from __future__ import annotations

from vortexfmt.errors import VortexFormatError
from vortexfmt.spec import CodecId


class StoredCodec:
    """Raw bytes, unchanged."""

    codec_id = CodecId.STORED
    name = "stored"
    thread_safe = True

    def encode(self, raw: bytes) -> bytes:
        return bytes(raw)

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        if len(payload) != raw_size:
            raise VortexFormatError(
                f"stored payload holds {len(payload)} bytes, header says {raw_size}")
        return payload
