"""The byte layout (spec/__init__.py, FORMAT.md): sizes, field positions, checksums, codecs."""

from __future__ import annotations

import io
import lzma
import struct
import subprocess
import sys

import pytest
import zstandard
from conftest import HANG_GUARD_S, ArchiveEditor, noise, text

import vortexfmt
from vortexfmt import VortexFormatError, spec
from vortexfmt.codecs import codec_name
from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.codecs.lzma import LzmaCodec, lzma_dict_size
from vortexfmt.codecs.stored import StoredCodec
from vortexfmt.codecs.zstd import ZstdCodec
from vortexfmt.container import structures
from vortexfmt.container.layout import read_layout
from vortexfmt.container.structures import IndexEntry

# --- Constants -------------------------------------------------------------------------------


def test_structure_sizes():
    assert spec.FILE_HEADER_SIZE == 52
    assert spec.FRAME_HEADER_SIZE == 32
    assert spec.SKIPPABLE_HEADER_SIZE == 16
    assert spec.INDEX_ENTRY_SIZE == 24
    assert spec.index_size(0) == spec.INDEX_FIXED_SIZE == 12
    assert spec.index_size(3) == 12 + 3 * 24
    assert spec.TRAILER_SIZE == 32


def test_magic_numbers():
    assert spec.FILE_MAGIC == b"\x89VTX\r\n\x1a\n"
    four = [spec.FRAME_MAGIC, spec.SKIPPABLE_MAGIC, spec.INDEX_MAGIC, spec.TRAILER_MAGIC]
    assert four == [b"\x8fVFR", b"\x8fVSK", b"\x8fVIX", b"\x8fVTR"]
    assert len(set(four)) == 4


def test_version_and_limits():
    assert (spec.FORMAT_MAJOR, spec.FORMAT_MINOR) == (1, 3)
    assert spec.MODEL_ID_SIZE == 32
    assert (spec.MIN_FRAME_SIZE, spec.MAX_FRAME_SIZE) == (1, 1 << 28)


def test_codec_ids():
    assert (spec.CodecId.STORED, spec.CodecId.ZSTD, spec.CodecId.NEURAL, spec.CodecId.LZMA) \
        == (0, 1, 2, 3)
    assert [codec_name(i) for i in range(4)] == ["stored", "zstd", "neural", "lzma"]
    assert codec_name(200) == "codec-200"


@pytest.mark.parametrize("raw_size, limit", [(0, 1024), (1, 1025), (8, 1033),
                                             (1 << 20, (1 << 20) + (1 << 17) + 1024)])
def test_max_payload_size(raw_size, limit):
    assert spec.max_payload_size(raw_size) == limit


def test_checksums_are_xxhash_with_seed_zero():
    assert spec.xxh32(b"") == 0x02CC5D05
    assert spec.xxh64(b"") == 0xEF46DB3751D8E999
    assert spec.xxh32(b"abc") == 0x32D153FF
    assert spec.xxh64(b"abc") == 0x44BC2CF5AD770999


# --- File header -----------------------------------------------------------------------------


def test_file_header_layout():
    model_id = bytes(range(32))
    data = structures.build_file_header(4096, model_id)
    assert len(data) == spec.FILE_HEADER_SIZE
    assert data[:8] == spec.FILE_MAGIC
    assert struct.unpack_from("<BBHI", data, 8) == (1, 0, 0, 4096)
    assert data[16:48] == model_id
    assert struct.unpack_from("<I", data, 48) == (spec.xxh32(data[:48]),)


def test_file_header_round_trip():
    header = structures.parse_file_header(structures.build_file_header(64))
    assert (header.version_major, header.version_minor, header.flags, header.frame_size) == \
        (1, 0, 0, 64)
    assert header.model_id == bytes(32)
    assert not header.needs_model
    assert structures.parse_file_header(
        structures.build_file_header(64, b"\x01" * 32)).needs_model


@pytest.mark.parametrize("change, message", [
    (lambda d: b"PK\x03\x04" + d[4:], "not a Vortex archive"),
    (lambda d: d[:20] + bytes([d[20] ^ 1]) + d[21:], "file header at offset 0: checksum mismatch"),
    (lambda d: d[:8] + b"\x02" + d[9:], "unsupported format version 2.0"),
    (lambda d: d[:8] + b"\x00" + d[9:], "unsupported format version 0.0"),
    (lambda d: d[:30], "file header at offset 0: truncated (30 of 52 bytes)"),
])
def test_file_header_rejects(change, message):
    with pytest.raises(VortexFormatError) as caught:
        structures.parse_file_header(change(structures.build_file_header(64)))
    assert message in str(caught.value)


