"""Writing archives: a file object that cuts its input into frames and never seeks."""

from __future__ import annotations

import errno
import io
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

import xxhash

from vortexfmt import limits, spec
from vortexfmt.codecs import WRITER_CODEC_CHOICES
from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.container import structures
from vortexfmt.container.readahead import check_threads, is_integer
from vortexfmt.container.structures import IndexEntry

DEFAULT_FRAME_SIZE = 4 << 20


def check_writer_arguments(codec: str, frame_size: int, threads: int = 1) -> None:
    """Raise ValueError for a codec name, frame size or thread count a writer cannot use
    (TypeError for a frame size or thread count that is not an integer)."""
    check_threads(threads)
    if not is_integer(frame_size):
        raise TypeError(f"frame size must be an integer, got {frame_size!r}")
    if codec not in WRITER_CODEC_CHOICES:
        raise ValueError(f"unknown codec {codec!r}; choose one of "
                         f"{', '.join(WRITER_CODEC_CHOICES)}")
    if not spec.MIN_FRAME_SIZE <= frame_size <= spec.MAX_FRAME_SIZE:
        raise ValueError(f"frame size must lie in {spec.MIN_FRAME_SIZE}.."
                         f"{spec.MAX_FRAME_SIZE}, got {frame_size}")
    if codec in ("neural", "mixed"):  # what a writer produces must fit every reader's default
        largest = limits.largest_model_frame(mixed=codec == "mixed")
        if frame_size > largest:
            raise ValueError(f"frame size {frame_size} is too large for the {codec} codec: a "
                             f"reader would need more than "
                             f"{limits.format_bytes(limits.DEFAULT_MEMORY_LIMIT)} to decode a "
                             f"frame; at most {largest} bytes")


