"""Reading archives: a file object over the raw content, decoding only the frames it needs.

Shaped like CPython's gzip/lzma readers: `FrameReader` (io.RawIOBase) only knows how to
produce raw bytes and where a raw position lies; `io.BufferedReader` adds buffering and
readline; `ArchiveReader` is the thin public class that owns the underlying file.

On a seekable file the seek index maps a raw position to its frame, so a seek costs one
frame's decode. On a pipe, frames are decoded in order and seeks may only go forward.
"""

from __future__ import annotations

import bisect
import io
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import xxhash

from vortexfmt import spec
from vortexfmt.codecs import FrameDecoders
from vortexfmt.container import structures
from vortexfmt.container.frames import decode_payload, describe
from vortexfmt.container.layout import Layout, read_exact, read_file_header, read_layout
from vortexfmt.container.readahead import FrameReadAhead, check_threads, decode_later
from vortexfmt.container.structures import FileHeader, IndexEntry
from vortexfmt.errors import VortexFormatError
from vortexfmt.limits import check_memory_limit


def file_path(fileobj) -> str | None:
    """The path `fileobj` was opened from, if it has one (its directory is searched for
    the archive's profile)."""
    name = getattr(fileobj, "name", None)
    return name if isinstance(name, str) and name not in ("<stdin>",) else None


def _is_seekable(fileobj) -> bool:
    try:
        return bool(fileobj.seekable())
    except (AttributeError, ValueError):
        return False


