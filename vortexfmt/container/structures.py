"""Parse and build the container's structures, with the checks FORMAT.md requires.

Every parse function takes the bytes of one structure and the file offset it came from, and
either returns the parsed fields or raises VortexFormatError naming the structure, the offset
and what is wrong. Nothing here reads files or knows about codecs.
"""

from __future__ import annotations

from dataclasses import dataclass

from construct import ChecksumError, ConstError, ConstructError

from vortexfmt import spec
from vortexfmt.errors import VortexFormatError

NO_MODEL = bytes(spec.MODEL_ID_SIZE)


@dataclass(frozen=True)
class FileHeader:
    version_major: int
    version_minor: int
    flags: int
    frame_size: int
    model_id: bytes

    @property
    def needs_model(self) -> bool:
        return self.model_id != NO_MODEL


@dataclass(frozen=True)
class FrameHeader:
    codec: int
    frame_number: int
    raw_size: int
    payload_size: int
    raw_checksum: int


@dataclass(frozen=True)
class IndexEntry:
    frame_offset: int
    raw_offset: int
    raw_size: int
    payload_size: int


@dataclass(frozen=True)
class Trailer:
    index_offset: int
    raw_size: int
    content_checksum: int


def _parse(construct, data: bytes, what: str, offset: int, size: int | None = None):
    """Parse `data` with `construct`, turning construct's errors into VortexFormatError.

    `size` is the structure's size when it is not fixed (the seek index)."""
    size = construct.sizeof() if size is None else size
    if len(data) < size:
        raise VortexFormatError(
            f"{what} at offset {offset}: truncated ({len(data)} of {size} bytes)")
    try:
        return construct.parse(data)
    except ConstError:
        raise VortexFormatError(f"{what} at offset {offset}: bad magic number") from None
    except ChecksumError:
        raise VortexFormatError(f"{what} at offset {offset}: checksum mismatch") from None
    except ConstructError as error:  # pragma: no cover - sizes are checked above
        raise VortexFormatError(f"{what} at offset {offset}: {error}") from None


# --- File header ------------------------------------------------------------------------------

def build_file_header(frame_size: int, model_id: bytes = NO_MODEL, version_minor: int = 0) -> bytes:
    """The file header; `version_minor` is the lowest minor version the archive needs (1
    where it may hold mixed frames, FORMAT.md "Versions")."""
    return spec.FileHeader.build({"header": {"value": {
        "version_major": spec.FORMAT_MAJOR, "version_minor": version_minor,
        "flags": 0, "frame_size": frame_size, "model_id": model_id}}})


def parse_file_header(data: bytes) -> FileHeader:
    if len(data) >= len(spec.FILE_MAGIC) and not data.startswith(spec.FILE_MAGIC):
        raise VortexFormatError("not a Vortex archive (bad magic number at offset 0)")
    # The version is checked before the checksum, so that a future major version whose
    # header differs is reported as such rather than as damage.
    if len(data) >= 10 and data[8] != spec.FORMAT_MAJOR:
        raise VortexFormatError(
            f"unsupported format version {data[8]}.{data[9]} "
            f"(this reader supports {spec.FORMAT_MAJOR}.x)")
    fields = _parse(spec.FileHeader, data, "file header", 0).header.value
    if fields.flags != 0:
        raise VortexFormatError(f"file header at offset 0: unknown flags 0x{fields.flags:04x}")
    if not spec.MIN_FRAME_SIZE <= fields.frame_size <= spec.MAX_FRAME_SIZE:
        raise VortexFormatError(
            f"file header at offset 0: frame size {fields.frame_size} outside "
            f"{spec.MIN_FRAME_SIZE}..{spec.MAX_FRAME_SIZE}")
    return FileHeader(fields.version_major, fields.version_minor, fields.flags,
                      fields.frame_size, bytes(fields.model_id))


# --- Frame header -----------------------------------------------------------------------------

def build_frame_header(codec: int, frame_number: int, raw_size: int, payload_size: int,
                       raw_checksum: int) -> bytes:
    return spec.FrameHeader.build({"header": {"value": {
        "codec": codec, "flags": 0, "reserved": 0, "frame_number": frame_number,
        "raw_size": raw_size, "payload_size": payload_size, "raw_checksum": raw_checksum}}})


