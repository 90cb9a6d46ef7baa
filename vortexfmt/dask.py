"""Packing and unpacking on a Dask cluster (dask.distributed), and Zarr arrays written with
Vortex's codec as dask arrays.

    from distributed import Client
    from vortexfmt.dask import pack_files, unpack_files, read_zarr

    client = Client("tcp://scheduler:8786")
    pack_files(["a.bin", "b.bin"], ["a.bin.vtx", "b.bin.vtx"], client, codec="cm")
    unpack_files(["a.bin.vtx"], ["a.out"], client)
    array = read_zarr("signal.zarr")          # a dask.array, decoded chunk by chunk

Paths are read and written by the workers and by this process, so every worker must see
them at the same path (a shared file system, as with dask's own file readers).

Files are distributed whole (a worker packs or unpacks one file into its output) when
there are at least as many files as worker threads; otherwise each file is cut into its
frames: workers read and encode (or decode) one frame each, and this process writes the
archive (or the content) in order, keeping two frames per worker thread in flight (so
memory and the scheduler hold a few frames whatever the file's size). Packing frame by
frame, the workers use the frame
encoder the archive writer uses and this process assembles their payloads with the
archive writer itself, so the archive is byte for byte what ``vortex pack`` writes with
the same options. Each frame a worker encoded is checked against the bytes this
process read (XXH64): a file that changes meanwhile is an error, never a wrong archive.
"""

from __future__ import annotations

import os
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import xxhash

from vortexfmt.codecs import FrameDecoders
from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.container.frames import load_indexed_frame
from vortexfmt.container.layout import read_layout
from vortexfmt.container.reader import ArchiveReader
from vortexfmt.container.writer import DEFAULT_FRAME_SIZE, ArchiveWriter, check_writer_arguments
from vortexfmt.errors import VortexError, VortexFormatError

COPY_CHUNK = 1 << 20
SPLITS = ("auto", "files", "frames")


@dataclass(frozen=True)
class FileResult:
    """What became of one file: sizes in bytes, or the exception that stopped it."""

    input: str
    output: str
    raw_size: int = 0
    packed_size: int = 0
    error: BaseException | None = None


def pack_files(inputs: Sequence[str], outputs: Sequence[str] | None = None, client=None, *,
               split: str = "auto", errors: str = "raise", codec: str = "auto",
               level: int | None = None, frame_size: int = DEFAULT_FRAME_SIZE,
               layout: str | None = None) -> list[FileResult]:
    """Pack each input file into its output archive (default: INPUT.vtx) on the cluster.

    `client` is a distributed.Client, a scheduler address, or None for the current client.
    `split`: ``files`` (one task a file), ``frames`` (one task a frame) or ``auto`` (files
    when there are at least as many as worker threads). `codec`, `level`, `frame_size`
    and `layout` are ArchiveWriter's. Outputs appear only when complete (written beside
    the target and renamed). With `errors` ``raise`` the first failure is raised (in input
    order) once every file is done; with ``return`` it is the `error` of that file's
    result.
    """
    check_writer_arguments(codec, frame_size)
    # ValueError (LayoutError for a layout string) for options no worker could use
    FrameEncoder(codec, level=level, layout=layout)
    options = {"codec": codec, "level": level, "frame_size": frame_size, "layout": layout}
    return _run(_pack_whole, _pack_by_frames, inputs, outputs, client, split, errors,
                options, lambda path: path + ".vtx")


def unpack_files(inputs: Sequence[str], outputs: Sequence[str] | None = None, client=None,
                 *, split: str = "auto", errors: str = "raise",
                 memory_limit: int | None = None) -> list[FileResult]:
    """Unpack each input archive into its output file (default: the input without .vtx)
    on the cluster, checking every frame checksum and the whole-content checksum; damage
    raises VortexFormatError and leaves no output. Arguments as pack_files'."""
    def default(path: str) -> str:
        if not path.endswith(".vtx") or len(os.path.basename(path)) <= 4:
            raise ValueError(f"cannot name the output of {path} (no .vtx suffix)")
        return path[:-4]

    return _run(_unpack_whole, _unpack_by_frames, inputs, outputs, client, split, errors,
                {"memory_limit": memory_limit}, default)


def read_zarr(store, component: str | None = None):
    """A Zarr array (written with Vortex's codec or any other) as a dask.array whose chunks
    are the array's chunks, each decoded on the worker that computes it."""
    import dask.array

    return dask.array.from_zarr(store, component=component)


