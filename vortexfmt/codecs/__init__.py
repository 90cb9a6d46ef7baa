"""Frame codecs: turn one frame's raw bytes into a payload and back.

A codec is looked up by its FORMAT.md codec id or by name. Codecs that need a model (the
neural codec) are imported lazily, so the container layer never imports torch itself.
"""

from __future__ import annotations

from typing import Protocol

from vortexfmt.errors import UnsupportedCodecError
from vortexfmt.spec import CodecId


class FrameCodec(Protocol):
    """What the container needs from a codec."""

    codec_id: int
    name: str

    def encode(self, raw: bytes) -> bytes:
        """Return the payload for `raw`."""

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        """Return exactly `raw_size` bytes, or raise VortexFormatError."""


CODEC_NAMES = {
    CodecId.STORED: "stored",
    CodecId.ZSTD: "zstd",
    CodecId.NEURAL: "neural",
    CodecId.LZMA: "lzma",
}
CODEC_IDS = {name: codec_id for codec_id, name in CODEC_NAMES.items()}

#: Names accepted by the writer's ``codec`` argument and ``vortex pack --codec``.
WRITER_CODEC_CHOICES = ("auto", "neural", "lzma", "zstd", "stored")


def codec_name(codec_id: int) -> str:
    """Human name of a codec id (``codec-N`` for ids this version does not know)."""
    return CODEC_NAMES.get(codec_id, f"codec-{codec_id}")


def classic_codec(codec_id: int) -> FrameCodec:
    """The codec for a model-free codec id; raises UnsupportedCodecError otherwise."""
    from vortexfmt.codecs import classic

    codec = classic.CLASSIC_CODECS.get(codec_id)
    if codec is None:
        raise UnsupportedCodecError(f"unsupported codec id {codec_id}")
    return codec


class FrameEncoder:
    """Encodes frames with one codec, or with the smallest of several (``auto``)."""

    def __init__(self, codec: str = "auto", model: object | None = None) -> None:
        if codec not in WRITER_CODEC_CHOICES:
            raise ValueError(f"unknown codec {codec!r}; choose one of "
                             f"{', '.join(WRITER_CODEC_CHOICES)}")
        names = AUTO_CANDIDATES if codec == "auto" else (codec,)
        self.codecs = [_codec_for_writing(name, model) for name in names]
        self.model_id = next((c.model_id for c in self.codecs if hasattr(c, "model_id")), None)

    def encode(self, raw: bytes) -> tuple[int, bytes]:
        """Return (codec id, payload) for one frame, never larger than FORMAT.md allows."""
        from vortexfmt.spec import max_payload_size

        best: tuple[int, bytes] | None = None
        for codec in self.codecs:
            payload = codec.encode(raw)
            if best is None or len(payload) < len(best[1]):
                best = (codec.codec_id, payload)
        if len(best[1]) > max_payload_size(len(raw)):
            best = (CodecId.STORED, bytes(raw))
        return best


#: Codecs ``auto`` tries on every frame. On equal sizes the first is kept, so the cheapest
#: to decode comes first.
AUTO_CANDIDATES = ("stored", "zstd", "lzma")


def _codec_for_writing(name: str, model: object | None) -> FrameCodec:
    return classic_codec(CODEC_IDS[name])


class FrameDecoders:
    """Decodes frames of one archive, loading a model only when a frame needs one."""

    def __init__(self, model_id: bytes, model: object | None = None) -> None:
        self.model_id = model_id
        self.model = model

    def decode(self, codec_id: int, payload: bytes, raw_size: int) -> bytes:
        return classic_codec(codec_id).decode(payload, raw_size)