def parse_frame_header(data: bytes, offset: int, frame_size: int) -> FrameHeader:
    """Parse a frame header and check its sizes against the file header's frame size."""
    fields = _parse(spec.FrameHeader, data, "frame header", offset).header.value
    where = f"frame {fields.frame_number} at offset {offset}"
    if fields.flags != 0 or fields.reserved != 0:
        raise VortexFormatError(f"{where}: reserved header bits are set")
    if fields.raw_size == 0:
        raise VortexFormatError(f"{where}: empty frame (writers never write one)")
    if fields.raw_size > frame_size:
        raise VortexFormatError(
            f"{where}: raw size {fields.raw_size} exceeds the frame size {frame_size}")
    if fields.payload_size > spec.max_payload_size(fields.raw_size):
        raise VortexFormatError(
            f"{where}: payload size {fields.payload_size} is impossible for "
            f"{fields.raw_size} raw bytes")
    return FrameHeader(fields.codec, fields.frame_number, fields.raw_size,
                       fields.payload_size, fields.raw_checksum)


# --- Skippable section ------------------------------------------------------------------------

def build_skippable_header(kind: int, length: int) -> bytes:
    return spec.SkippableHeader.build(
        {"header": {"value": {"kind": kind, "reserved": 0, "length": length}}})


def parse_skippable_header(data: bytes, offset: int) -> int:
    """Return the length of the section's content."""
    return _parse(spec.SkippableHeader, data, "skippable section", offset).header.value.length


# --- Seek index and trailer -------------------------------------------------------------------

def build_index(entries: list[IndexEntry]) -> bytes:
    return spec.Index.build({"index": {"value": {
        "count": len(entries),
        "entries": [entry.__dict__ for entry in entries]}}})


def parse_index(data: bytes, offset: int) -> list[IndexEntry]:
    """Parse a seek index whose bytes run exactly to the trailer."""
    if len(data) < spec.INDEX_FIXED_SIZE:
        raise VortexFormatError(f"seek index at offset {offset}: truncated")
    count = int.from_bytes(data[4:8], "little")
    if spec.index_size(count) != len(data):
        raise VortexFormatError(
            f"seek index at offset {offset}: {count} entries do not fill its "
            f"{len(data)} bytes")
    parsed = _parse(spec.Index, data, "seek index", offset, len(data)).index.value
    return [IndexEntry(e.frame_offset, e.raw_offset, e.raw_size, e.payload_size)
            for e in parsed.entries]


def build_trailer(index_offset: int, raw_size: int, content_checksum: int) -> bytes:
    return spec.Trailer.build({"trailer": {"value": {
        "index_offset": index_offset, "raw_size": raw_size,
        "content_checksum": content_checksum}}})


def parse_trailer(data: bytes, offset: int) -> Trailer:
    # The magic comes last but is checked first: without it there is no trailer to checksum.
    if len(data) >= spec.TRAILER_SIZE and data[spec.TRAILER_SIZE - 4:spec.TRAILER_SIZE] != \
            spec.TRAILER_MAGIC:
        raise VortexFormatError(f"trailer at offset {offset}: bad magic number")
    fields = _parse(spec.Trailer, data, "trailer", offset).trailer.value
    return Trailer(fields.index_offset, fields.raw_size, fields.content_checksum)


def check_index(entries: list[IndexEntry], header: FileHeader, trailer: Trailer,
                index_offset: int) -> None:
    """Check that the index describes a possible archive (FORMAT.md "Seek index")."""
    raw_offset = 0
    previous_end = spec.FILE_HEADER_SIZE
    for number, entry in enumerate(entries):
        where = f"seek index entry {number}"
        if entry.raw_offset != raw_offset:
            raise VortexFormatError(
                f"{where}: raw offset {entry.raw_offset}, expected {raw_offset}")
        last = number == len(entries) - 1
        if entry.raw_size == 0:  # as a frame header saying so (FORMAT.md "Frame header")
            raise VortexFormatError(f"{where}: empty frame (writers never write one)")
        if entry.raw_size > header.frame_size or (not last and entry.raw_size != header.frame_size):
            raise VortexFormatError(f"{where}: raw size {entry.raw_size} breaks the frame size "
                                    f"{header.frame_size}")
        if entry.payload_size > spec.max_payload_size(entry.raw_size):
            raise VortexFormatError(f"{where}: impossible payload size {entry.payload_size}")
        end = entry.frame_offset + spec.FRAME_HEADER_SIZE + entry.payload_size
        if entry.frame_offset < previous_end or end > index_offset:
            raise VortexFormatError(
                f"{where}: frame at offset {entry.frame_offset} lies outside its place "
                f"({previous_end}..{index_offset})")
        previous_end = end
        raw_offset += entry.raw_size
    if not entries and trailer.content_checksum != spec.xxh64(b""):
        raise VortexFormatError("trailer: content checksum of an empty archive is wrong")
    if raw_offset != trailer.raw_size:
        raise VortexFormatError(
            f"seek index covers {raw_offset} raw bytes, trailer says {trailer.raw_size}")
