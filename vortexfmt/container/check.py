"""Decode a whole archive frame by frame, reporting every damaged frame instead of stopping
at the first: the engine of `vortex unpack`, `vortex unpack --salvage` and `vortex verify`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import xxhash

from vortexfmt.codecs import FrameDecoders
from vortexfmt.container.frames import describe
from vortexfmt.container.layout import Layout, read_layout, rebuild_layout
from vortexfmt.container.readahead import FrameReadAhead
from vortexfmt.container.reader import file_path
from vortexfmt.container.structures import IndexEntry
from vortexfmt.errors import (
    FrameDamageError,
    FrameMemoryError,
    MissingExtraError,
    ModelMismatchError,
)
from vortexfmt.limits import check_memory_limit


@dataclass(frozen=True)
class Damage:
    """A raw byte range that could not be recovered, and why."""

    frame_number: int | None
    raw_offset: int
    raw_size: int | None  # None: everything from raw_offset on (a truncated archive)
    reason: str
    #: The frame may be whole: it was refused for needing more memory than the limit.
    over_memory_limit: bool = False

    def describe(self) -> str:
        if self.raw_size is None:
            return f"raw bytes {self.raw_offset}.. lost: {self.reason}"
        return self.reason


@dataclass
class CheckReport:
    layout: Layout
    raw_written: int = 0
    damage: list[Damage] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damage


def check_archive(fileobj, sink=None, *, model: object | None = None,
                  device: str | None = None, salvage: bool = False,
                  progress: Callable[[int], None] | None = None,
                  threads: int = 1, memory_limit: int | None = None) -> CheckReport:
    """Decode every frame of the seekable archive `fileobj`, writing raw content to `sink`.

    Without `salvage`, a damaged seek index or trailer raises VortexFormatError, and after
    the first damaged frame nothing more is written to `sink` (decoding goes on, so that
    every damaged frame is reported). With `salvage`, the frame table is rebuilt by scanning
    when the index is unusable, and damaged or missing frames are written as zeros. With
    `threads` > 1, that many frames are decoded at once (FrameReadAhead). Without
    `salvage`, a frame that needs a profile or model that is missing or not the archive's
    raises ModelMismatchError (a FrameDamageError naming the frame) at once, and one that
    needs an extra that is not installed (torch) MissingExtraError. A frame that needs
    more than `memory_limit` bytes to decode (None: vortexfmt.limits.DEFAULT_MEMORY_LIMIT)
    is reported as damage, and not decoded.
    """
    memory_limit = check_memory_limit(memory_limit)
    base = fileobj.tell()
    layout = rebuild_layout(fileobj) if salvage else read_layout(fileobj)
    fileobj.seek(base)
    report = CheckReport(layout)
    decoders = FrameDecoders(layout.header.model_id, model, device, memory_limit,
                             archive_path=file_path(fileobj))
    content_hash = xxhash.xxh64()
    frame_size = layout.header.frame_size
    by_number = _frames_by_number(layout)
    count = max(by_number, default=-1) + 1
    with FrameReadAhead(fileobj, layout.base, by_number, layout.header, decoders,
                        threads) as frames:
        _check_frames(report, frames, by_number, count, sink, salvage, progress,
                      content_hash)
    if layout.trailer is None:
        end = count * frame_size if not by_number else \
            by_number[count - 1].raw_offset + by_number[count - 1].raw_size
        report.damage.append(Damage(None, end, None, "seek index or trailer missing or "
                                    "damaged: the archive may be truncated"))
    elif report.ok and content_hash.intdigest() != layout.trailer.content_checksum:
        report.damage.append(Damage(None, 0, layout.raw_size,
                                    "whole-content checksum mismatch"))
    return report


def _check_frames(report: CheckReport, frames: FrameReadAhead,
                  by_number: dict[int, IndexEntry], count: int, sink, salvage: bool,
                  progress: Callable[[int], None] | None, content_hash) -> None:
    """The frame loop of check_archive."""
    frame_size = report.layout.header.frame_size
    writing = sink is not None
    for number in range(count):
        entry = by_number.get(number)
        if entry is None:
            raw = None
            size = frame_size
            report.damage.append(Damage(number, number * frame_size, size, describe(
                number, number * frame_size, size) + ": frame not found"))
        else:
            size = entry.raw_size
            try:
                raw = frames.frame(number)
            except FrameDamageError as error:
                if isinstance(error, (ModelMismatchError, MissingExtraError)) and not salvage:
                    raise  # the profile, model or an extra is missing or another: not damage
                raw = None
                report.damage.append(Damage(number, entry.raw_offset, size, str(error),
                                            isinstance(error, FrameMemoryError)))
        if raw is None:
            if salvage:
                raw = bytes(size)
            else:
                writing = False
        if raw is not None:
            content_hash.update(raw)
            if writing:
                sink.write(raw)
                report.raw_written += len(raw)
        if progress is not None:
            progress(size)


def _frames_by_number(layout: Layout) -> dict[int, IndexEntry]:
    frame_size = layout.header.frame_size
    if layout.trailer is not None:
        return dict(enumerate(layout.frames))
    return {entry.raw_offset // frame_size: entry for entry in layout.frames}

