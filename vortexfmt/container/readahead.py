"""Frames of a seekable archive by number, the next ones decoded ahead on worker threads.

Reading an archive from start to end decodes one frame after another; with `threads` > 1,
while the caller uses frame n, frames n + 1 .. n + threads - 1 are being decoded (once the
reads go forward frame by frame: from frame 0, or from two steps forward in a row). The
file is only ever read on the calling thread (payloads are read ahead, then handed to a
worker), frames come back in the order asked for, and a frame's damage is raised only
when that frame is asked for, as it would be without read-ahead. Frames of the model
codecs (neural, mixed) are decoded on the calling thread when asked for: torch has
threads of its own.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

from vortexfmt.codecs import FrameDecoders
from vortexfmt.container.frames import (
    decode_indexed_frame,
    load_indexed_frame,
    read_indexed_frame,
)
from vortexfmt.container.structures import FileHeader, IndexEntry
from vortexfmt.errors import FrameDamageError
from vortexfmt.limits import check_memory_limit


def is_integer(value) -> bool:
    """Whether `value` is an integer (an int, or one of numpy's), not a bool or float."""
    if isinstance(value, bool):
        return False
    try:
        operator.index(value)
    except TypeError:
        return False
    return True


def check_threads(threads: int) -> None:
    """Raise ValueError for a thread count a reader or writer cannot use (TypeError for one
    that is not an integer)."""
    if not is_integer(threads):
        raise TypeError(f"threads must be an integer, got {threads!r}")
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")


class FrameReadAhead:
    """Decoded frames by number; see the module docstring. `entries` maps a frame number to
    its index entry (a list, or a dict with gaps where frames are missing). `memory_limit`,
    when given, replaces the decoders' limit on the memory one frame may need (each thread
    decodes a frame of its own)."""

    def __init__(self, fileobj, base: int, entries: Mapping[int, IndexEntry] | list,
                 file_header: FileHeader, decoders: FrameDecoders, threads: int = 1,
                 memory_limit: int | None = None) -> None:
        check_threads(threads)
        if memory_limit is not None:  # else the decoders' own (by default, the default)
            decoders.memory_limit = check_memory_limit(memory_limit)
        self._fileobj = fileobj
        self._base = base
        self._entries = entries
        self._file_header = file_header
        self._decoders = decoders
        self.threads = threads
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="vortex-decode") \
            if threads > 1 else None
        self._ahead: dict[int, tuple[Future | None, Callable[[], bytes]]] = {}
        self._last = -1
        self._stepped = False

    def frame(self, number: int) -> bytes:
        """The raw bytes of frame `number`; raises FrameDamageError if it is damaged."""
        # read ahead from frame 0, or from a second step forward in a row: a read that
        # crosses one frame boundary after a seek does not start it
        sequential = number == self._last + 1 and (number == 0 or self._stepped)
        self._stepped = number == self._last + 1
        self._last = number
        if self._pool is None:
            return self._decode_now(number)
        for stale in [n for n in self._ahead if not number <= n < number + self.threads]:
            future, _ = self._ahead.pop(stale)
            if future is not None:
                future.cancel()  # one already running finishes, unread
        if number not in self._ahead:
            self._schedule(number)
        if sequential:  # a random access decodes only what it asks for
            for later in range(number + 1, number + self.threads):
                if later not in self._ahead and self._entry(later) is not None:
                    self._schedule(later)
        _, result = self._ahead.pop(number)
        return result()

    def close(self) -> None:
        """Stop the workers: frames being decoded are cancelled (cm stops within 64 KiB;
        the decoders decode nothing more)."""
        for future, _ in self._ahead.values():
            if future is not None:
                future.cancel()
        self._ahead.clear()
        if self._pool is not None:
            self._decoders.cancel()
            self._pool.shutdown(wait=True)

    def __enter__(self) -> FrameReadAhead:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _entry(self, number: int) -> IndexEntry | None:
        if isinstance(self._entries, list):
            return self._entries[number] if 0 <= number < len(self._entries) else None
        return self._entries.get(number)

    def _decode_now(self, number: int) -> bytes:
        return load_indexed_frame(self._fileobj, self._base, number, self._entry(number),
                                  self._file_header, self._decoders)

    def _schedule(self, number: int) -> None:
        entry = self._entry(number)
        try:
            header, payload = read_indexed_frame(self._fileobj, self._base, number, entry,
                                                 self._file_header)
        except FrameDamageError as error:
            self._ahead[number] = (None, _raiser(error))
            return
        self._ahead[number] = decode_later(self._pool, self._decoders, header.codec,
                                           decode_indexed_frame, header, payload, number,
                                           entry, self._decoders)


def decode_later(pool: ThreadPoolExecutor | None, decoders: FrameDecoders, codec_id: int,
                 decode: Callable[..., bytes], *args) -> tuple[Future | None,
                                                               Callable[[], bytes]]:
    """(future or None, a call that returns the raw bytes) for `decode(*args)`: started on
    `pool` where the codec allows it (its kernel loaded here first), else run when called."""
    if pool is not None and decoders.prepare(codec_id):
        future = pool.submit(decode, *args)
        return future, future.result
    return None, lambda: decode(*args)


def _raiser(error: BaseException) -> Callable[[], bytes]:
    def raise_it() -> bytes:
        raise error
    return raise_it