class FrameReader(io.RawIOBase):
    """Raw-content reader over an archive; see the module docstring."""

    def __init__(self, fileobj, model: object | None = None, device: str | None = None,
                 threads: int = 1, memory_limit: int | None = None) -> None:
        check_threads(threads)
        memory_limit = check_memory_limit(memory_limit)
        self._fileobj = fileobj
        self._seekable = _is_seekable(fileobj)
        if self._seekable:
            self.layout: Layout | None = read_layout(fileobj)
            self.header: FileHeader = self.layout.header
            self._raw_starts = [entry.raw_offset for entry in self.layout.frames]
        else:
            self.layout = None
            self.header = read_file_header(fileobj)
            self._stream_offset = spec.FILE_HEADER_SIZE
            self._stream_entries: list[IndexEntry] = []
            self._stream_done = False
            # Blocks read from the stream ahead of their use, in order: ("frame", number,
            # raw offset, future, result), ("error", exception) or ("end", trailer).
            self._stream_ahead: deque[tuple] = deque()
            self._stream_parsed = False  # the index, or damage, has been read: stop there
            self._stream_failure: BaseException | None = None  # raised by every later read
            self._stream_threads = threads
            self._stream_pool = ThreadPoolExecutor(threads, thread_name_prefix="vortex-decode") \
                if threads > 1 else None
        self._decoders = FrameDecoders(self.header.model_id, model, device, memory_limit,
                                       archive_path=file_path(fileobj))
        self._frames = FrameReadAhead(fileobj, self.layout.base, self.layout.frames,
                                      self.header, self._decoders, threads) \
            if self._seekable else None
        self._position = 0
        self._frame_number = -1
        self._frame_start = 0
        self._frame = b""
        # The whole-content checksum is checked when the content is read start to end.
        self._content_hash: xxhash.xxh64 | None = xxhash.xxh64()

    # io.RawIOBase -----------------------------------------------------------------------------

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return self._seekable

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        if not view.nbytes or not self._ensure_frame():
            return 0
        start = self._position - self._frame_start
        count = min(view.nbytes, len(self._frame) - start)
        chunk = self._frame[start:start + count]
        view[:count] = chunk
        self._position += count
        if self._content_hash is not None:
            self._content_hash.update(chunk)
            if self._seekable and self._position == self.layout.raw_size:
                self._check_content()
        return count

    def tell(self) -> int:
        return self._position

    def close(self) -> None:
        try:
            frames = getattr(self, "_frames", None)  # absent if __init__ failed
            if frames is not None:
                frames.close()
            pool = getattr(self, "_stream_pool", None)
            if pool is not None:
                self._decoders.cancel()  # frames being decoded ahead stop, unread
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            super().close()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._position + offset
        elif whence == io.SEEK_END:
            if not self._seekable:
                raise io.UnsupportedOperation("SEEK_END on an archive read from a stream")
            target = self.layout.raw_size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target == self._position:
            return target
        if not self._seekable:  # ArchiveReader.seek goes forward on streams by reading
            raise io.UnsupportedOperation("seek on an archive read from a stream")
        self._content_hash = None
        self._position = target
        return target

    # Frames -----------------------------------------------------------------------------------

    @property
    def raw_size(self) -> int | None:
        """Total raw size, known up front on seekable archives only."""
        return self.layout.raw_size if self._seekable else None

    def _ensure_frame(self) -> bool:
        """Make the frame holding the current position current; False at end of content."""
        if self._frame_start <= self._position < self._frame_start + len(self._frame):
            return True
        if self._seekable:
            if self._position >= self.layout.raw_size:
                return False
            number = bisect.bisect_right(self._raw_starts, self._position) - 1
            self._frame = self._frames.frame(number)
            self._frame_number = number
            self._frame_start = self.layout.frames[number].raw_offset
            return True
        while not self._stream_done:
            if self._stream_failure is not None:  # a stream cannot go on past damage
                raise self._stream_failure
            self._read_stream_ahead()
            item = self._stream_ahead.popleft()
            if item[0] == "end":
                self._stream_done = True
                self._stream_trailer = item[1]
                self._check_content()
                return False
            try:
                if item[0] == "error":
                    raise item[1]
                _, number, raw_offset, _, result = item
                self._frame = result()
            except BaseException as error:
                self._stream_failure = error
                self._frame = b""
                for queued in self._stream_ahead:
                    if queued[0] == "frame" and queued[3] is not None:
                        queued[3].cancel()
                self._stream_ahead.clear()
                raise
            self._frame_number, self._frame_start = number, raw_offset
            if self._frame:
                return True
        return False

    def _read_stream_ahead(self) -> None:
        """Read blocks until as many frames as threads are read ahead (decoding on worker
        threads), or the index or damage is reached; damage is queued, to be raised when
        the reading gets there."""
        def frames_ahead() -> int:
            return sum(item[0] == "frame" for item in self._stream_ahead)

        while not self._stream_parsed and (not self._stream_ahead or
                                           frames_ahead() < self._stream_threads):
            try:
                self._read_stream_block()
            except (VortexFormatError, OSError) as error:
                self._stream_ahead.append(("error", error))
                self._stream_parsed = True

    def _read_stream_block(self) -> None:
        """Read the next block of a non-seekable archive onto the read-ahead queue."""
        offset = self._stream_offset
        magic = read_exact(self._fileobj, 4, "block", offset)
        if magic == spec.FRAME_MAGIC:
            data = magic + read_exact(self._fileobj, spec.FRAME_HEADER_SIZE - 4,
                                      "frame header", offset)
            header = structures.parse_frame_header(data, offset, self.header.frame_size)
            raw_offset = len(self._stream_entries) * self.header.frame_size
            where = describe(header.frame_number, raw_offset, header.raw_size, offset)
            if header.frame_number != len(self._stream_entries):
                raise VortexFormatError(f"{where}: expected frame {len(self._stream_entries)}")
            if self._stream_entries and self._stream_entries[-1].raw_size != \
                    self.header.frame_size:
                raise VortexFormatError(f"{where}: follows a short frame")
            payload = read_exact(self._fileobj, header.payload_size, "frame payload",
                                 offset + spec.FRAME_HEADER_SIZE)
            future, result = decode_later(self._stream_pool, self._decoders, header.codec,
                                          decode_payload, header, payload, self._decoders,
                                          where, raw_offset)
            self._stream_ahead.append(("frame", header.frame_number, raw_offset, future,
                                       result))
            self._stream_entries.append(
                IndexEntry(offset, raw_offset, header.raw_size, header.payload_size))
            self._stream_offset += spec.FRAME_HEADER_SIZE + header.payload_size
            return
        if magic == spec.SKIPPABLE_MAGIC:
            data = magic + read_exact(self._fileobj, spec.SKIPPABLE_HEADER_SIZE - 4,
                                      "skippable section", offset)
            length = structures.parse_skippable_header(data, offset)
            self._skip(length, offset)
            self._stream_offset += spec.SKIPPABLE_HEADER_SIZE + length
            return
        if magic == spec.INDEX_MAGIC:
            self._stream_ahead.append(("end", self._finish_stream(magic, offset)))
            self._stream_parsed = True
            return
        raise VortexFormatError(f"offset {offset}: expected a frame, skippable section or "
                                f"seek index, found bytes {magic.hex()}")

    def _skip(self, length: int, offset: int) -> None:
        while length:
            step = min(length, 1 << 16)
            read_exact(self._fileobj, step, "skippable section", offset)
            length -= step

    def _finish_stream(self, magic: bytes, offset: int):
        """Read the seek index and trailer at the end of a stream, check them against the
        frames seen, and return the trailer (the whole-content checksum is checked once
        the content has been read up to here)."""
        count_bytes = read_exact(self._fileobj, 4, "seek index", offset)
        count = int.from_bytes(count_bytes, "little")
        if count != len(self._stream_entries):
            raise VortexFormatError(f"seek index at offset {offset}: lists {count} frames, "
                                    f"the archive holds {len(self._stream_entries)}")
        rest = read_exact(self._fileobj, spec.index_size(count) - 8, "seek index", offset)
        entries = structures.parse_index(magic + count_bytes + rest, offset)
        trailer_offset = offset + spec.index_size(count)
        trailer = structures.parse_trailer(
            read_exact(self._fileobj, spec.TRAILER_SIZE, "trailer", trailer_offset),
            trailer_offset)
        if entries != self._stream_entries or trailer.index_offset != offset:
            raise VortexFormatError(f"seek index at offset {offset}: disagrees with the frames")
        raw_size = sum(entry.raw_size for entry in entries)
        if trailer.raw_size != raw_size:
            raise VortexFormatError(f"trailer at offset {trailer_offset}: raw size "
                                    f"{trailer.raw_size}, frames hold {raw_size}")
        if self._fileobj.read(1):
            raise VortexFormatError(f"offset {trailer_offset + spec.TRAILER_SIZE}: "
                                    "data after the trailer")
        return trailer

    def _check_content(self) -> None:
        expected = (self.layout.trailer if self._seekable else self._stream_trailer)
        if self._content_hash is not None and \
                self._content_hash.intdigest() != expected.content_checksum:
            raise VortexFormatError("whole-content checksum mismatch: the archive is damaged")
        self._content_hash = None


