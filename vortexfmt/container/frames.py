"""Reading and decoding one frame."""

from __future__ import annotations

from contextlib import contextmanager

from vortexfmt import spec
from vortexfmt.codecs import FrameDecoders, codec_name
from vortexfmt.container import structures
from vortexfmt.container.layout import read_exact
from vortexfmt.container.structures import FileHeader, FrameHeader, IndexEntry
from vortexfmt.errors import FrameDamageError, VortexFormatError


def describe(number: int, raw_offset: int | None, raw_size: int | None,
             offset: int | None = None) -> str:
    """'frame 3 (raw bytes 3145728..4194303) at offset 3145990' for error messages."""
    span = ""
    if raw_offset is not None and raw_size is not None:
        span = f" (raw bytes {raw_offset}..{raw_offset + raw_size - 1})" if raw_size else \
            " (no raw bytes)"
    return f"frame {number}{span}" + ("" if offset is None else f" at offset {offset}")


def read_frame_header(fileobj, offset: int, file_header: FileHeader) -> FrameHeader:
    data = read_exact(fileobj, spec.FRAME_HEADER_SIZE, "frame header", offset)
    return structures.parse_frame_header(data, offset, file_header.frame_size)


def decode_payload(header: FrameHeader, payload: bytes, decoders: FrameDecoders,
                   where: str) -> bytes:
    """Decode a payload and check it against the frame's checksum."""
    try:
        raw = decoders.decode(header.codec, payload, header.raw_size)
    except VortexFormatError as error:
        detail = str(error)
        name = codec_name(header.codec)
        if not detail.startswith(name):
            detail = f"{name} payload: {detail}"
        raise VortexFormatError(f"{where}: {detail}") from None
    if len(raw) != header.raw_size:
        raise VortexFormatError(f"{where}: decoded {len(raw)} bytes, expected {header.raw_size}")
    if spec.xxh64(raw) != header.raw_checksum:
        raise VortexFormatError(f"{where}: checksum mismatch")
    return raw


def load_indexed_frame(fileobj, base: int, number: int, entry: IndexEntry,
                       file_header: FileHeader, decoders: FrameDecoders) -> bytes:
    """Read and decode frame `number` of a seekable archive, as its index entry describes.

    Any damage raises FrameDamageError carrying the frame's raw byte range.
    """
    header, payload = read_indexed_frame(fileobj, base, number, entry, file_header)
    return decode_indexed_frame(header, payload, number, entry, decoders)


def read_indexed_frame(fileobj, base: int, number: int, entry: IndexEntry,
                       file_header: FileHeader) -> tuple[FrameHeader, bytes]:
    """The header and payload of frame `number`, checked against its index entry; the
    first half of load_indexed_frame (the half that touches the file)."""
    with _as_frame_damage(number, entry):
        fileobj.seek(base + entry.frame_offset)
        header = read_frame_header(fileobj, entry.frame_offset, file_header)
        if (header.frame_number, header.raw_size, header.payload_size) != \
                (number, entry.raw_size, entry.payload_size):
            raise VortexFormatError("frame header disagrees with the seek index")
        payload = read_exact(fileobj, header.payload_size, "frame payload",
                             entry.frame_offset + spec.FRAME_HEADER_SIZE)
    return header, payload


def decode_indexed_frame(header: FrameHeader, payload: bytes, number: int, entry: IndexEntry,
                         decoders: FrameDecoders) -> bytes:
    """The raw bytes of a frame read by read_indexed_frame; the second half of
    load_indexed_frame (safe on a worker thread when the codec is thread-safe)."""
    with _as_frame_damage(number, entry):
        return decode_payload(header, payload, decoders, _where(number, entry))


def _where(number: int, entry: IndexEntry) -> str:
    return describe(number, entry.raw_offset, entry.raw_size, entry.frame_offset)


@contextmanager
def _as_frame_damage(number: int, entry: IndexEntry):
    """Turn a VortexFormatError into a FrameDamageError naming the frame's raw bytes."""
    where = _where(number, entry)
    try:
        yield
    except FrameDamageError:
        raise
    except VortexFormatError as error:
        message = str(error)
        short = f"frame {number} at offset {entry.frame_offset}: "
        if message.startswith(short):
            message = message[len(short):]
        if not message.startswith(where):
            message = f"{where}: {message}"
        raise FrameDamageError(message, frame_number=number, raw_offset=entry.raw_offset,
                               raw_size=entry.raw_size) from None
