"""Property tests: every archive round-trips; every mutant is rejected cleanly.

A mutated archive - truncated anywhere, bit-flipped, overwritten, or with a size field set to
an absurd value (checksum resealed or not) - must make readers raise VortexFormatError and
nothing else, must never hang, and must never decode to anything but the original content.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct

import pytest
from conftest import CODECS, ArchiveEditor, NonSeekable
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import vortexfmt
from vortexfmt import ArchiveWriter, VortexFormatError
from vortexfmt.container.check import check_archive

#: VORTEX_FUZZ_EXAMPLES=5000 for a longer hunt; the default keeps this file to a few seconds.
EXAMPLES = int(os.environ.get("VORTEX_FUZZ_EXAMPLES", "200"))
FUZZ = settings(deadline=None, max_examples=EXAMPLES,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
SECONDS_PER_EXAMPLE = 10


@contextlib.contextmanager
def time_limit(seconds: int = SECONDS_PER_EXAMPLE):
    """Fail instead of hanging (where SIGALRM exists)."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def expire(*_):
        raise AssertionError(f"took longer than {seconds} s: a hang?")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- Strategies --------------------------------------------------------------------------------

repetitive = st.builds(lambda unit, count: unit * count,
                       st.binary(min_size=1, max_size=8), st.integers(0, 100))
contents = st.one_of(st.binary(max_size=1500), repetitive)
codecs = st.sampled_from(CODECS)


@st.composite
def frame_sizes(draw, content_size: int) -> int:
    """A frame size giving at most about 64 frames, sometimes a tiny one."""
    smallest = max(1, content_size // 64)
    return draw(st.one_of(st.integers(smallest, smallest + 8), st.integers(smallest, 600)))


@st.composite
def archives(draw) -> tuple[bytes, bytes]:
    """(content, archive) of modest size."""
    content = draw(st.one_of(st.binary(max_size=400), repetitive))
    frame_size = draw(frame_sizes(len(content)))
    return content, vortexfmt.compress(content, codec=draw(codecs), frame_size=frame_size)


# --- Round trips -------------------------------------------------------------------------------


@FUZZ
@given(content=contents, codec=codecs, data=st.data())
def test_round_trip(content, codec, data):
    frame_size = data.draw(frame_sizes(len(content)))
    blob = vortexfmt.compress(content, codec=codec, frame_size=frame_size)
    assert vortexfmt.decompress(blob) == content
    with vortexfmt.open(NonSeekable(blob, chunk=data.draw(st.integers(1, 300)))) as reader:
        assert reader.read() == content


@FUZZ
@given(content=contents, data=st.data())
def test_writes_cut_anywhere_make_the_same_archive(content, data):
    frame_size = data.draw(frame_sizes(len(content)))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(content)), max_size=8)))
    sink = io.BytesIO()
    with ArchiveWriter(sink, codec="stored", frame_size=frame_size) as writer:
        for start, end in zip([0, *cuts], [*cuts, len(content)], strict=True):
            writer.write(content[start:end])
    assert sink.getvalue() == vortexfmt.compress(content, codec="stored", frame_size=frame_size)


@FUZZ
@given(archive=archives(), data=st.data())
def test_random_access(archive, data):
    content, blob = archive
    with vortexfmt.open(io.BytesIO(blob)) as reader:
        for _ in range(3):
            start = data.draw(st.integers(0, len(content) + 5))
            size = data.draw(st.integers(0, len(content) + 5))
            reader.seek(start)
            assert reader.read(size) == content[start:start + size]
            assert reader.tell() == min(start + size, max(start, len(content)))


# --- Mutants -----------------------------------------------------------------------------------


