"""ArchiveReader: a read-only file object over the raw content, decoding only needed frames."""

from __future__ import annotations

import io
import os

import pytest
from conftest import ArchiveEditor, NonSeekable, calls_to, text

import vortexfmt
from vortexfmt import ArchiveReader, FrameDamageError, VortexFormatError, spec
from vortexfmt.container import frames as frames_module
from vortexfmt.container import readahead as readahead_module
from vortexfmt.container import structures
from vortexfmt.container.structures import IndexEntry

FRAME = 100
CONTENT = text(FRAME * 7 + 42)  # 8 frames, the last one short
LINES = CONTENT.splitlines(keepends=True)


@pytest.fixture(params=["stored", "zstd", "lzma"])
def blob(request) -> bytes:
    return vortexfmt.compress(CONTENT, codec=request.param, frame_size=FRAME)


@pytest.fixture
def stored() -> bytes:
    return vortexfmt.compress(CONTENT, codec="stored", frame_size=FRAME)


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Frame numbers the seekable reader decodes, in order."""
    seen: list[int] = []
    original = frames_module.decode_indexed_frame

    def counting(header, payload, number, *args):
        seen.append(number)
        return original(header, payload, number, *args)

    # on the calling thread (load_indexed_frame) and on workers (read ahead)
    monkeypatch.setattr(frames_module, "decode_indexed_frame", counting)
    monkeypatch.setattr(readahead_module, "decode_indexed_frame", counting)
    return seen


def open_reader(blob: bytes, seekable: bool = True) -> ArchiveReader:
    return ArchiveReader(io.BytesIO(blob) if seekable else NonSeekable(blob))


both = pytest.mark.parametrize("seekable", [True, False], ids=["seekable", "stream"])


# --- read, readinto, readline, iteration -------------------------------------------------------


@both
def test_read_all(blob, seekable):
    with open_reader(blob, seekable) as reader:
        assert reader.read() == CONTENT
        assert reader.read() == b""


@both
@pytest.mark.parametrize("size", [1, 7, FRAME - 1, FRAME, FRAME + 1, 1000])
def test_read_in_pieces(stored, seekable, size):
    pieces = []
    with open_reader(stored, seekable) as reader:
        while piece := reader.read(size):
            assert len(piece) <= size
            pieces.append(piece)
    assert b"".join(pieces) == CONTENT


@both
def test_read_none_and_negative_read_everything(stored, seekable):
    with open_reader(stored, seekable) as reader:
        assert reader.read(0) == b""
        assert reader.read(5) == CONTENT[:5]
        assert reader.read(None) == CONTENT[5:]
    with open_reader(stored, seekable) as reader:
        assert reader.read(-1) == CONTENT


@both
def test_readinto(stored, seekable):
    buffer = bytearray(FRAME + 30)
    with open_reader(stored, seekable) as reader:
        count = reader.readinto(buffer)
        assert 0 < count <= len(buffer)
        assert buffer[:count] == CONTENT[:count]
        view = memoryview(bytearray(10))
        assert reader.readinto(view) == 10
        assert view.tobytes() == CONTENT[count:count + 10]


@both
def test_readline_and_iteration(stored, seekable):
    with open_reader(stored, seekable) as reader:
        assert reader.readline() == LINES[0]
        assert reader.readline(3) == LINES[1][:3]
        assert list(reader) == [LINES[1][3:]] + LINES[2:]
        assert reader.readline() == b""
    with open_reader(stored, seekable) as reader:
        assert reader.readlines() == LINES


@both
def test_read1_and_peek(stored, seekable):
    with open_reader(stored, seekable) as reader:
        assert CONTENT.startswith(reader.peek(1)[:10])
        chunk = reader.read1(50)
        assert chunk == CONTENT[:len(chunk)] and 0 < len(chunk) <= 50


def test_empty_archive():
    with open_reader(vortexfmt.compress(b"")) as reader:
        assert reader.read() == b""
        assert reader.seek(0, io.SEEK_END) == 0
    with open_reader(vortexfmt.compress(b""), seekable=False) as reader:
        assert reader.read() == b""


def test_header_and_layout():
    with open_reader(vortexfmt.compress(CONTENT, frame_size=FRAME)) as reader:
        assert reader.header.frame_size == FRAME
        assert reader.layout.raw_size == len(CONTENT)
        assert len(reader.layout.frames) == 8
    with open_reader(vortexfmt.compress(CONTENT, frame_size=FRAME), seekable=False) as reader:
        assert reader.header.frame_size == FRAME
        assert reader.layout is None


# --- seek and tell -----------------------------------------------------------------------------


def test_seekable():
    assert open_reader(vortexfmt.compress(b"x")).seekable()
    assert not open_reader(vortexfmt.compress(b"x"), seekable=False).seekable()


def test_seek_set_cur_end_and_tell(blob):
    with open_reader(blob) as reader:
        assert reader.tell() == 0
        assert reader.seek(250) == 250
        assert reader.tell() == 250
        assert reader.read(10) == CONTENT[250:260]
        assert reader.tell() == 260
        assert reader.seek(-60, io.SEEK_CUR) == 200
        assert reader.read(5) == CONTENT[200:205]
        assert reader.seek(-10, io.SEEK_END) == len(CONTENT) - 10
        assert reader.read() == CONTENT[-10:]
        assert reader.tell() == len(CONTENT)
        assert reader.seek(0) == 0
        assert reader.read() == CONTENT


def test_seek_past_the_end_reads_nothing(stored):
    with open_reader(stored) as reader:
        assert reader.seek(len(CONTENT) + 100) == len(CONTENT) + 100
        assert reader.read() == b""
        assert reader.seek(5, io.SEEK_END) == len(CONTENT) + 5
        assert reader.read(3) == b""


def test_seek_before_the_start_is_a_value_error(stored):
    with open_reader(stored) as reader, pytest.raises(ValueError):
        reader.seek(-1)


# Spans that start and end in the same frame, cross one boundary, cross several, hit edges.
SPANS = [(0, 1), (0, FRAME), (FRAME - 1, 2), (FRAME, FRAME), (150, 300), (99, 601),
         (len(CONTENT) - 1, 1), (len(CONTENT) - 42, 42), (0, len(CONTENT)), (333, 10_000)]


@pytest.mark.parametrize("start, size", SPANS)
def test_random_access_matches_slices_of_the_original(blob, start, size):
    with open_reader(blob) as reader:
        reader.seek(start)
        assert reader.read(size) == CONTENT[start:start + size]


def test_random_access_in_any_order(stored):
    with open_reader(stored) as reader:
        for start in (700, 3, 420, 699, 0, 555, 100, 742, 99):
            reader.seek(start)
            assert reader.read(17) == CONTENT[start:start + 17]


def test_a_seek_decodes_only_the_frame_it_lands_in(stored, decodes):
    with open_reader(stored) as reader:
        assert decodes == []  # opening reads headers, index and trailer only
        reader.seek(5 * FRAME + 10)
        assert decodes == []  # seeking decodes nothing
        assert reader.read(20) == CONTENT[5 * FRAME + 10:5 * FRAME + 30]
        assert decodes == [5]
        reader.seek(2 * FRAME + 99)
        assert reader.read(1) == CONTENT[2 * FRAME + 99:2 * FRAME + 100]
        assert decodes == [5, 2]
        reader.seek(-1, io.SEEK_END)
        reader.read()
        assert decodes == [5, 2, 7]


def test_reading_within_a_frame_decodes_it_once(stored, decodes):
    with open_reader(stored) as reader:
        reader.seek(3 * FRAME)
        for _ in range(10):
            reader.read(10)
        assert decodes == [3]


def test_reading_through_decodes_each_frame_once(stored, decodes):
    with open_reader(stored) as reader:
        reader.read()
    assert decodes == list(range(8))


# --- Reading ahead on threads ------------------------------------------------------------------


@pytest.mark.parametrize("threads", [2, 3, 16])
def test_reading_through_with_threads_gives_the_content(blob, threads):
    with ArchiveReader(io.BytesIO(blob), threads=threads) as reader:
        assert reader.read() == CONTENT


def test_reading_through_with_threads_decodes_each_frame_once(stored, decodes):
    with ArchiveReader(io.BytesIO(stored), threads=3) as reader:
        assert reader.read(FRAME // 2) == CONTENT[:FRAME // 2]
        assert sorted(decodes) == [0, 1, 2]  # the frame read and the two after it
        assert reader.read() == CONTENT[FRAME // 2:]
    assert sorted(decodes) == list(range(8))


def test_a_seek_with_threads_decodes_only_the_frame_it_lands_in(stored, decodes):
    with ArchiveReader(io.BytesIO(stored), threads=4) as reader:
        reader.seek(5 * FRAME + 10)
        assert reader.read(20) == CONTENT[5 * FRAME + 10:5 * FRAME + 30]
        reader.seek(2 * FRAME)
        assert reader.read(1) == CONTENT[2 * FRAME:2 * FRAME + 1]
    assert decodes == [5, 2]


def test_a_read_across_one_boundary_after_a_seek_does_not_read_ahead(stored, decodes):
    with ArchiveReader(io.BytesIO(stored), threads=4) as reader:
        reader.seek(5 * FRAME - 10)
        assert reader.read(20) == CONTENT[5 * FRAME - 10:5 * FRAME + 10]
        reader.seek(FRAME - 10)
        assert reader.read(20) == CONTENT[FRAME - 10:FRAME + 10]
    assert decodes == [4, 5, 0, 1]


def test_a_reader_that_failed_to_open_still_closes():
    """Its finalizer calls close(), whose errors Python drops silently outside -X dev."""
    from vortexfmt.container.reader import FrameReader

    reader = FrameReader.__new__(FrameReader)
    with pytest.raises(VortexFormatError):
        reader.__init__(io.BytesIO(b"not an archive" * 10), threads=2)
    reader.close()
    assert reader.closed


@pytest.mark.parametrize("codec", ["stored", "zstd", "cm"])
def test_damage_read_ahead_is_raised_only_at_its_frame(codec):
    blob = vortexfmt.compress(CONTENT, codec=codec, frame_size=FRAME)
    editor = ArchiveEditor(blob)
    entry = vortexfmt.ArchiveReader(io.BytesIO(blob)).layout.frames[4]
    editor.flip(entry.frame_offset + spec.FRAME_HEADER_SIZE + entry.payload_size // 2, 3)
    with ArchiveReader(io.BytesIO(bytes(editor)), threads=8) as reader:
        assert reader.read(4 * FRAME) == CONTENT[:4 * FRAME]  # frame 4 is decoded by now
        with pytest.raises(FrameDamageError, match=r"frame 4 \(raw bytes 400..499\)"):
            reader.read(1)


@pytest.mark.parametrize("codec", ["stored", "zstd", "lzma", "cm"])
@pytest.mark.parametrize("threads", [2, 3, 16])
def test_reading_a_stream_with_threads_gives_the_content(codec, threads):
    blob = vortexfmt.compress(CONTENT, codec=codec, frame_size=FRAME)
    with ArchiveReader(NonSeekable(blob), threads=threads) as reader:
        assert reader.read(150) == CONTENT[:150]
        assert reader.read() == CONTENT[150:]
        assert reader.read() == b""


@pytest.mark.parametrize("threads", [1, 4])
def test_a_stream_read_ahead_stops_for_good_at_damage(threads):
    blob = vortexfmt.compress(CONTENT, codec="zstd", frame_size=FRAME)
    editor = ArchiveEditor(blob)
    entry = vortexfmt.ArchiveReader(io.BytesIO(blob)).layout.frames[3]
    editor.flip(entry.frame_offset + spec.FRAME_HEADER_SIZE + entry.payload_size // 2, 3)
    with ArchiveReader(NonSeekable(bytes(editor)), threads=threads) as reader:
        assert reader.read(3 * FRAME) == CONTENT[:3 * FRAME]  # frames 3.. read ahead by now
        for _ in range(2):  # never the frames after it: the content would have a hole
            with pytest.raises(VortexFormatError,
                               match=r"frame 3 \(raw bytes 300..399\).*checksum mismatch"):
                reader.read(10)


@pytest.mark.parametrize("threads", [1, 4])
def test_a_truncated_stream_gives_its_whole_frames_then_the_error(threads):
    blob = vortexfmt.compress(CONTENT, codec="zstd", frame_size=FRAME)
    cut = vortexfmt.ArchiveReader(io.BytesIO(blob)).layout.frames[5].frame_offset + 10
    with ArchiveReader(NonSeekable(blob[:cut]), threads=threads) as reader:
        assert reader.read(5 * FRAME) == CONTENT[:5 * FRAME]
        with pytest.raises(VortexFormatError, match="truncated|ends|short"):
            reader.read(1)


@pytest.mark.parametrize("threads", [0, -1])
def test_threads_below_one_are_a_value_error(stored, threads):
    with pytest.raises(ValueError, match="threads must be at least 1"):
        ArchiveReader(io.BytesIO(stored), threads=threads)


def test_stream_seeks_forward_by_reading():
    with open_reader(vortexfmt.compress(CONTENT, frame_size=FRAME), seekable=False) as reader:
        assert reader.tell() == 0
        assert reader.seek(250) == 250
        assert reader.read(10) == CONTENT[250:260]
        assert reader.seek(40, io.SEEK_CUR) == 300
        assert reader.tell() == 300
        assert reader.read(5) == CONTENT[300:305]
        assert reader.seek(10_000) == len(CONTENT)
        assert reader.read() == b""


def test_stream_refuses_backward_and_end_relative_seeks():
    with open_reader(vortexfmt.compress(CONTENT, frame_size=FRAME), seekable=False) as reader:
        reader.read(300)
        with pytest.raises(io.UnsupportedOperation):
            reader.seek(100)
        with pytest.raises(io.UnsupportedOperation):
            reader.seek(-1, io.SEEK_CUR)
        with pytest.raises(io.UnsupportedOperation):
            reader.seek(0, io.SEEK_END)
        assert reader.read(5) == CONTENT[300:305]


# --- Closing -----------------------------------------------------------------------------------


def test_context_manager_closes_the_reader(stored):
    with open_reader(stored) as reader:
        assert not reader.closed
    assert reader.closed
    with pytest.raises(ValueError, match="closed"):
        reader.read()
    with pytest.raises(ValueError, match="closed"):
        reader.seek(0)
    reader.close()  # closing twice is harmless


def test_does_not_close_a_handed_file(stored):
    source = io.BytesIO(stored)
    with ArchiveReader(source) as reader:
        reader.read()
    assert not source.closed


def test_closes_a_file_it_opened_by_path(tmp_path, stored, opened_files):
    path = tmp_path / "a.vtx"
    path.write_bytes(stored)
    with vortexfmt.open(path) as reader:
        assert reader.read(5) == CONTENT[:5]
    assert len(opened_files) == 1 and opened_files[0].closed


def test_closes_a_file_it_opened_when_opening_fails(tmp_path, opened_files):
    path = tmp_path / "bad.vtx"
    path.write_bytes(b"not an archive" * 10)
    with pytest.raises(VortexFormatError, match="not a Vortex archive"):
        vortexfmt.open(path)
    assert len(opened_files) == 1 and opened_files[0].closed


# --- Where the archive is, and what else it may hold -------------------------------------------


def test_archive_may_start_anywhere_in_the_file(stored):
    source = io.BytesIO(b"prefix bytes" + stored)
    source.seek(12)
    with ArchiveReader(source) as reader:
        reader.seek(345)
        assert reader.read(100) == CONTENT[345:445]
        reader.seek(0)
        assert reader.read() == CONTENT


def with_skippable(content: bytes, frame_size: int, after_frame: int) -> bytes:
    """Stored frames with a skippable section after frame `after_frame` (-1: before all)."""
    section = structures.build_skippable_header(7, 11) + b"annotations"
    out = bytearray(structures.build_file_header(frame_size))
    if after_frame == -1:
        out += section
    entries = []
    for number, start in enumerate(range(0, len(content), frame_size)):
        raw = content[start:start + frame_size]
        entries.append(IndexEntry(len(out), start, len(raw), len(raw)))
        out += structures.build_frame_header(0, number, len(raw), len(raw), spec.xxh64(raw))
        out += raw
        if number == after_frame:
            out += section
    index_offset = len(out)
    out += structures.build_index(entries)
    out += structures.build_trailer(index_offset, len(content), spec.xxh64(content))
    return bytes(out)


@both
@pytest.mark.parametrize("after_frame", [-1, 0, 3, 7])
def test_skippable_sections_are_skipped(seekable, after_frame):
    blob = with_skippable(CONTENT, FRAME, after_frame)
    with open_reader(blob, seekable) as reader:
        assert reader.read() == CONTENT
    assert vortexfmt.decompress(blob) == CONTENT


@both
def test_a_higher_minor_version_is_read(stored, seekable):
    blob = bytes(ArchiveEditor(stored).set_header("version_minor", 3))
    with open_reader(blob, seekable) as reader:
        assert reader.header.version_minor == 3
        assert reader.read() == CONTENT


# --- Damage ------------------------------------------------------------------------------------


def damaged(stored: bytes, number: int) -> bytes:
    """`stored` with one bit of frame `number`'s payload flipped."""
    editor = ArchiveEditor(stored)
    return bytes(editor.flip(editor.frame_offsets[number] + spec.FRAME_HEADER_SIZE + 5))