# --- Running jobs --------------------------------------------------------------------------


def _check_outputs(inputs: list[str], outputs: list[str]) -> None:
    """Refuse, before any task runs, an output that is one of the inputs (by any name: it
    would be overwritten while read) or the output of another input too."""
    sources = {os.path.realpath(path): path for path in inputs}
    targets: dict[str, str] = {}
    for target in outputs:
        key = os.path.realpath(target)
        source = sources.get(key) or next(
            (path for path in inputs if os.path.exists(path) and os.path.exists(target)
             and os.path.samefile(path, target)), None)
        if source is not None:
            raise ValueError(f"{target}: is the input file {source}; it would be "
                             "overwritten, choose another output")
        if key in targets:
            raise ValueError(f"{target}: is the output of two inputs")
        targets[key] = target


def _run(whole, by_frames, inputs, outputs, client, split, errors, options, default_output):
    if split not in SPLITS:
        raise ValueError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    if errors not in ("raise", "return"):
        raise ValueError(f"errors must be 'raise' or 'return', got {errors!r}")
    inputs = [os.fspath(path) for path in inputs]
    outputs = [default_output(path) for path in inputs] if outputs is None else \
        [os.fspath(path) for path in outputs]
    if len(outputs) != len(inputs):
        raise ValueError(f"{len(inputs)} inputs but {len(outputs)} outputs")
    _check_outputs(inputs, outputs)
    client = _client(client)
    if split == "auto":
        split = "files" if len(inputs) >= sum(client.nthreads().values()) else "frames"
    if split == "files":
        futures = [client.submit(whole, source, target, options, pure=False)
                   for source, target in zip(inputs, outputs, strict=True)]
        results = []
        for source, target, future in zip(inputs, outputs, futures, strict=True):
            try:
                results.append(FileResult(source, target, *future.result()))
            except Exception as error:  # noqa: BLE001 (reported per file)
                results.append(FileResult(source, target, error=error))
    else:
        results = []
        for source, target in zip(inputs, outputs, strict=True):
            try:
                results.append(FileResult(source, target,
                                          *by_frames(client, source, target, options)))
            except Exception as error:  # noqa: BLE001 (reported per file)
                results.append(FileResult(source, target, error=error))
    if errors == "raise":
        for result in results:
            if result.error is not None:
                raise result.error
    return results


def _client(client):
    from distributed import Client, get_client

    if client is None:
        return get_client()
    if isinstance(client, str):
        return Client(client)
    return client


class _atomic_output:
    """A file that appears at `path` only when written whole (renamed on success)."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __enter__(self):
        directory = os.path.dirname(os.path.abspath(self.path))
        handle, self.temporary = tempfile.mkstemp(prefix=".vortex-", suffix=".part",
                                                  dir=directory)
        self.file = os.fdopen(handle, "wb")
        return self.file

    def __exit__(self, kind, value, traceback) -> None:
        try:
            self.file.close()
            if kind is None:
                os.replace(self.temporary, self.path)
        finally:
            if os.path.exists(self.temporary):
                os.unlink(self.temporary)


# --- Whole files (run on workers) ----------------------------------------------------------


def _pack_whole(source: str, target: str, options: dict) -> tuple[int, int]:
    with open(source, "rb") as raw, _atomic_output(target) as sink, \
            ArchiveWriter(sink, **options) as writer:
        while block := raw.read(COPY_CHUNK):
            writer.write(block)
    return writer.raw_size, writer.packed_size


def _unpack_whole(source: str, target: str, options: dict) -> tuple[int, int]:
    with open(source, "rb") as archive, _atomic_output(target) as sink, \
            ArchiveReader(archive, **options) as reader:
        size = 0
        while block := reader.read(COPY_CHUNK):  # to the end: the content checksum too
            sink.write(block)
            size += len(block)
        packed = reader.layout.size
    return size, packed


# --- One file frame by frame ---------------------------------------------------------------


@lru_cache(maxsize=8)
def _frame_encoder(codec: str, level: int | None, frame_size: int,
                   layout: str | None) -> FrameEncoder:
    """The writer's encoder for these options, kept by each worker process."""
    return FrameEncoder(codec, frame_size=frame_size, level=level, layout=layout)


