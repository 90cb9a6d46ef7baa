"""Vortex chunks (FORMAT.md "Chunks"): one block of bytes coded alone with a frame codec,
checked by its size and CRC-32, for storage systems that index chunks themselves (Zarr's
and HDF5's Vortex filters write the same bytes).

    blob = encode(data, codec="cm")      # bytes -> chunk
    assert decode(blob) == data

Nothing here codes: the payload is what the container's frame codecs (vortexfmt.codecs)
write for a frame of the same bytes, chosen as the writer chooses (``auto``: the smallest,
lzma and zstd left out where cm leads zstd -3 by a tenth: vortexfmt.codecs.auto.CM_LEAD).
"""

from __future__ import annotations

import inspect
import zlib
from functools import lru_cache

from construct import ConstructError

from vortexfmt import limits
from vortexfmt.codecs import check_frame_memory, codec_name, model_free_codec
from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.errors import VortexError, VortexFormatError
from vortexfmt.spec import CodecId, max_payload_size
from vortexfmt.spec.chunk import (
    CHUNK_CODECS,
    CHUNK_HEADER_SIZE,
    CHUNK_MAGIC,
    CHUNK_VERSION,
    MAX_CHUNK_SIZE,
    ChunkHeader,
)

#: The codec names encode() takes: the writer's, less the model codecs.
CHUNK_CODEC_CHOICES = ("auto", "cm", "lzma", "zstd", "stored")


def encode(data, codec: str = "auto", layout: str | None = None,
           level: int | None = None) -> bytes:
    """The chunk holding `data` (bytes-like, at most MAX_CHUNK_SIZE bytes).

    `codec` is one of CHUNK_CODEC_CHOICES (``auto`` keeps the smallest payload of stored,
    zstd, lzma and cm, as the archive writer does per frame, lzma and zstd left out where
    cm leads zstd -3 by a tenth); `level` (1..9, vortexfmt.codecs.levels) picks a preset
    instead, with `codec` ``auto``. `layout` (a numpy dtype string such as ``'<f4'``) tells
    the cm codec how the bytes are laid out, where this version's cm codec takes such a
    hint; otherwise it is ignored (decoding never needs it). Raises ValueError for arguments
    it cannot use.
    """
    raw = bytes(memoryview(data).cast("B"))
    if len(raw) > MAX_CHUNK_SIZE:
        raise ValueError(f"a chunk holds at most {MAX_CHUNK_SIZE} bytes, got {len(raw)}")
    if not raw:  # FORMAT.md: an empty chunk is stored
        codec_id, payload = CodecId.STORED, b""
    else:
        codec_id, payload = _encoder(codec, level, layout).encode(raw)
    header = ChunkHeader.build({"version": CHUNK_VERSION, "codec": codec_id,
                                "raw_size": len(raw), "crc32": zlib.crc32(raw)})
    return header + payload


def decode(chunk, out=None, memory_limit: int | None = None):
    """The bytes a chunk holds: a new bytes object, or written into `out` (a writable
    buffer of exactly the chunk's raw size), which is returned.

    Raises VortexFormatError (one line, starting ``vortex chunk:``) for anything that is
    not a whole, intact chunk, checking every declared size before allocating: the raw
    size against MAX_CHUNK_SIZE and `out`, the payload against the frame bound and the
    memory its codec would need against `memory_limit` (None: 1 GiB, as archives).
    """
    view = memoryview(chunk).cast("B")
    header = parse_header(view)
    payload = bytes(view[CHUNK_HEADER_SIZE:])
    target = None
    if out is not None:
        target = memoryview(out).cast("B")
        if target.readonly:
            raise ValueError("vortex chunk: out is read-only")
        if target.nbytes != header.raw_size:
            raise VortexFormatError(f"vortex chunk: holds {header.raw_size} bytes, out has "
                                    f"room for {target.nbytes}")
    raw = _decode_payload(header.codec, payload, header.raw_size,
                          limits.check_memory_limit(memory_limit))
    if zlib.crc32(raw) != header.crc32:
        raise VortexFormatError("vortex chunk: CRC-32 mismatch, the chunk is damaged")
    if target is None:
        return raw
    target[:] = raw
    return out