def test_file_header_accepts_a_higher_minor_version():
    data = bytearray(structures.build_file_header(64))
    data[9] = 7
    struct.pack_into("<I", data, 48, spec.xxh32(bytes(data[:48])))
    assert structures.parse_file_header(bytes(data)).version_minor == 7


# --- Frame header ----------------------------------------------------------------------------


def test_frame_header_layout():
    data = structures.build_frame_header(spec.CodecId.LZMA, 7, 100, 60, 0x1122334455667788)
    assert len(data) == spec.FRAME_HEADER_SIZE
    assert data[:4] == spec.FRAME_MAGIC
    assert struct.unpack_from("<BBHIIIQ", data, 4) == (3, 0, 0, 7, 100, 60, 0x1122334455667788)
    assert struct.unpack_from("<I", data, 28) == (spec.xxh32(data[:28]),)


def test_frame_header_round_trip():
    data = structures.build_frame_header(spec.CodecId.ZSTD, 2, 64, 30, 99)
    header = structures.parse_frame_header(data, 500, frame_size=64)
    assert (header.codec, header.frame_number, header.raw_size, header.payload_size,
            header.raw_checksum) == (1, 2, 64, 30, 99)


def test_frame_header_sizes_are_checked_against_the_frame_size():
    data = structures.build_frame_header(0, 0, 65, 65, 0)
    with pytest.raises(VortexFormatError, match="raw size 65 exceeds the frame size 64"):
        structures.parse_frame_header(data, 52, frame_size=64)
    data = structures.build_frame_header(0, 0, 64, spec.max_payload_size(64) + 1, 0)
    with pytest.raises(VortexFormatError, match="payload size 1097 is impossible"):
        structures.parse_frame_header(data, 52, frame_size=64)


def test_frame_header_rejects_damage():
    data = structures.build_frame_header(0, 0, 10, 10, 0)
    with pytest.raises(VortexFormatError, match="frame header at offset 52: checksum mismatch"):
        structures.parse_frame_header(data[:9] + b"\x01" + data[10:], 52, 64)
    with pytest.raises(VortexFormatError, match="frame header at offset 52: bad magic number"):
        structures.parse_frame_header(b"XXXX" + data[4:], 52, 64)


# --- Skippable section, seek index, trailer --------------------------------------------------


def test_skippable_header_layout():
    data = structures.build_skippable_header(5, 1000)
    assert len(data) == spec.SKIPPABLE_HEADER_SIZE
    assert data[:4] == spec.SKIPPABLE_MAGIC
    assert struct.unpack_from("<HHII", data, 4) == (5, 0, 1000, spec.xxh32(data[:12]))
    assert structures.parse_skippable_header(data, 0) == 1000


def test_index_layout():
    entries = [IndexEntry(52, 0, 64, 64), IndexEntry(148, 64, 10, 20)]
    data = structures.build_index(entries)
    assert len(data) == spec.index_size(2)
    assert data[:4] == spec.INDEX_MAGIC
    assert struct.unpack_from("<I", data, 4) == (2,)
    assert struct.unpack_from("<QQII", data, 8) == (52, 0, 64, 64)
    assert struct.unpack_from("<QQII", data, 32) == (148, 64, 10, 20)
    assert struct.unpack_from("<I", data, 56) == (spec.xxh32(data[:56]),)
    assert structures.parse_index(data, 300) == entries


def test_empty_index():
    data = structures.build_index([])
    assert data[:8] == spec.INDEX_MAGIC + bytes(4)
    assert structures.parse_index(data, 52) == []


def test_index_count_must_fill_the_index():
    data = bytearray(structures.build_index([IndexEntry(52, 0, 64, 64)]))
    struct.pack_into("<I", data, 4, 2)
    with pytest.raises(VortexFormatError, match="2 entries do not fill its 36 bytes"):
        structures.parse_index(bytes(data), 100)


def test_trailer_layout():
    data = structures.build_trailer(298, 150, 0xAABBCCDDEEFF0011)
    assert len(data) == spec.TRAILER_SIZE
    assert struct.unpack_from("<QQQI", data, 0) == (298, 150, 0xAABBCCDDEEFF0011,
                                                   spec.xxh32(data[:24]))
    assert data[28:] == spec.TRAILER_MAGIC
    trailer = structures.parse_trailer(data, 382)
    assert (trailer.index_offset, trailer.raw_size, trailer.content_checksum) == \
        (298, 150, 0xAABBCCDDEEFF0011)


