"""Vortex chunks (FORMAT.md "Chunks"): the bytes Zarr's and HDF5's filters store."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from vortexfmt.spec import MAX_FRAME_SIZE, max_payload_size

import vortexfmt
from vortexfmt import chunk
from vortexfmt.container.layout import read_layout
from vortexfmt.errors import VortexFormatError

#: Structured enough that every codec compresses it, small enough for cm to be quick.
RECORDS = b"".join(struct.pack("<IHf", i, i % 7, i * 0.25) for i in range(3000))


def _header(codec: int, raw_size: int, crc: int, version: int = 1) -> bytes:
    """A chunk header written from FORMAT.md's table alone (not from spec/chunk.py)."""
    return b"VXC" + struct.pack("<BBQI", version, codec, raw_size, crc)


@pytest.mark.parametrize("codec, codec_id", [("stored", 0), ("zstd", 1), ("lzma", 3),
                                             ("cm", 5)])
def test_round_trip_and_header_bytes(codec, codec_id):
    blob = chunk.encode(RECORDS, codec=codec)
    assert blob[:17] == _header(codec_id, len(RECORDS), zlib.crc32(RECORDS))
    assert chunk.decode(blob) == RECORDS


def test_payload_is_the_frame_payload_of_an_archive():
    """The same bytes as the payload of a one-frame archive with the same codec."""
    for codec in ("cm", "lzma", "zstd"):
        archive = vortexfmt.compress(RECORDS, codec=codec, frame_size=len(RECORDS))
        entry = read_layout(io.BytesIO(archive)).frames[0]
        start = entry.frame_offset + 32
        assert chunk.encode(RECORDS, codec)[17:] == archive[start:start + entry.payload_size]


def test_auto_keeps_the_smallest():
    sizes = {codec: len(chunk.encode(RECORDS, codec)) for codec in ("stored", "zstd", "lzma",
                                                                      "cm")}
    blob = chunk.encode(RECORDS)  # auto
    assert len(blob) == min(sizes.values())
    assert blob[4] == 5  # cm wins on records
    noise = np.random.default_rng(1).bytes(4096)
    assert chunk.encode(noise)[4] == 0  # nothing beats stored on noise
    assert chunk.decode(chunk.encode(noise)) == noise


def test_level_picks_a_preset():
    blob = chunk.encode(RECORDS, level=1)  # zstd -3
    assert blob[4] == 1 and chunk.decode(blob) == RECORDS
    with pytest.raises(ValueError):
        chunk.encode(RECORDS, codec="cm", level=1)


def test_layout_is_accepted_and_never_needed_to_decode():
    blob = chunk.encode(RECORDS, codec="cm", layout="<f4")
    assert chunk.decode(blob) == RECORDS


def test_decode_into_out():
    blob = chunk.encode(RECORDS, "cm")
    out = np.empty(len(RECORDS), dtype=np.uint8)
    assert chunk.decode(blob, out=out) is out
    assert out.tobytes() == RECORDS
    with pytest.raises(VortexFormatError, match="room for"):
        chunk.decode(blob, out=bytearray(len(RECORDS) - 1))


def test_empty_chunk_is_stored():
    assert chunk.encode(b"", "cm") == _header(0, 0, 0)
    assert chunk.decode(_header(0, 0, 0)) == b""
    with pytest.raises(VortexFormatError, match="empty chunk"):
        chunk.decode(_header(5, 0, 0))


def test_unknown_codec_name():
    with pytest.raises(ValueError, match="unknown chunk codec"):
        chunk.encode(b"x", codec="neural")


