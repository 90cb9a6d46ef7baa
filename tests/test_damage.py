"""Damaged archives: damage is found, localized to its frame, reported, and salvageable.

`vortex unpack` exits 1 naming each damaged frame and its raw byte range and leaves no output
file; `--salvage` writes the intact frames and fills damaged ranges with zeros; `vortex verify`
exits 0 or 1.
"""

from __future__ import annotations

import io

import pytest
from conftest import ArchiveEditor, leftovers, text

import vortexfmt
from vortexfmt import VortexFormatError, spec
from vortexfmt.container import structures
from vortexfmt.container.check import check_archive

FRAME = 256
CONTENT = text(FRAME * 7 + 208)  # frames 0..7, the last 208 bytes


def span(number: int) -> tuple[int, int]:
    """First and last raw byte of frame `number`."""
    start = number * FRAME
    return start, min(start + FRAME, len(CONTENT)) - 1


def zeroed(*numbers: int) -> bytes:
    """CONTENT with the raw ranges of frames `numbers` zeroed."""
    out = bytearray(CONTENT)
    for number in numbers:
        first, last = span(number)
        out[first:last + 1] = bytes(last + 1 - first)
    return bytes(out)


def archive(codec: str = "stored") -> bytes:
    return vortexfmt.compress(CONTENT, codec=codec, frame_size=FRAME)