def test_trailer_magic_is_checked_before_its_checksum():
    data = structures.build_trailer(298, 150, 0)
    with pytest.raises(VortexFormatError, match="trailer at offset 9: bad magic number"):
        structures.parse_trailer(data[:-1] + b"\0", 9)
    with pytest.raises(VortexFormatError, match="trailer at offset 9: checksum mismatch"):
        structures.parse_trailer(flip(data, 0), 9)


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 1]) + data[offset + 1:]


# --- Whole archives --------------------------------------------------------------------------


def test_empty_archive_is_header_index_trailer():
    blob = vortexfmt.compress(b"", frame_size=64)
    assert len(blob) == 52 + 12 + 32
    assert blob[:8] == spec.FILE_MAGIC
    assert blob[52:56] == spec.INDEX_MAGIC
    assert blob[-4:] == spec.TRAILER_MAGIC
    trailer = structures.parse_trailer(blob[-32:], 64)
    assert (trailer.index_offset, trailer.raw_size, trailer.content_checksum) == \
        (52, 0, spec.xxh64(b""))


#: FORMAT.md "Example": compress(b"hello", codec="stored", frame_size=1 MiB), byte for byte.
FORMAT_EXAMPLE = bytes.fromhex(
    "8956 5458 0d0a 1a0a 0100 0000 0000 1000" "0000 0000 0000 0000 0000 0000 0000 0000"
    "0000 0000 0000 0000 0000 0000 0000 0000" "794b e0db 8f56 4652 0000 0000 0000 0000"
    "0500 0000 0500 0000 a36d 9f88 7d82 c726" "cda2 5aca 6865 6c6c 6f8f 5649 5801 0000"
    "0034 0000 0000 0000 0000 0000 0000 0000" "0005 0000 0005 0000 0072 f204 2959 0000"
    "0000 0000 0005 0000 0000 0000 00a3 6d9f" "887d 82c7 260b 6d34 4d8f 5654 52")


def test_the_format_example():
    assert len(FORMAT_EXAMPLE) == 157
    assert vortexfmt.compress(b"hello", codec="stored", frame_size=1 << 20) == FORMAT_EXAMPLE
    assert vortexfmt.decompress(FORMAT_EXAMPLE) == b"hello"


def test_archive_sections_follow_each_other():
    content = noise(150)
    blob = vortexfmt.compress(content, codec="stored", frame_size=64)
    layout = read_layout(io.BytesIO(blob))
    assert [(e.frame_offset, e.raw_offset, e.raw_size, e.payload_size) for e in layout.frames] \
        == [(52, 0, 64, 64), (148, 64, 64, 64), (244, 128, 22, 22)]
    assert layout.trailer.index_offset == 298
    assert len(blob) == 298 + spec.index_size(3) + spec.TRAILER_SIZE
    assert layout.trailer.raw_size == 150
    assert layout.trailer.content_checksum == spec.xxh64(content)
    for number, entry in enumerate(layout.frames):
        start = entry.frame_offset
        header = structures.parse_frame_header(blob[start:start + 32], start, 64)
        assert header.frame_number == number
        raw = content[entry.raw_offset:entry.raw_offset + entry.raw_size]
        assert header.raw_checksum == spec.xxh64(raw)
        assert blob[start + 32:start + 32 + entry.payload_size] == raw  # stored


def test_archive_editor_agrees_with_the_declarations():
    """The field offsets fixtures/make_vectors.py edits are the spec's."""
    blob = vortexfmt.compress(noise(150), codec="stored", frame_size=64)
    editor = ArchiveEditor(blob)
    editor.set_header("frame_size", 77).set_frame(1, "raw_size", 33)
    editor.set_entry(2, "payload_size", 5).set_trailer("raw_size", 9)
    data = bytes(editor)
    assert structures.parse_file_header(data[:52]).frame_size == 77
    assert structures.parse_frame_header(data[148:180], 148, 77).raw_size == 33
    index = structures.parse_index(data[298:-32], 298)
    assert index[2].payload_size == 5
    assert structures.parse_trailer(data[-32:], 382).raw_size == 9


# --- Frame codecs ----------------------------------------------------------------------------

CONTENTS = [b"", b"x", text(1000), noise(1000), bytes(4096)]


@pytest.mark.parametrize("codec", [StoredCodec(), ZstdCodec(), LzmaCodec()],
                         ids=lambda c: c.name)
@pytest.mark.parametrize("raw", CONTENTS, ids=["empty", "1", "text", "noise", "zeros"])
def test_codec_round_trip(codec, raw):
    assert codec.decode(codec.encode(raw), len(raw)) == raw


def test_stored_payload_is_the_raw_bytes():
    assert StoredCodec().encode(b"abc") == b"abc"
    with pytest.raises(VortexFormatError, match="stored payload holds 3 bytes, header says 4"):
        StoredCodec().decode(b"abc", 4)