def test_damage_is_confined_to_its_frame(stored):
    with open_reader(damaged(stored, 3)) as reader:
        for number in (0, 2, 4, 7):
            reader.seek(number * FRAME)
            assert reader.read(FRAME) == CONTENT[number * FRAME:(number + 1) * FRAME]
        reader.seek(3 * FRAME + 50)
        with pytest.raises(FrameDamageError) as caught:
            reader.read(1)
    error = caught.value
    assert (error.frame_number, error.raw_offset, error.raw_size) == (3, 300, FRAME)
    assert "frame 3 (raw bytes 300..399)" in str(error)


@both
def test_reading_through_damage_raises(stored, seekable):
    with open_reader(damaged(stored, 6), seekable) as reader:
        assert reader.read(6 * FRAME) == CONTENT[:6 * FRAME]
        with pytest.raises(VortexFormatError, match="frame 6 .*checksum mismatch"):
            reader.read()


@both
def test_whole_content_checksum_is_checked_reading_start_to_end(stored, seekable):
    bad = bytes(ArchiveEditor(stored).set_trailer("content_checksum", 12345))
    if seekable:
        with open_reader(bad) as reader:
            reader.seek(10)
            assert reader.read(50) == CONTENT[10:60]  # a part is trusted by frame checksums
        with open_reader(bad) as reader, pytest.raises(VortexFormatError,
                                                      match="whole-content checksum"):
            reader.read()
    else:
        with open_reader(bad, seekable=False) as reader, \
                pytest.raises(VortexFormatError, match="whole-content checksum"):
            reader.read()