class ArchiveReader(io.BufferedIOBase):
    """Read-only file object over the raw content of a Vortex archive.

    Supports read, read1, readinto, readline, iteration, peek, and seek/tell on raw
    positions (forward only when `fileobj` is not seekable). Damage raises
    VortexFormatError (FrameDamageError for a frame) naming what and where. With
    `threads` > 1, reading in order decodes that many frames at once, read ahead from the
    file (vortexfmt.container.readahead) or the stream; a seek decodes only the frame it
    lands in. A stream stops for good at damage: every later read raises it again.

    `memory_limit` bounds the memory one frame may need to decode (bytes; None:
    vortexfmt.limits.DEFAULT_MEMORY_LIMIT, 1 GiB): a frame whose declared parameters need
    more raises FrameDamageError (a FrameMemoryError too) before anything is allocated.
    Each of `threads` decodes a frame of its own, so the reader may need that many times
    the limit.
    """

    def __init__(self, fileobj, *, model: object | None = None, device: str | None = None,
                 close_fileobj: bool = False, threads: int = 1,
                 memory_limit: int | None = None) -> None:
        self._fileobj = fileobj
        self._close_fileobj = close_fileobj
        try:
            self._raw = FrameReader(fileobj, model, device, threads, memory_limit)
        except BaseException:
            if close_fileobj:
                fileobj.close()
            raise
        self._buffer = io.BufferedReader(self._raw)

    @property
    def header(self) -> FileHeader:
        return self._raw.header

    @property
    def layout(self) -> Layout | None:
        """Header, frame table and trailer (None when reading a stream)."""
        return self._raw.layout

    def readable(self) -> bool:
        self._check_open()
        return True

    def seekable(self) -> bool:
        self._check_open()
        return self._raw.seekable()

    def read(self, size: int | None = -1) -> bytes:
        self._check_open()
        return self._buffer.read(size)

    def read1(self, size: int = -1) -> bytes:
        self._check_open()
        return self._buffer.read1(size)

    def readinto(self, buffer) -> int:
        self._check_open()
        return self._buffer.readinto(buffer)

    def readline(self, size: int | None = -1) -> bytes:
        self._check_open()
        return self._buffer.readline(size)

    def peek(self, size: int = 0) -> bytes:
        self._check_open()
        return self._buffer.peek(size)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._check_open()
        if self._raw.seekable():
            return self._buffer.seek(offset, whence)
        # io.BufferedReader refuses every seek on a stream: go forward by reading.
        position = self._buffer.tell()
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = position + offset
        elif whence == io.SEEK_END:
            raise io.UnsupportedOperation("SEEK_END on an archive read from a stream")
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise ValueError(f"negative seek position {target}")
        if target < position:
            raise io.UnsupportedOperation("backward seek on an archive read from a stream")
        while position < target and (chunk := self._buffer.read(min(target - position,
                                                                    1 << 20))):
            position += len(chunk)
        return position

    def tell(self) -> int:
        self._check_open()
        return self._buffer.tell()

    def close(self) -> None:
        if self.closed:
            return
        try:
            buffer = getattr(self, "_buffer", None)  # none where __init__ failed
            if buffer is not None:
                buffer.close()
        finally:
            try:
                if self._close_fileobj:
                    self._fileobj.close()
            finally:
                super().close()

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed archive reader")


__all__ = ["ArchiveReader", "FrameReader"]
