"""Reading and decoding one frame."""

from __future__ import annotations

from contextlib import contextmanager

from vortexfmt import spec
from vortexfmt.codecs import FrameDecoders, codec_name
from vortexfmt.container import structures
from vortexfmt.container.layout import read_exact
from vortexfmt.container.structures import FileHeader, FrameHeader, IndexEntry
from vortexfmt.errors import (
    CodingCancelled,
    FrameDamageError,
    VortexError,
    VortexFormatError,
    frame_error,
)


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
                   where: str, raw_offset: int | None = None) -> bytes:
    """Decode a payload and check it against the frame's checksum.

    Every failure is a FrameDamageError whose message starts with `where` (a codec's or
    kernel's unexpected exception included: ValueError, RuntimeError, MemoryError, ...),
    so that a reader can go on with the other frames; CodingCancelled, KeyboardInterrupt
    and SystemExit go through as they are."""
    name = codec_name(header.codec)
    try:
        raw = decoders.decode(header.codec, payload, header.raw_size)
    except CodingCancelled:
        raise
    except VortexError as error:  # VortexFormatError, MissingExtraError, a missing kernel
        detail = str(error)
        if not detail.startswith(name):
            detail = f"{name} payload: {detail}" if isinstance(error, VortexFormatError) \
                else f"{name} frame: {detail}"
        raise _damage(error, f"{where}: {detail}", header, raw_offset) from None
    except Exception as error:  # a codec's or kernel's own failure: the frame is lost
        detail = _short(error)
        raise _damage(error, f"{where}: {name} frame cannot be decoded ({detail})", header,
                      raw_offset) from error
    if len(raw) != header.raw_size:
        raise _damage(None, f"{where}: decoded {len(raw)} bytes, expected {header.raw_size}",
                      header, raw_offset)
    if spec.xxh64(raw) != header.raw_checksum:
        raise _damage(None, f"{where}: checksum mismatch", header, raw_offset)
    return raw


def _damage(cause: BaseException | None, message: str, header: FrameHeader,
            raw_offset: int | None) -> FrameDamageError:
    return frame_error(cause, message, frame_number=header.frame_number,
                       raw_offset=raw_offset, raw_size=header.raw_size)


def _short(error: BaseException, limit: int = 200) -> str:
    """`error` as 'TypeName: message', cut to `limit` characters (a message may hold a
    5000-digit number)."""
    try:
        text = str(error)
    except Exception:  # str() itself may fail (int -> str conversion limit)
        text = ""
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[:limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


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
        return decode_payload(header, payload, decoders, _where(number, entry),
                              entry.raw_offset)


def _where(number: int, entry: IndexEntry) -> str:
    return describe(number, entry.raw_offset, entry.raw_size, entry.frame_offset)


@contextmanager
def _as_frame_damage(number: int, entry: IndexEntry):
    """Turn a VortexFormatError into a FrameDamageError naming the frame's raw bytes."""
    where = _where(number, entry)
    try:
        yield
    except FrameDamageError as error:
        if error.raw_offset is None:
            error.raw_offset = entry.raw_offset
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