def test_opening_checks_structure_not_frames(stored):
    """Opening a seekable archive reads header, index and trailer; frames on demand."""
    editor = ArchiveEditor(stored)
    broken = bytes(editor.flip(editor.frame_offsets[0] + 40))
    reader = open_reader(broken)  # no error yet
    reader.seek(FRAME)
    assert reader.read(FRAME) == CONTENT[FRAME:2 * FRAME]
    reader.close()


@both
def test_not_an_archive(seekable):
    with pytest.raises(VortexFormatError, match="not a Vortex archive"):
        open_reader(b"GIF89a" + bytes(200), seekable)


def test_path_reading(tmp_path, stored):
    path = tmp_path / "x.vtx"
    path.write_bytes(stored)
    with vortexfmt.open(os.fspath(path), "rb") as reader:
        assert reader.read() == CONTENT


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("seekable", [True, False], ids=["file", "stream"])
def test_closing_a_reader_cancels_the_frames_it_decodes_ahead(threads, seekable, monkeypatch):
    from vortexfmt.codecs import FrameDecoders
    from vortexfmt.errors import CodingCancelled

    blob = vortexfmt.compress(text(400_000), codec="cm", frame_size=100_000)
    source = io.BytesIO(blob) if seekable else NonSeekable(blob)
    reader = ArchiveReader(source, threads=threads)
    assert reader.read(10) == text(400_000)[:10]  # frames 1.. are being decoded ahead
    decoders = calls_to(monkeypatch, FrameDecoders, "cancel")
    reader.close()
    assert len(decoders) == 1
    with pytest.raises(CodingCancelled):
        decoders[0].decode(spec.CodecId.STORED, b"x", 1)