def _encode_frame(source: str, offset: int, options: dict) -> tuple[int, bytes, int]:
    """(codec id, payload, XXH64 of the raw bytes) of the frame at `offset` (a worker)."""
    with open(source, "rb") as raw:
        raw.seek(offset)
        frame = raw.read(options["frame_size"])
    codec_id, payload = _frame_encoder(options["codec"], options["level"],
                                       options["frame_size"], options["layout"]).encode(frame)
    return codec_id, payload, xxhash.xxh64_intdigest(frame)


class _InOrder:
    """Results of tasks in order, with at most `window` of them submitted and not yet
    taken: workers stay busy while neither the scheduler nor the workers' memory hold
    more than `window` frames, however many the file has."""

    def __init__(self, client, function, arguments: list[tuple], window: int) -> None:
        self._client = client
        self._function = function
        self._pending = iter(arguments)
        self._futures: deque = deque()
        for _ in range(max(1, window)):
            self._submit()

    def _submit(self) -> None:
        arguments = next(self._pending, None)
        if arguments is not None:
            self._futures.append(self._client.submit(self._function, *arguments, pure=False))

    def next(self):
        """The next task's result (its exception, raised)."""
        future = self._futures.popleft()
        self._submit()
        return future.result()

    def cancel(self) -> None:
        self._pending = iter(())
        while self._futures:
            self._futures.popleft().cancel()


def _window(client) -> int:
    """Frames in flight: two per worker thread, so that none waits for its next frame."""
    return 2 * max(1, sum(client.nthreads().values()))


class _EncodedFrames:
    """The archive writer's frame encoder, for frames encoded on workers: hands over their
    results in order, checking each against the bytes the writer was given. `results`
    has next() (the next frame's (codec id, payload, XXH64 of its raw bytes)) and
    cancel()."""

    def __init__(self, local: FrameEncoder, results, source: str) -> None:
        self.model_id = local.model_id
        self.version_minor = local.version_minor
        self.thread_safe = False
        self._results = results
        self._number = 0
        self._source = source

    def encode(self, raw: bytes) -> tuple[int, bytes]:
        codec_id, payload, checksum = self._results.next()
        if checksum != xxhash.xxh64_intdigest(raw):
            raise VortexError(f"{self._source}: frame {self._number} changed while it was "
                              "being packed")
        self._number += 1
        return codec_id, payload

    def cancel(self) -> None:
        self._results.cancel()

    def close(self) -> None:
        self.cancel()


def _pack_by_frames(client, source: str, target: str, options: dict) -> tuple[int, int]:
    frame_size = options["frame_size"]
    size = os.path.getsize(source)
    results = _InOrder(client, _encode_frame, [(source, offset, options) for offset in
                                               range(0, size, frame_size)], _window(client))
    encoder = _EncodedFrames(FrameEncoder(options["codec"], frame_size=frame_size,
                                          level=options["level"], layout=options["layout"]),
                             results, source)
    try:
        with open(source, "rb") as raw, _atomic_output(target) as sink, \
                ArchiveWriter(sink, frame_size=frame_size, encoder=encoder) as writer:
            while block := raw.read(COPY_CHUNK):
                writer.write(block)
    finally:
        results.cancel()
    if writer.raw_size != size:
        raise VortexError(f"{source}: {writer.raw_size} bytes read, {size} expected (the "
                          "file changed while it was being packed)")
    return writer.raw_size, writer.packed_size


def _decode_frame(source: str, base: int, number: int, entry, file_header,
                  options: dict) -> bytes:
    """The raw bytes of frame `number`, read at its index entry and checked against its
    checksum (a worker: it reads that frame's header and payload, nothing else)."""
    decoders = FrameDecoders(file_header.model_id, memory_limit=options["memory_limit"])
    with open(source, "rb") as archive:
        return load_indexed_frame(archive, base, number, entry, file_header, decoders)


def _unpack_by_frames(client, source: str, target: str, options: dict) -> tuple[int, int]:
    with open(source, "rb") as archive:
        layout = read_layout(archive)
    results = _InOrder(client, _decode_frame,
                       [(source, layout.base, number, entry, layout.header, options)
                        for number, entry in enumerate(layout.frames)], _window(client))
    content = xxhash.xxh64()
    try:
        with _atomic_output(target) as sink:
            for _ in layout.frames:
                frame = results.next()
                content.update(frame)
                sink.write(frame)
            if content.intdigest() != layout.trailer.content_checksum:
                raise VortexFormatError("whole-content checksum mismatch: the archive is "
                                        "damaged")
    finally:
        results.cancel()
    return layout.raw_size, layout.size