def damage_payload(blob: bytes, *numbers: int) -> bytes:
    """Flip one bit in the middle of each listed frame's payload."""
    editor = ArchiveEditor(blob)
    layout = vortexfmt.ArchiveReader(io.BytesIO(blob)).layout
    for number in numbers:
        entry = layout.frames[number]
        editor.flip(entry.frame_offset + spec.FRAME_HEADER_SIZE + entry.payload_size // 2, 2)
    return bytes(editor)


@pytest.fixture
def write(tmp_path):
    def write(blob: bytes, name: str = "data.vtx"):
        path = tmp_path / name
        path.write_bytes(blob)
        return path
    return write


# --- unpack: damage is named, nothing is written -----------------------------------------------


@pytest.mark.parametrize("codec", ["stored", "zstd", "lzma"])
@pytest.mark.parametrize("number", [0, 3, 7])
def test_flipped_bit_is_localized_to_its_frame(cli, write, tmp_path, codec, number):
    path = write(damage_payload(archive(codec), number))
    result = cli("unpack", path)
    assert result.exit_code == 1
    first, last = span(number)
    assert f"frame {number} (raw bytes {first}..{last})" in result.stderr
    others = [n for n in range(8) if n != number]
    assert not any(f"frame {n} " in result.stderr for n in others), result.stderr
    assert "damaged, nothing written (--salvage recovers the intact frames)" in result.stderr
    assert not (tmp_path / "data").exists()
    assert leftovers(tmp_path) == []


def test_every_damaged_frame_is_reported(cli, write, tmp_path):
    path = write(damage_payload(archive(), 1, 5))
    result = cli("unpack", path, "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert "frame 1 (raw bytes 256..511)" in result.stderr
    assert "frame 5 (raw bytes 1280..1535)" in result.stderr
    assert not (tmp_path / "out").exists()


def test_damage_leaves_an_existing_output_alone(cli, write, tmp_path):
    (tmp_path / "data").write_bytes(b"precious")
    result = cli("unpack", write(damage_payload(archive(), 2)), "-f")
    assert result.exit_code == 1
    assert (tmp_path / "data").read_bytes() == b"precious"
    assert leftovers(tmp_path) == []


def test_damaged_frame_header(cli, write, tmp_path):
    editor = ArchiveEditor(archive())
    path = write(bytes(editor.flip(editor.frame_offsets[4] + 9)))  # its frame number
    result = cli("unpack", path)
    assert result.exit_code == 1
    assert "frame 4 (raw bytes 1024..1279)" in result.stderr
    assert "frame header" in result.stderr and "checksum mismatch" in result.stderr


# --- unpack --salvage --------------------------------------------------------------------------


@pytest.mark.parametrize("codec", ["stored", "zstd", "lzma"])
def test_salvage_zero_fills_the_damaged_frame(cli, write, tmp_path, codec):
    path = write(damage_payload(archive(codec), 3))
    result = cli("unpack", path, "--salvage")
    assert result.exit_code == 1
    assert (tmp_path / "data").read_bytes() == zeroed(3)
    assert "frame 3 (raw bytes 768..1023)" in result.stderr
    assert f"salvaged {len(CONTENT)} bytes to {tmp_path / 'data'}; damaged ranges are " \
        "filled with zeros" in result.stderr
    assert leftovers(tmp_path) == []


def test_salvage_of_several_damaged_frames(cli, write, tmp_path):
    path = write(damage_payload(archive(), 0, 7))
    assert cli("unpack", path, "--salvage", "-o", tmp_path / "out").exit_code == 1
    assert (tmp_path / "out").read_bytes() == zeroed(0, 7)


def test_salvage_of_an_intact_archive_is_a_plain_unpack(cli, write, tmp_path):
    result = cli("unpack", write(archive()), "--salvage")
    assert result.exit_code == 0
    assert (tmp_path / "data").read_bytes() == CONTENT


@pytest.mark.parametrize("cut", [
    spec.FILE_HEADER_SIZE + 5 * (32 + FRAME) + 40,  # inside frame 5's payload
    spec.FILE_HEADER_SIZE + 5 * (32 + FRAME) + 10,  # inside frame 5's header
    spec.FILE_HEADER_SIZE + 5 * (32 + FRAME),  # exactly after frame 4
])
def test_truncated_archive_is_salvaged_up_to_the_last_whole_frame(cli, write, tmp_path, cut):
    path = write(archive()[:cut])
    result = cli("unpack", path)
    assert result.exit_code == 1
    assert "trailer" in result.stderr
    assert not (tmp_path / "data").exists()
    result = cli("unpack", path, "--salvage")
    assert result.exit_code == 1
    assert (tmp_path / "data").read_bytes() == CONTENT[:5 * FRAME]
    assert f"raw bytes {5 * FRAME}.. lost" in result.stderr
    assert "the archive may be truncated" in result.stderr


def test_archive_missing_only_its_trailer_is_salvaged_whole(cli, write, tmp_path):
    path = write(archive()[:-spec.TRAILER_SIZE])
    result = cli("unpack", path, "--salvage")
    assert result.exit_code == 1  # the archive is damaged, even if nothing is lost
    assert (tmp_path / "data").read_bytes() == CONTENT


def test_damaged_index_is_rebuilt_by_scanning(cli, write, tmp_path):
    editor = ArchiveEditor(archive())
    path = write(bytes(editor.flip(editor.index_offset + 20)))
    result = cli("unpack", path)
    assert result.exit_code == 1
    assert "seek index at offset" in result.stderr
    result = cli("unpack", path, "--salvage")
    assert (tmp_path / "data").read_bytes() == CONTENT
    assert result.exit_code == 1


def test_a_lost_frame_is_zero_filled_between_found_ones(cli, write, tmp_path):
    """Frame 2 cut out and the index gone: the scan finds 0, 1, 3..7."""
    blob = archive()
    layout = vortexfmt.ArchiveReader(io.BytesIO(blob)).layout
    frames = layout.frames
    without = blob[:frames[2].frame_offset] + blob[frames[3].frame_offset:layout.trailer.
                                                  index_offset]
    path = write(without)
    result = cli("unpack", path, "--salvage")
    assert result.exit_code == 1
    assert "frame 2 (raw bytes 512..767): frame not found" in result.stderr
    assert (tmp_path / "data").read_bytes() == zeroed(2)


def test_salvage_of_an_unreadable_header_writes_nothing(cli, write, tmp_path):
    path = write(b"\0" * 8 + archive()[8:])
    result = cli("unpack", path, "--salvage")
    assert result.exit_code == 1
    assert "not a Vortex archive" in result.stderr
    assert not (tmp_path / "data").exists()
    assert leftovers(tmp_path) == []


def test_salvage_from_stdin_to_stdout(cli):
    result = cli("unpack", "-", "--salvage", input=damage_payload(archive(), 6))
    assert result.exit_code == 1
    assert result.stdout_bytes == zeroed(6)
    assert "frame 6 (raw bytes 1536..1791)" in result.stderr


# --- verify ------------------------------------------------------------------------------------


def test_verify_exit_status(cli, write):
    assert cli("verify", write(archive(), "good.vtx")).exit_code == 0
    result = cli("verify", write(damage_payload(archive("zstd"), 2), "bad.vtx"))
    assert result.exit_code == 1
    assert "frame 2 (raw bytes 512..767)" in result.stderr


def test_verify_finds_a_wrong_content_checksum(cli, write):
    bad = bytes(ArchiveEditor(archive()).set_trailer("content_checksum", 1))
    result = cli("verify", write(bad))
    assert result.exit_code == 1
    assert "whole-content checksum mismatch" in result.stderr


def test_verify_of_a_truncated_archive(cli, write):
    result = cli("verify", write(archive()[:700]))
    assert result.exit_code == 1
    assert "trailer at offset" in result.stderr


# --- The engine: check_archive -----------------------------------------------------------------


def test_check_report_lists_damage_with_raw_ranges():
    sink = io.BytesIO()
    report = check_archive(io.BytesIO(damage_payload(archive(), 2, 4)), sink)
    assert not report.ok
    assert [(d.frame_number, d.raw_offset, d.raw_size) for d in report.damage] == \
        [(2, 512, 256), (4, 1024, 256)]
    assert sink.getvalue() == CONTENT[:512]  # nothing after the first damaged frame
    assert report.raw_written == 512


@pytest.mark.parametrize("codec", ["zstd", "cm"])
@pytest.mark.parametrize("salvage", [False, True])
@pytest.mark.parametrize("threads", [2, 3, 9])
def test_check_reports_the_same_with_frames_decoded_on_threads(codec, salvage, threads):
    blob = damage_payload(archive(codec), 2, 3, 6)

    def check(threads: int):
        sink = io.BytesIO()
        report = check_archive(io.BytesIO(blob), sink, salvage=salvage, threads=threads)
        return report.damage, report.raw_written, sink.getvalue()

    assert check(threads) == check(1)


def test_check_report_of_a_salvage():
    sink = io.BytesIO()
    report = check_archive(io.BytesIO(damage_payload(archive(), 2)), sink, salvage=True)
    assert [d.frame_number for d in report.damage] == [2]
    assert sink.getvalue() == zeroed(2)
    assert report.raw_written == len(CONTENT)


def test_check_without_salvage_raises_on_structural_damage():
    with pytest.raises(VortexFormatError, match="trailer"):
        check_archive(io.BytesIO(archive()[:-1]))


def test_salvage_ignores_frame_numbers_that_cannot_be_true():
    """A frame header claiming frame 10**8 near the start must not make salvage write 10**8
    frames of zeros: there is no room before it for the frames it says precede it."""
    editor = ArchiveEditor(archive())
    raw = CONTENT[:FRAME]
    editor.data[52:84] = structures.build_frame_header(0, 10**8, FRAME, FRAME, spec.xxh64(raw))
    blob = bytes(editor)[:-1]  # and no usable trailer
    sink = io.BytesIO()
    report = check_archive(io.BytesIO(blob), sink, salvage=True)
    assert sink.getvalue() == zeroed(0)
    assert report.damage[0].frame_number == 0
