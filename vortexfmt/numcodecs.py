"""Vortex as a numcodecs codec (id ``vortex``): each buffer becomes one Vortex chunk
(FORMAT.md "Chunks", vortexfmt.chunk). Registered through the ``numcodecs.codecs`` entry
point, so ``numcodecs.get_codec({"id": "vortex"})`` finds it without an import, and Zarr v2
arrays, xarray and anything else that takes a numcodecs compressor can use it.
"""

from __future__ import annotations

from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray

from vortexfmt import chunk


def check_options(codec: str, level: int | None, layout: str | None,
                  profile: str | None) -> None:
    """Raise ValueError for options a Vortex chunk codec cannot use."""
    if codec not in chunk.CHUNK_CODEC_CHOICES:
        raise ValueError(f"unknown Vortex chunk codec {codec!r}; choose one of "
                         f"{', '.join(chunk.CHUNK_CODEC_CHOICES)}")
    if level is not None:
        from vortexfmt.codecs.levels import preset

        preset(level)  # ValueError outside 1..9
        if codec != "auto":
            raise ValueError(f"give a codec ({codec!r}) or a level ({level!r}), not both")
    if layout is not None:  # refused here, not at the first chunk written
        from vortexfmt.codecs.record_layout import parse_layout

        if not isinstance(layout, str):
            raise ValueError(f"layout must be a layout string such as '<f4', got {layout!r}")
        parse_layout(layout)  # LayoutError (a ValueError) naming what is wrong
    if profile is not None:
        raise ValueError("Vortex profiles are not supported by this version (profile must "
                         "be None)")


class VortexCodec(Codec):
    """Compress each buffer into one Vortex chunk.

    `codec`: ``auto`` (the smallest of stored, zstd, lzma and cm, per chunk), ``cm``,
    ``lzma``, ``zstd`` or ``stored``; `level` (1..9) a preset instead, with ``auto``;
    `layout` a layout string (``'<f4'``, ``'<i4:3ch'``: vortexfmt.codecs.record_layout) the
    cm codec may use as a hint (decoding never needs it); `profile` is reserved (None).
    decode() raises VortexFormatError for a chunk that is not whole and intact.
    """

    codec_id = "vortex"

    def __init__(self, codec: str = "auto", level: int | None = None,
                 layout: str | None = None, profile: str | None = None) -> None:
        check_options(codec, level, layout, profile)
        self.codec = codec
        self.level = level
        self.layout = layout
        self.profile = profile

    def encode(self, buf) -> bytes:
        return chunk.encode(ensure_contiguous_ndarray(buf), codec=self.codec,
                            layout=self.layout, level=self.level)

    def decode(self, buf, out=None):
        data = ensure_contiguous_ndarray(buf)
        if out is None:
            return chunk.decode(data)
        chunk.decode(data, out=ensure_contiguous_ndarray(out))
        return out

    def get_config(self) -> dict:
        return {"id": self.codec_id, "codec": self.codec, "level": self.level,
                "layout": self.layout, "profile": self.profile}

    def __repr__(self) -> str:
        return (f"VortexCodec(codec={self.codec!r}, level={self.level!r}, "
                f"layout={self.layout!r}, profile={self.profile!r})")