def assert_rejected_cleanly(mutant: bytes, content: bytes) -> None:
    """Every reader either raises VortexFormatError or returns exactly `content`."""
    with time_limit():
        try:
            result = vortexfmt.decompress(mutant)
        except VortexFormatError:
            pass
        else:
            assert result == content

        try:
            with vortexfmt.open(io.BytesIO(mutant)) as reader:
                result = reader.read()
        except VortexFormatError:
            pass
        else:
            assert result == content

        try:
            with vortexfmt.open(NonSeekable(mutant)) as reader:
                result = reader.read()
        except VortexFormatError:
            pass
        else:
            assert result == content

        for salvage in (False, True):
            sink = io.BytesIO()
            try:
                report = check_archive(io.BytesIO(mutant), sink, salvage=salvage)
            except VortexFormatError:
                continue
            if report.ok:
                assert sink.getvalue() == content


@FUZZ
@given(archive=archives(), data=st.data())
def test_truncation_anywhere(archive, data):
    content, blob = archive
    cut = data.draw(st.integers(0, len(blob) - 1))
    assert_rejected_cleanly(blob[:cut], content)
    with pytest.raises(VortexFormatError):
        vortexfmt.decompress(blob[:cut])  # a cut archive never passes for whole


@FUZZ
@given(archive=archives(), data=st.data())
def test_bit_flips(archive, data):
    content, blob = archive
    mutant = bytearray(blob)
    for _ in range(data.draw(st.integers(1, 3))):
        mutant[data.draw(st.integers(0, len(blob) - 1))] ^= 1 << data.draw(st.integers(0, 7))
    assume(bytes(mutant) != blob)
    assert_rejected_cleanly(bytes(mutant), content)


@FUZZ
@given(archive=archives(), data=st.data())
def test_byte_overwrites(archive, data):
    content, blob = archive
    mutant = bytearray(blob)
    start = data.draw(st.integers(0, len(blob) - 1))
    replacement = data.draw(st.binary(min_size=1, max_size=16))
    mutant[start:start + len(replacement)] = replacement
    assert_rejected_cleanly(bytes(mutant[:len(blob) + 16]), content)


def absurd_values(fmt: str, frame_size: int, archive_size: int) -> st.SearchStrategy[int]:
    top = (1 << (8 * struct.calcsize("<" + fmt))) - 1
    candidates = {0, 1, top, top >> 1, top - 1, frame_size - 1, frame_size + 1, archive_size,
                  archive_size + 1, 1 << 28, (1 << 28) + 1, 1 << 31}
    return st.one_of(st.sampled_from(sorted(v & top for v in candidates)), st.integers(0, top))


@FUZZ
@given(archive=archives(), data=st.data())
def test_absurd_field_values(archive, data):
    """Any field of any structure set to an extreme, with its checksum resealed or not."""
    content, blob = archive
    editor = ArchiveEditor(blob)
    frame_size = struct.unpack_from("<I", blob, 12)[0]
    seal = data.draw(st.booleans())
    targets = [("header", None, name) for name in editor.FILE_HEADER_FIELDS]
    targets += [("trailer", None, name) for name in editor.TRAILER_FIELDS]
    targets += [("index", None, name) for name in editor.INDEX_FIELDS]
    for number in range(editor.frame_count):
        targets += [("frame", number, name) for name in editor.FRAME_HEADER_FIELDS]
        targets += [("entry", number, name) for name in editor.INDEX_ENTRY_FIELDS]
    for _ in range(data.draw(st.integers(1, 2))):
        kind, number, name = data.draw(st.sampled_from(targets))
        table = {"header": editor.FILE_HEADER_FIELDS, "trailer": editor.TRAILER_FIELDS,
                 "index": editor.INDEX_FIELDS, "frame": editor.FRAME_HEADER_FIELDS,
                 "entry": editor.INDEX_ENTRY_FIELDS}[kind]
        value = data.draw(absurd_values(table[name][1], frame_size, len(blob)))
        if number is None:
            getattr(editor, f"set_{kind}")(name, value, seal=seal)
        else:
            getattr(editor, f"set_{kind}")(number, name, value, seal=seal)
    assert_rejected_cleanly(bytes(editor), content)