class ArchiveWriter(io.BufferedIOBase):
    """Write-only file object producing a Vortex archive on `fileobj`.

    Raw bytes written are cut into frames of `frame_size` bytes; each frame is encoded and
    written as soon as it is full, so memory holds one frame whatever the input size. The
    seek index and trailer are written by close(). The underlying file is only ever appended
    to, so pipes and stdout work. `progress`, if given, is called with the number of raw
    bytes each written frame holds.

    With `threads` > 1, up to that many frames are encoded at once on worker threads and
    written in order as they finish (a cm frame of 64 KiB or more that starts while fewer
    than `threads` are being encoded takes a second thread, for its context stage): the
    archive is byte for byte the one a single thread writes, and memory holds up to
    `threads` + 1 frames (and each frame's codec state: packing with auto takes about
    470 MiB a thread at 4 MiB frames). The model codecs (neural, mixed) encode on the
    calling thread whatever `threads` says: torch has threads of its own. With one thread,
    everything runs on the calling thread.

    `level` (1..9, vortexfmt.codecs.levels) picks a codec preset instead of `codec`,
    which must then be ``auto`` (the default, which level 9 equals).

    `encoder`, if given, encodes the frames instead of the FrameEncoder that `codec`,
    `level`, `model` and `device` would make: an object with FrameEncoder's encode(),
    cancel(), close(), `model_id`, `version_minor` and `thread_safe` (vortexfmt.dask
    hands over frames encoded on other machines this way, to be written as here).

    `layout` (a layout string such as ``<i4`` or ``<f4:6ch``, vortexfmt.codecs.record_layout)
    says what the records of the data are, for cm's numeric transforms (FORMAT.md "CM
    payload"); without it cm guesses on frames of 64 KiB or more. It needs cm among the
    codecs (auto or cm); a string that cannot be read raises LayoutError (a ValueError).

    `model` is the model of the neural and mixed codecs, or a profile (a `.vxprofile`
    path or a vortexfmt.profiles.Profile) with which cm primes every frame (FORMAT.md
    "Primed frames"; the archive then records the profile's id).

    Every write to `fileobj` is checked: a short count is completed by writing the rest, a
    count of 0 or None raises OSError (EIO), and the first error writing (ENOSPC, EPIPE)
    is the writer's failure like a frame's, below: close() raises it again and writes
    nothing more.

    If a frame fails to encode, the error is raised, and raised again by every later
    write() and by close(), which then writes no seek index: an archive missing a frame
    must not look whole; the frames still being encoded are cancelled.

    abort() stops at once and leaves the archive without its index. Leaving a `with`
    block by KeyboardInterrupt or SystemExit aborts; leaving it by anything else closes
    as usual. So does an error (an interrupt included) raised inside close(): the frames
    still being encoded are cancelled, and no index is written.
    """

    #: Set once __init__ has written the file header: a writer whose __init__ failed has no
    #: archive to end, and its close() (as the garbage collector calls it) does nothing.
    _ready = False

    def __init__(self, fileobj, *, codec: str = "auto", frame_size: int = DEFAULT_FRAME_SIZE,
                 model: object | None = None, device: str | None = None,
                 close_fileobj: bool = False,
                 progress: Callable[[int], None] | None = None, threads: int = 1,
                 level: int | None = None, layout: str | None = None,
                 encoder: FrameEncoder | None = None) -> None:
        check_writer_arguments(codec, frame_size, threads)
        if encoder is not None and layout is not None:
            raise ValueError("give an encoder or a layout, not both")
        self._encoder = encoder if encoder is not None else FrameEncoder(
            codec, model, device, frame_size, threads=threads, level=level, layout=layout)
        self.threads = threads if self._encoder.thread_safe else 1
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vortex-encode") \
            if self.threads > 1 else None
        self._in_flight: deque[tuple[bytes, Future]] = deque()
        #: The error that lost a frame: later writes and close() raise it again, and no
        #: index is written, so that the archive cannot pass for whole.
        self._failure: BaseException | None = None
        self._aborted = False
        self._sink_failed = False
        self._fileobj = fileobj
        self._close_fileobj = close_fileobj
        self._progress = progress
        self.frame_size = frame_size
        self._pending = bytearray()
        self._index: list[IndexEntry] = []
        self._content_hash = xxhash.xxh64()
        self._raw_size = 0
        self._offset = 0
        self.codec_counts: dict[int, int] = {}
        self._emit(structures.build_file_header(
            frame_size, self._encoder.model_id or structures.NO_MODEL,
            self._encoder.version_minor))
        self._ready = True

    # io.BufferedIOBase ------------------------------------------------------------------------

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._check_open()
        self._check_failure()
        view = memoryview(data).cast("B")
        self._pending += view
        while len(self._pending) >= self.frame_size:
            frame = bytes(self._pending[:self.frame_size])
            del self._pending[:self.frame_size]
            self._write_frame(frame)
        return view.nbytes

    def tell(self) -> int:
        """Raw bytes written so far."""
        self._check_open()
        return self._raw_size + sum(len(raw) for raw, _ in self._in_flight) + \
            len(self._pending)

    def flush(self) -> None:
        """Write the frames being encoded, then flush the underlying file. A partial frame
        stays buffered: frames are whole."""
        self._check_open()
        if not self._ready:
            return
        if self._failure is None and not self._aborted:
            self._drain(0)
        if hasattr(self._fileobj, "flush") and not self._sink_failed:
            self._flush_sink()

    def close(self) -> None:
        if self.closed:
            return
        if not self._ready:  # its __init__ failed (pools start threads only when used)
            super().close()
            return
        try:
            if not self._aborted:
                try:
                    self._check_failure()
                    if self._pending:
                        self._write_frame(bytes(self._pending))
                        self._pending.clear()
                    self._drain(0)
                    index_offset = self._offset
                    self._emit(structures.build_index(self._index))
                    self._emit(structures.build_trailer(index_offset, self._raw_size,
                                                        self._content_hash.intdigest()))
                except BaseException:  # the archive cannot be ended: stop at once
                    self._stop_coding()
                    raise
            if hasattr(self._fileobj, "flush") and not self._sink_failed:
                self._flush_sink()
        finally:
            try:
                if self._pool is not None:  # after an error: frames not yet begun are dropped
                    self._pool.shutdown(wait=True, cancel_futures=True)
                self._encoder.close()
                super().close()  # calls flush(), so before the file it flushes is closed
            finally:
                if self._close_fileobj:
                    self._fileobj.close()

    def abort(self) -> None:
        """Stop now: cancel the frames being encoded, drop the data not yet in a frame, and
        close without writing the seek index or trailer, so that the archive reads as cut
        short (its whole frames can still be salvaged). For Ctrl-C and the like."""
        if self.closed:
            return
        if self._ready:
            self._stop_coding()
        self.close()

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None and issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self.abort()
        else:
            self.close()

    def _stop_coding(self) -> None:
        """From now on write nothing more: cancel the frames being encoded, drop the data
        not yet in a frame."""
        self._aborted = True
        self._cancel_in_flight()
        self._pending.clear()

    def _cancel_in_flight(self) -> None:
        """Cancel the frames being encoded (cm stops within 64 KiB) and forget them."""
        self._encoder.cancel()
        for _, future in self._in_flight:
            future.cancel()
        self._in_flight.clear()

    # Archive structure ------------------------------------------------------------------------

    @property
    def encoder(self) -> FrameEncoder:
        """The frame encoder: its model codecs carry their statistics (`stats`)."""
        return self._encoder

    @property
    def raw_size(self) -> int:
        """Raw bytes written into frames so far (all of them once closed)."""
        return self._raw_size

    @property
    def packed_size(self) -> int:
        """Archive bytes written so far."""
        return self._offset

    def _write_frame(self, raw: bytes) -> None:
        if self._pool is not None:
            try:
                future = self._pool.submit(self._encoder.encode, raw)
            except RuntimeError:  # shut down (a writer left open at exit): encode it here
                self._drain(0)
            else:
                self._in_flight.append((raw, future))
                self._drain(self.threads)
                return
        self._emit_frame(raw, *self._encoded(raw, None))

    def _drain(self, keep: int) -> None:
        """Write encoded frames in order: those finished at the head of the queue, then
        more, waiting, until at most `keep` are still being encoded."""
        while self._in_flight and (len(self._in_flight) > keep or
                                   self._in_flight[0][1].done()):
            raw, future = self._in_flight[0]
            result = self._encoded(raw, future)
            self._in_flight.popleft()
            self._emit_frame(raw, *result)

    def _encoded(self, raw: bytes, future: Future | None) -> tuple[int, bytes]:
        """(codec id, payload) of `raw` from `future`, or encoded here; an error marks the
        writer failed and drops the frames still being encoded."""
        try:
            if future is None or future.cancelled():
                return self._encoder.encode(raw)
            return future.result()
        except BaseException as error:
            self._failure = error
            self._cancel_in_flight()
            raise

    def _check_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _emit_frame(self, raw: bytes, codec_id: int, payload: bytes) -> None:
        header = structures.build_frame_header(
            codec_id, len(self._index), len(raw), len(payload), spec.xxh64(raw))
        self._index.append(IndexEntry(self._offset, self._raw_size, len(raw), len(payload)))
        self._emit(header)
        self._emit(payload)
        self._content_hash.update(raw)
        self._raw_size += len(raw)
        self.codec_counts[codec_id] = self.codec_counts.get(codec_id, 0) + 1
        if self._progress is not None:
            self._progress(len(raw))

    def _emit(self, data: bytes) -> None:
        if self._sink_failed:
            raise self._failure
        view = memoryview(data).cast("B")
        try:
            while view.nbytes:
                count = self._fileobj.write(view)
                if not count:  # 0 or None (a raw stream that would block): nothing taken
                    raise OSError(errno.EIO, f"the output took {count!r} of {view.nbytes} "
                                  "bytes written to it")
                view = view[count:]
                self._offset += count
        except BaseException as error:
            self._sink_failed = True
            self._failure = error
            self._cancel_in_flight()
            raise

    def _flush_sink(self) -> None:
        try:
            self._fileobj.flush()
        except BaseException as error:
            self._sink_failed = True
            self._failure = error
            raise

    def _check_open(self) -> None:
        if self.closed:
            raise ValueError("I/O operation on closed archive writer")
