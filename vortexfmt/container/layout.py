"""An archive's frame table: read from its seek index, or rebuilt by scanning markers."""

from __future__ import annotations

import os
from dataclasses import dataclass

from vortexfmt import spec
from vortexfmt.container import structures
from vortexfmt.container.structures import FileHeader, FrameHeader, IndexEntry, Trailer
from vortexfmt.errors import VortexFormatError

SCAN_CHUNK = 1 << 20


@dataclass(frozen=True)
class Layout:
    """Where everything is in a seekable archive.

    `base` is the file offset of the archive's first byte; every offset in `frames` is
    relative to it. `trailer` is None for a layout rebuilt by scanning a damaged archive.
    """

    base: int
    size: int
    header: FileHeader
    frames: list[IndexEntry]
    trailer: Trailer | None

    @property
    def raw_size(self) -> int:
        if self.trailer is not None:
            return self.trailer.raw_size
        return self.frames[-1].raw_offset + self.frames[-1].raw_size if self.frames else 0


#: read_exact asks a file for at most this many bytes at once: a size read from a damaged
#: or hostile archive costs no more memory than the bytes that are really there.
READ_CHUNK = 16 << 20


def read_exact(fileobj, size: int, what: str, offset: int) -> bytes:
    """Read exactly `size` bytes or raise VortexFormatError naming `what`."""
    data = fileobj.read(min(size, READ_CHUNK)) or b""
    if len(data) < size:  # a pipe or raw file may return less than asked before its end
        buffer = bytearray(data)
        while len(buffer) < size and \
                (more := fileobj.read(min(size - len(buffer), READ_CHUNK))):
            buffer += more
        data = bytes(buffer)
    if len(data) != size:
        raise VortexFormatError(f"{what} at offset {offset}: archive truncated "
                                f"({len(data)} of {size} bytes)")
    return data


def read_file_header(fileobj) -> FileHeader:
    return structures.parse_file_header(
        read_exact(fileobj, spec.FILE_HEADER_SIZE, "file header", 0))


def read_layout(fileobj) -> Layout:
    """Read header, trailer and seek index of a seekable archive starting at the current
    position. Raises VortexFormatError if any of them is missing or inconsistent."""
    base = fileobj.tell()
    header = read_file_header(fileobj)
    size = fileobj.seek(0, os.SEEK_END) - base
    minimum = spec.FILE_HEADER_SIZE + spec.index_size(0) + spec.TRAILER_SIZE
    if size < minimum:
        raise VortexFormatError(f"archive truncated: {size} bytes cannot hold the file header, "
                                f"seek index and trailer ({minimum} bytes)")
    trailer_offset = size - spec.TRAILER_SIZE
    fileobj.seek(base + trailer_offset)
    data = read_exact(fileobj, spec.TRAILER_SIZE, "trailer", trailer_offset)
    if not data.endswith(spec.TRAILER_MAGIC):
        raise VortexFormatError(f"trailer at offset {trailer_offset}: bad magic number (the "
                                "archive is truncated or has data after its end)")
    trailer = structures.parse_trailer(data, trailer_offset)
    if not spec.FILE_HEADER_SIZE <= trailer.index_offset <= trailer_offset - spec.index_size(0):
        raise VortexFormatError(f"trailer at offset {trailer_offset}: index offset "
                                f"{trailer.index_offset} lies outside the archive")
    index_length = trailer_offset - trailer.index_offset
    fileobj.seek(base + trailer.index_offset)
    frames = structures.parse_index(
        read_exact(fileobj, index_length, "seek index", trailer.index_offset),
        trailer.index_offset)
    structures.check_index(frames, header, trailer, trailer.index_offset)
    return Layout(base, size, header, frames, trailer)


@dataclass(frozen=True)
class ScannedFrame:
    frame_offset: int
    header: FrameHeader


def scan_frames(fileobj, base: int, header: FileHeader, size: int) -> list[ScannedFrame]:
    """Find every frame whose header is intact by looking for frame markers.

    Used when the seek index cannot be trusted. A marker counts only if the frame header
    after it passes its checksum, its payload fits in the file and there is room before it
    for the frames its number says precede it; a later copy of a frame number already found
    is ignored. Reads the archive in chunks: memory stays bounded.
    """
    found: dict[int, ScannedFrame] = {}
    position = spec.FILE_HEADER_SIZE
    overlap = spec.FRAME_HEADER_SIZE - 1
    while position < size:
        fileobj.seek(base + position)
        chunk = fileobj.read(SCAN_CHUNK + overlap)
        if not chunk:
            break
        start = 0
        while (hit := chunk.find(spec.FRAME_MAGIC, start)) != -1:
            start = hit + 1
            offset = position + hit
            if hit + spec.FRAME_HEADER_SIZE > len(chunk):
                break  # finished in the next chunk
            try:
                frame = structures.parse_frame_header(
                    chunk[hit:hit + spec.FRAME_HEADER_SIZE], offset, header.frame_size)
            except VortexFormatError:
                continue
            if offset + spec.FRAME_HEADER_SIZE + frame.payload_size > size:
                continue
            if frame.frame_number > (offset - spec.FILE_HEADER_SIZE) // spec.FRAME_HEADER_SIZE:
                continue  # no room before it for the frames its number says precede it
            found.setdefault(frame.frame_number, ScannedFrame(offset, frame))
        position += SCAN_CHUNK
    return [found[number] for number in sorted(found)]


def rebuild_layout(fileobj) -> Layout:
    """Layout of a damaged or truncated seekable archive, from its trailer and index when
    they are intact and from scanning frame markers otherwise.

    Frames a scan cannot find are left out of `frames`; callers compare frame numbers
    with the nominal frame size to tell where the holes are.
    """
    base = fileobj.tell()
    try:
        return read_layout(fileobj)
    except VortexFormatError:
        pass
    fileobj.seek(base)
    header = read_file_header(fileobj)
    size = fileobj.seek(0, os.SEEK_END) - base
    frames = [IndexEntry(f.frame_offset, f.header.frame_number * header.frame_size,
                         f.header.raw_size, f.header.payload_size)
              for f in scan_frames(fileobj, base, header, size)]
    return Layout(base, size, header, frames, None)