@pytest.mark.parametrize("blob, message", [
    (b"VXC\x01", "truncated"),
    (b"VXD" + bytes(14), "bad magic"),
    (_header(0, 1, 0, version=2) + b"x", "chunk version 2"),
    (_header(2, 1, 0) + b"x", "needs a model"),
    (_header(4, 1, 0) + b"x", "needs a model"),
    (_header(9, 1, 0) + b"x", "not a chunk codec"),
    (_header(0, MAX_FRAME_SIZE + 1, 0), "exceeds the chunk maximum"),
    (_header(0, 2**63, 0), "exceeds the chunk maximum"),
    (_header(0, 1, 0) + bytes(max_payload_size(1) + 1), "exceed the bound"),
    (_header(0, 4, zlib.crc32(b"abcd")) + b"abc", "stored payload holds 3 bytes"),
    (_header(0, 4, 0) + b"abcd", "CRC-32 mismatch"),
    (_header(1, 4, 0) + b"\x28\xb5\x2f\xfd", "zstd payload is corrupt"),
    (_header(3, 4, 0) + b"\x01\x02", "lzma payload"),
    (_header(5, 100, 0) + b"\x02\x00\x0a\x00\x00\x01\x00", "cm payload of revision 2"),
    (_header(5, 1 << 20, 0) + b"\x01\x00\x16\x00\x00\x01\x01x", "table_bits 22"),
])
def test_bad_chunks_are_one_line_format_errors(blob, message):
    with pytest.raises(VortexFormatError, match=message) as caught:
        chunk.decode(blob)
    assert str(caught.value).startswith("vortex chunk: ")
    assert "\n" not in str(caught.value)


def test_memory_limit_is_checked_before_decoding():
    raw = bytes(range(256)) * 64
    blob = chunk.encode(raw, "cm")
    with pytest.raises(VortexFormatError, match="memory limit"):
        chunk.decode(blob, memory_limit=1 << 20)
    assert chunk.decode(blob, memory_limit=1 << 30) == raw


@pytest.mark.parametrize("codec", ["cm", "lzma", "zstd"])
def test_flipped_bits_never_give_wrong_data(codec):
    """No damaged chunk decodes to wrong data: a flip is refused (header, payload or CRC),
    or lands where the codec ignores it (a zstd frame header's unused bits) and the bytes
    come back whole."""
    raw = RECORDS[:2000]
    blob = chunk.encode(raw, codec)
    refused = 0
    for position in range(0, len(blob), max(1, len(blob) // 60)):
        damaged = bytearray(blob)
        damaged[position] ^= 0x10
        try:
            assert chunk.decode(bytes(damaged)) == raw
        except VortexFormatError:
            refused += 1
    assert refused >= 55


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=3000), codec=st.sampled_from(["auto", "stored", "zstd", "lzma",
                                                              "cm"]))
def test_round_trip_property(data, codec):
    assert chunk.decode(chunk.encode(data, codec)) == data


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64))
def test_garbage_never_decodes_silently(blob):
    try:
        raw = chunk.decode(blob)
    except VortexFormatError as error:
        assert "\n" not in str(error)
    else:  # only a well-formed chunk decodes, and then to bytes of its CRC
        assert zlib.crc32(raw) == struct.unpack_from("<I", blob, 13)[0]


# --- Test vectors (fixtures/chunks, fixtures/make_chunks.py) ---------------------------------

CHUNKS = Path(__file__).resolve().parent.parent / "fixtures" / "chunks"


def _rows(path: Path) -> list[dict]:
    lines = path.read_text().splitlines()
    names = lines[0].split("\t")
    return [dict(zip(names, line.split("\t"), strict=True)) for line in lines[1:]]


@pytest.mark.parametrize("row", _rows(CHUNKS / "MANIFEST.tsv"), ids=lambda row: row["name"])
def test_vectors_decode(row):
    raw = (CHUNKS / f"{row['name']}.bin").read_bytes()
    blob = (CHUNKS / f"{row['name']}.vxc").read_bytes()
    assert len(raw) == int(row["raw_size"])
    assert chunk.decode(blob) == raw
    if row["codec"] in ("stored", "cm", "auto"):  # our own bytes: written again exactly
        assert chunk.encode(raw, row["codec"]) == blob


@pytest.mark.parametrize("row", _rows(CHUNKS / "bad" / "EXPECTED.tsv"),
                         ids=lambda row: row["file"])
def test_bad_vectors_are_rejected(row):
    with pytest.raises(VortexFormatError) as caught:
        chunk.decode((CHUNKS / "bad" / row["file"]).read_bytes())
    assert str(caught.value) == row["expected"]