def test_zstd_payload_is_one_frame_without_size_or_checksum():
    payload = ZstdCodec().encode(text(1000))
    assert payload[:4] == b"\x28\xb5\x2f\xfd"
    params = zstandard.get_frame_parameters(payload)
    assert params.content_size == zstandard.CONTENTSIZE_UNKNOWN
    assert not params.has_checksum


@pytest.mark.parametrize("content_size, checksum", [(True, False), (False, True),
                                                     (True, True)])
def test_zstd_frames_with_content_size_or_checksum_are_accepted(content_size, checksum):
    raw = text(1000)
    payload = zstandard.ZstdCompressor(write_content_size=content_size,
                                       write_checksum=checksum).compress(raw)
    assert ZstdCodec().decode(payload, len(raw)) == raw


def test_zstd_payload_with_trailing_bytes_is_corrupt():
    payload = ZstdCodec().encode(text(1000))
    with pytest.raises(VortexFormatError, match="zstd payload is corrupt"):
        ZstdCodec().decode(payload + b"\0", 1000)
    with pytest.raises(VortexFormatError, match="zstd payload"):
        ZstdCodec().decode(payload, 999)
    with pytest.raises(VortexFormatError, match="zstd payload is corrupt"):
        ZstdCodec().decode(payload + payload, 1000)  # a second frame is damage too


@pytest.mark.parametrize("raw_size, dict_size", [(0, 4096), (1, 4096), (4096, 4096),
                                                 (4097, 8192), (1 << 20, 1 << 20)])
def test_lzma_dictionary_spans_the_frame(raw_size, dict_size):
    assert lzma_dict_size(raw_size) == dict_size


def test_lzma_payload_is_a_raw_lzma2_stream():
    raw = text(5000)
    payload = LzmaCodec().encode(raw)
    filters = [{"id": lzma.FILTER_LZMA2, "dict_size": 8192}]
    assert lzma.decompress(payload, format=lzma.FORMAT_RAW, filters=filters) == raw
    with pytest.raises(VortexFormatError, match="lzma payload"):
        LzmaCodec().decode(payload[:-3], 5000)
    with pytest.raises(VortexFormatError, match="lzma payload"):
        LzmaCodec().decode(payload + b"\0", 5000)


@pytest.mark.parametrize("size", [0, 1, 256 << 10, (256 << 10) + 1, 700_000])
def test_lzma_in_pieces_writes_the_stream_lzma_compress_writes(size):
    """Archives are the same as when lzma coded a frame in one call."""
    raw = (text(size // 2 + 1) + noise(size // 2 + 1))[:size]
    filters = [{"id": lzma.FILTER_LZMA2, "preset": 9 | lzma.PRESET_EXTREME,
                "dict_size": lzma_dict_size(size)}]
    assert LzmaCodec().encode(raw) == lzma.compress(raw, format=lzma.FORMAT_RAW,
                                                    filters=filters)


def test_a_set_stop_event_stops_lzma_between_pieces():
    import threading

    from vortexfmt.errors import CodingCancelled

    stop = threading.Event()
    stop.set()
    with pytest.raises(CodingCancelled, match="lzma"):
        LzmaCodec().encode(text(1000), stop=stop)
    assert LzmaCodec().encode(b"", stop=stop) == LzmaCodec().encode(b"")  # nothing to stop


def test_auto_keeps_the_smallest_and_stored_on_ties():
    encoder = FrameEncoder("auto")
    codec_id, payload = encoder.encode(noise(500))
    assert (codec_id, payload) == (spec.CodecId.STORED, noise(500))
    codec_id, payload = encoder.encode(text(2000))
    sizes = {c.codec_id: len(c.encode(text(2000))) for c in encoder.codecs}
    assert len(payload) == min(sizes.values())
    assert codec_id != spec.CodecId.STORED


@pytest.mark.parametrize("codec", ["zstd", "lzma"])
def test_payload_never_exceeds_the_limit(codec):
    for size in (1, 7, 64):
        codec_id, payload = FrameEncoder(codec).encode(noise(size))
        assert len(payload) <= spec.max_payload_size(size)


def test_unknown_writer_codec_is_a_value_error():
    with pytest.raises(ValueError, match="unknown codec 'gzip'"):
        FrameEncoder("gzip")


# --- Dependencies ----------------------------------------------------------------------------


def test_format_layer_does_not_import_torch():
    code = ("import vortexfmt, vortexfmt.spec, vortexfmt.container.reader, "
            "vortexfmt.container.writer, vortexfmt.cli.main, sys; "
            "assert 'torch' not in sys.modules, 'torch was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=HANG_GUARD_S, check=False)
    assert result.returncode == 0, result.stderr