def parse_header(chunk) -> ChunkHeader:
    """The checked header of a chunk (the parsed construct container); raises
    VortexFormatError for a header FORMAT.md tells a reader to reject."""
    view = memoryview(chunk).cast("B")
    if view.nbytes < CHUNK_HEADER_SIZE:
        raise VortexFormatError(f"vortex chunk: truncated ({view.nbytes} bytes, the header "
                                f"alone is {CHUNK_HEADER_SIZE})")
    if bytes(view[:len(CHUNK_MAGIC)]) != CHUNK_MAGIC:
        raise VortexFormatError("vortex chunk: bad magic number (not a Vortex chunk)")
    try:
        header = ChunkHeader.parse(bytes(view[:CHUNK_HEADER_SIZE]))
    except ConstructError as error:  # cannot happen past the two checks above
        raise VortexFormatError(f"vortex chunk: bad header ({error})") from None
    if header.version != CHUNK_VERSION:
        raise VortexFormatError(f"vortex chunk: unsupported chunk version {header.version} "
                                f"(this reader knows {CHUNK_VERSION})")
    if header.codec not in CHUNK_CODECS:
        what = "needs a model, which chunks cannot name" \
            if header.codec in (CodecId.NEURAL, CodecId.MIXED) else "is not a chunk codec"
        raise VortexFormatError(f"vortex chunk: codec {codec_name(header.codec)} (id "
                                f"{header.codec}) {what}")
    if header.raw_size > MAX_CHUNK_SIZE:
        raise VortexFormatError(f"vortex chunk: raw size {header.raw_size} exceeds the "
                                f"chunk maximum {MAX_CHUNK_SIZE}")
    payload_size = view.nbytes - CHUNK_HEADER_SIZE
    if payload_size > max_payload_size(header.raw_size):
        raise VortexFormatError(f"vortex chunk: {payload_size} payload bytes exceed the bound "
                                f"{max_payload_size(header.raw_size)} for {header.raw_size} "
                                "raw bytes")
    if header.raw_size == 0 and (header.codec != CodecId.STORED or payload_size):
        raise VortexFormatError("vortex chunk: an empty chunk must be stored with no payload")
    return header


def _decode_payload(codec_id: int, payload: bytes, raw_size: int, memory_limit: int) -> bytes:
    """The codec's own decoder, after its payload header's memory need is checked; any
    failure is a one-line VortexFormatError."""
    name = codec_name(codec_id)
    try:
        if raw_size == 0:
            return b""
        check_frame_memory(codec_id, payload, raw_size, memory_limit)
        raw = model_free_codec(codec_id).decode(payload, raw_size)
    except VortexError as error:
        raise VortexFormatError(f"vortex chunk: {_one_line(error)}") from error
    except (ValueError, RuntimeError, OverflowError, MemoryError) as error:
        raise VortexFormatError(f"vortex chunk: {name} payload cannot be decoded "
                                f"({_one_line(error)})") from error
    if len(raw) != raw_size:
        raise VortexFormatError(f"vortex chunk: {name} payload decodes to {len(raw)} bytes, "
                                f"the header says {raw_size}")
    return raw


def _one_line(error: BaseException) -> str:
    lines = str(error).splitlines()
    return lines[0] if lines else type(error).__name__


@lru_cache(maxsize=32)
def _encoder(codec: str, level: int | None, layout: str | None) -> FrameEncoder:
    """The writer's frame encoder for these options (kept: it holds no data between
    frames, and encode() may run on several threads at once)."""
    if codec not in CHUNK_CODEC_CHOICES:
        raise ValueError(f"unknown chunk codec {codec!r}; choose one of "
                         f"{', '.join(CHUNK_CODEC_CHOICES)}")
    encoder = FrameEncoder(codec, level=level)
    if layout is not None:
        cm = cm_codec_with_layout(layout)
        if cm is not None:
            encoder.codecs = [cm if c.codec_id == CodecId.CM else c for c in encoder.codecs]
    return encoder


def cm_codec_with_layout(layout: str):
    """A cm codec told the numeric `layout` (e.g. ``'<f4'``), or None where this version's
    cm codec takes no such argument."""
    from vortexfmt.codecs.cm import CmCodec

    if "layout" not in inspect.signature(CmCodec).parameters:
        return None
    return CmCodec(layout=layout)


__all__ = ["CHUNK_CODEC_CHOICES", "MAX_CHUNK_SIZE", "decode", "encode", "parse_header"]
