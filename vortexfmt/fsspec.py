"""Vortex as an fsspec compression: importing this module registers ``vortex`` (inferred
from the ``.vtx`` suffix) with fsspec.compression.register_compression, fsspec's own way
to add one, so that

    import vortexfmt.fsspec
    with fsspec.open("s3://bucket/events.bin.vtx", compression="infer") as f:
        f.seek(123_456_789)          # reads the seek index and the one frame it lands in
        record = f.read(586)

reads any file system fsspec reaches. Reading goes through the archive's seek index (the
file object must be seekable, as fsspec's files are): a random read fetches the header,
trailer and index, then only the frame it needs. Writing (modes ``wb``/``xb``) writes an
archive with the defaults of vortexfmt.open (codec auto, 4 MiB frames) and never seeks.
fsspec has no entry-point group for compressions (only ``fsspec.specs``, for file
systems), so this module must be imported once before ``compression="vortex"`` is used.
"""

from __future__ import annotations

import fsspec.compression
import fsspec.utils

from vortexfmt.container.reader import ArchiveReader
from vortexfmt.container.writer import ArchiveWriter

NAME = "vortex"
EXTENSION = "vtx"


def open_archive(infile, mode: str = "rb", **options):
    """fsspec's compression callback: an ArchiveReader (mode ``r``) or ArchiveWriter (``w``,
    ``x``) over `infile`, which fsspec closes after it (this does not close it). `options`
    go to the reader or writer (threads, memory_limit; codec, frame_size)."""
    kind = mode.replace("b", "")
    if kind == "r":
        return ArchiveReader(infile, **options)
    if kind in ("w", "x"):
        return ArchiveWriter(infile, **options)
    raise ValueError(f"Vortex archives open for reading or writing, not mode {mode!r}")


def register() -> None:
    """Register ``vortex`` with fsspec, once (a second call does nothing)."""
    if fsspec.compression.compr.get(NAME) is open_archive:
        return
    fsspec.compression.register_compression(NAME, open_archive, EXTENSION)


register()
