"""Vortex as a Zarr v3 bytes-to-bytes codec (name ``vortex``), registered through the
``zarr.codecs`` entry point: ``zarr.create_array(..., compressors=[VortexCodec()])``
writes each chunk as one Vortex chunk (FORMAT.md "Chunks"), and any process with
vortexfmt installed reads it. The array's dtype is passed on to the cm codec as `layout`
when none is given.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace

import numpy as np
from zarr.abc.codec import BytesBytesCodec
from zarr.core.common import parse_named_configuration

from vortexfmt import chunk
from vortexfmt.numcodecs import check_options

NAME = "vortex"


def layout_of(dtype) -> str | None:
    """The numeric layout (vortexfmt.codecs.record_layout) of a Zarr or numpy dtype as its
    bytes are stored (Zarr's bytes codec writes little-endian by default): integers and
    floats as themselves, complex numbers as two float channels (real, imaginary); None
    for the rest (booleans, strings, records, dates)."""
    to_native = getattr(dtype, "to_native_dtype", None)
    native = np.dtype(to_native() if to_native is not None else dtype)
    if native.fields is not None or native.kind not in "iufc":
        return None
    if native.kind == "c":
        return f"<f{native.itemsize // 2}:2ch"
    return native.newbyteorder("<").str if native.itemsize > 1 else native.str


@dataclass(frozen=True)
class VortexCodec(BytesBytesCodec):
    """Zarr v3 codec ``vortex``: options as vortexfmt.numcodecs.VortexCodec's."""

    is_fixed_size = False

    codec: str = "auto"
    level: int | None = None
    layout: str | None = None
    profile: str | None = None

    def __post_init__(self) -> None:
        check_options(self.codec, self.level, self.layout, self.profile)

    @classmethod
    def from_dict(cls, data: dict) -> VortexCodec:
        _, configuration = parse_named_configuration(data, NAME)
        return cls(**(configuration or {}))

    def to_dict(self) -> dict:
        return {"name": NAME, "configuration": {
            "codec": self.codec, "level": self.level, "layout": self.layout,
            "profile": self.profile}}

    def evolve_from_array_spec(self, array_spec) -> VortexCodec:
        if self.layout is not None:
            return self
        return replace(self, layout=layout_of(array_spec.dtype))

    async def _encode_single(self, chunk_bytes, chunk_spec):
        blob = await asyncio.to_thread(chunk.encode, chunk_bytes.as_numpy_array(),
                                       self.codec, self.layout, self.level)
        return chunk_spec.prototype.buffer.from_bytes(blob)

    async def _decode_single(self, chunk_bytes, chunk_spec):
        raw = await asyncio.to_thread(chunk.decode, chunk_bytes.as_numpy_array())
        return chunk_spec.prototype.buffer.from_bytes(raw)

    def compute_encoded_size(self, input_byte_length: int, chunk_spec) -> int:
        raise NotImplementedError  # variable: known once coded
