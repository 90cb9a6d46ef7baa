"""Module-level functions: open(), compress(), decompress()."""

from __future__ import annotations

import builtins
import io
import os

from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.container.readahead import check_threads
from vortexfmt.container.reader import ArchiveReader
from vortexfmt.container.writer import (
    DEFAULT_FRAME_SIZE,
    ArchiveWriter,
    check_writer_arguments,
)
from vortexfmt.limits import check_memory_limit


def open(file, mode: str = "rb", *, codec: str = "auto", frame_size: int = DEFAULT_FRAME_SIZE,
         model: object | None = None, device: str | None = None, threads: int = 1,
         encoding: str | None = None, errors: str | None = None,
         newline: str | None = None, memory_limit: int | None = None,
         layout: str | None = None):
    """Open a Vortex archive for reading or writing, like gzip.open().

    `file` is a path or a binary file object (which is not closed on close()). `mode` is
    "rb"/"r", "wb"/"w", "xb"/"x", or with "t" for text (then `encoding`, `errors`,
    `newline` apply). Reading returns an ArchiveReader, writing an ArchiveWriter; `codec`,
    `frame_size` apply to writing; `model` (a model file path, id or ModelFile; default:
    the built-in model when writing, the archive's own model when reading) and `device`
    ("auto", "cpu", "cuda") to the model codecs (mixed, neural) either way. `model` may
    instead be a profile (a `.vxprofile` path or a vortexfmt.profiles.Profile): writing,
    cm primes every frame with it; reading, it decodes the primed frames (default: the
    profile with the archive's id on the profile search path, README "Profiles"; a
    missing or other profile raises ModelMismatchError). `threads` is how
    many frames are encoded, or decoded ahead of a reader, at once (the archive is the same
    for any number; each thread holds a frame and its codec's state). `memory_limit`
    (reading only) bounds the memory one frame may need to decode, in bytes (None:
    vortexfmt.limits.DEFAULT_MEMORY_LIMIT, 1 GiB); a frame that needs more is damage.
    """
    text = "t" in mode
    binary_mode = mode.replace("t", "").replace("b", "")
    if binary_mode not in ("r", "w", "x") or len(mode) != len(set(mode)) or \
            ("t" in mode and "b" in mode):
        raise ValueError(f"invalid mode {mode!r}")
    if not text and (encoding is not None or errors is not None or newline is not None):
        raise ValueError("encoding, errors and newline apply to text mode only")
    # everything that can be refused is refused before a file is opened, created or
    # truncated: a failed open leaves an existing file as it was
    if text:  # encoding and newline, checked as the wrapper will check them
        io.TextIOWrapper(io.BytesIO(), encoding, errors, newline)
    encoder = None
    if binary_mode == "r":
        if layout is not None:
            raise ValueError("layout applies to writing only")
        check_threads(threads)
        check_memory_limit(memory_limit)
    else:
        if memory_limit is not None:
            raise ValueError("memory_limit applies to reading only")
        check_writer_arguments(codec, frame_size, threads)
        # the frame encoder loads the profile or model and checks the layout against the
        # codec: what the writer would otherwise find out after the file was truncated
        encoder = FrameEncoder(codec, model, device, frame_size, threads=threads,
                               layout=layout)
    owns_file = isinstance(file, (str, bytes, os.PathLike))
    fileobj = builtins.open(file, binary_mode + "b") if owns_file else file
    stream = None
    try:
        if binary_mode == "r":
            stream = ArchiveReader(fileobj, model=model, device=device,
                                   close_fileobj=owns_file, threads=threads,
                                   memory_limit=memory_limit)
        else:
            stream = ArchiveWriter(fileobj, frame_size=frame_size, close_fileobj=owns_file,
                                   threads=threads, encoder=encoder)
        if text:
            wrapper = _TextWriter if binary_mode != "r" else io.TextIOWrapper
            return wrapper(stream, encoding, errors, newline)
        return stream
    except BaseException:
        if isinstance(stream, ArchiveWriter):
            stream.abort()  # no index: what it wrote must not pass for an archive
        elif stream is not None:
            stream.close()
        if owns_file:
            fileobj.close()
            if binary_mode == "x":  # the file this call created, and nothing in it
                os.unlink(file)
        raise


class _TextWriter(io.TextIOWrapper):
    """Text over an ArchiveWriter, which a `with` block left by KeyboardInterrupt or
    SystemExit aborts, as it does the writer itself."""

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None and issubclass(kind, (KeyboardInterrupt, SystemExit)):
            self.buffer.abort()  # closes the writer: closing this wrapper does nothing more
        self.close()


def compress(data: bytes, *, codec: str = "auto", frame_size: int = DEFAULT_FRAME_SIZE,
             model: object | None = None, device: str | None = None,
             threads: int = 1, layout: str | None = None) -> bytes:
    """Return a whole archive holding `data` (the same bytes for any `threads`); `layout`
    as for open()."""
    sink = io.BytesIO()
    with ArchiveWriter(sink, codec=codec, frame_size=frame_size, model=model,
                       device=device, threads=threads, layout=layout) as writer:
        writer.write(data)
    return sink.getvalue()


def decompress(blob: bytes, *, model: object | None = None, device: str | None = None,
               threads: int = 1, memory_limit: int | None = None) -> bytes:
    """Return the raw content of a whole archive; raises VortexFormatError on damage (a
    frame that needs more than `memory_limit` bytes to decode, None: 1 GiB, included)."""
    with ArchiveReader(io.BytesIO(blob), model=model, device=device,
                       threads=threads, memory_limit=memory_limit) as reader:
        return reader.read()  # reading to the end checks the whole-content checksum
