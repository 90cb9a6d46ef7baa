"""Hostile archives: a reader's cost is bounded by documented limits (vortexfmt.limits,
FORMAT.md "Reader limits") whatever an archive declares, and every frame that cannot be
decoded is a FrameDamageError naming it, so salvage recovers every other frame.

Memory claims are checked by the need the reader reports, never by measuring."""

from __future__ import annotations

import importlib.util
import io
import struct

import pytest
from conftest import run_vortex
from vortexfmt.spec import cm as cm_layout
from vortexfmt.spec import neural as neural_layout

import vortexfmt
from vortexfmt import limits, spec
from vortexfmt.codecs import CodecId, frame_need
from vortexfmt.codecs.cm import DEFAULT_MAX_TABLE_BITS
from vortexfmt.container import structures
from vortexfmt.container.check import check_archive
from vortexfmt.errors import (
    FrameDamageError,
    FrameMemoryError,
    MissingExtraError,
    ModelMismatchError,
    VortexFormatError,
)

HAS_TORCH = importlib.util.find_spec("torch") is not None
MODEL_ID = bytes(range(1, 33))
FIRST = b"first frame. " * 40
THIRD = b"third frame!" * 20


def build_archive(frames: list[tuple[int, int, bytes, bytes]], frame_size: int,
                  model_id: bytes = bytes(32)) -> bytes:
    """An archive of `frames`, each (codec, raw_size, payload, raw bytes for the checksum),
    with a valid index and trailer (and whole-content checksum of those raw bytes)."""
    out = bytearray(structures.build_file_header(frame_size, model_id, version_minor=2))
    entries, raw_offset, content = [], 0, b""
    for number, (codec, raw_size, payload, raw) in enumerate(frames):
        entries.append(structures.IndexEntry(len(out), raw_offset, raw_size, len(payload)))
        out += structures.build_frame_header(codec, number, raw_size, len(payload),
                                             spec.xxh64(raw))
        out += payload
        raw_offset += raw_size
        content += raw
    index_offset = len(out)
    out += structures.build_index(entries)
    out += structures.build_trailer(index_offset, raw_offset, spec.xxh64(content))
    return bytes(out)


def cm_payload(table_bits: int, stream: bytes = b"\x00" * 8, lanes_field: bytes | None = None,
               stride: int = 0) -> bytes:
    header = cm_layout.CmPayloadHeader.build({"revision": 1, "flags": 0,
                                              "table_bits": table_bits, "stride": stride,
                                              "lanes": 1})
    if lanes_field is not None:
        header = header[:5] + lanes_field
    return header + spec.encode_leb128(len(stream)) + stream


def three_frames(middle: tuple[int, int, bytes], frame_size: int,
                 model_id: bytes = bytes(32)) -> bytes:
    """Frames 0 and 2 stored (frame 2 short), frame 1 the given (codec, raw_size, payload)
    with raw_size == frame_size."""
    first = FIRST.ljust(frame_size, b".")
    codec, raw_size, payload = middle
    assert raw_size == frame_size
    return build_archive([(CodecId.STORED, frame_size, first, first),
                          (codec, raw_size, payload, bytes(raw_size)),
                          (CodecId.STORED, len(THIRD), THIRD, THIRD)], frame_size, model_id)


def salvage(blob: bytes, **options):
    sink = io.BytesIO()
    report = check_archive(io.BytesIO(blob), sink, salvage=True, **options)
    return report, sink.getvalue()


# --- cm table_bits ------------------------------------------------------------------------------

BIG = (1 << 21) + 1  # the smallest raw size whose frames may declare table_bits 22


def test_cm_table_bytes_formula():
    assert limits.cm_table_bytes(18) == 18 * 64 * 2**18 + 2 * 4 * 2**22 == 320 * limits.MiB
    assert limits.cm_table_bytes(22) == 18 * 64 * 2**22 + 2 * 4 * 2**24
    assert cm_layout.max_table_bits(BIG) == 22


def test_table_bits_22_is_rejected_by_default_naming_the_frame():
    blob = three_frames((CodecId.CM, BIG, cm_payload(22)), BIG)
    with pytest.raises(FrameDamageError) as caught:
        vortexfmt.decompress(blob)
    error = caught.value
    assert isinstance(error, FrameMemoryError)
    assert error.frame_number == 1 and error.raw_offset == BIG and error.raw_size == BIG
    message = str(error)
    assert message.startswith(f"frame 1 (raw bytes {BIG}..{2 * BIG - 1})")
    assert "needs 4.6 GiB" in message and "2^22 buckets" in message
    assert "memory limit of 1 GiB" in message and "--memory-limit" in message
    assert error.needed > limits.DEFAULT_MEMORY_LIMIT == error.limit


def test_table_bits_22_is_allowed_by_a_large_enough_limit():
    need = frame_need(CodecId.CM, cm_payload(22), BIG)
    assert 4.6 * limits.GiB < need.memory < 4.7 * limits.GiB
    blob = three_frames((CodecId.CM, BIG, cm_payload(22)), BIG)
    report = check_archive(io.BytesIO(blob), memory_limit=need.memory - 1)
    assert "memory limit" in report.damage[0].reason
    # with the limit raised, the frame passes the check (and is not decoded here: its
    # streams are not a real frame's); a tiny frame below is decoded for real
    from vortexfmt.codecs import check_frame_memory
    assert check_frame_memory(CodecId.CM, cm_payload(22), BIG, need.memory) == need


def test_a_frame_over_the_limit_decodes_once_the_limit_is_raised():
    from vortexfmt.codecs.cm import _kernel

    raw = b"a small frame, coded with the largest tables its size allows " * 70
    bits = cm_layout.max_table_bits(len(raw))
    assert bits == 13
    streams, _ = _kernel().encode(raw, 1, bits, 0, False, None, 1)
    payload = cm_payload(bits, streams[0])
    blob = build_archive([(CodecId.CM, len(raw), payload, raw)], 1 << 16)
    need = frame_need(CodecId.CM, payload, len(raw)).memory
    with pytest.raises(FrameMemoryError, match="over the memory limit of 6 MiB"):
        vortexfmt.decompress(blob, memory_limit=6 * limits.MiB)
    assert vortexfmt.decompress(blob, memory_limit=need) == raw
    with vortexfmt.open(io.BytesIO(blob), memory_limit=need) as reader:
        assert reader.read() == raw
    with pytest.raises(FrameMemoryError):
        with vortexfmt.open(io.BytesIO(blob), memory_limit=need - 1) as reader:
            reader.read()


def test_memory_limit_must_be_positive():
    blob = vortexfmt.compress(b"x")
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="memory_limit"):
            vortexfmt.decompress(blob, memory_limit=bad)
    with pytest.raises(ValueError, match="reading only"):
        vortexfmt.open(io.BytesIO(), "wb", memory_limit=1 << 30)


# --- varints ------------------------------------------------------------------------------------


def test_leb128_is_capped_and_linear():
    assert spec.Leb128.parse(b"\x80\x80\x00") == 0  # padded: still accepted
    assert spec.Leb128.parse(b"\xff" * 9 + b"\x01") == 2**64 - 1
    assert spec.Leb128.build(300) == b"\xac\x02"
    for bad in (b"\xff" * 10 + b"\x01", b"\x80" * 10 + b"\x00", b"\xff" * 9 + b"\x02"):
        with pytest.raises(spec.Leb128Error):
            spec.Leb128.parse(bad)
    with pytest.raises(spec.Leb128Error):
        spec.Leb128.parse(b"\xff" * 2_000_000)  # reads ten bytes: fast by construction
    values, end = spec.decode_leb128_array(b"\x05\x80\x01\x00", 0, 3)
    assert values == [5, 128, 0] and end == 4


@pytest.mark.parametrize("where", ["lanes", "lengths"])
def test_huge_cm_varint_is_rejected_with_a_short_message(where):
    huge = b"\xff" * 2_000_000
    if where == "lanes":
        payload = cm_payload(10)[:5] + huge
    else:
        payload = cm_payload(10)[:6] + huge
    frame = 1 << 22
    blob = three_frames((CodecId.CM, frame, payload), frame)
    with pytest.raises(FrameDamageError) as caught:
        vortexfmt.decompress(blob)
    message = str(caught.value)
    assert caught.value.frame_number == 1
    assert "LEB128" in message and len(message) < 300


def test_huge_neural_varint_is_rejected_with_a_short_message():
    payload = neural_layout.NeuralPayloadHeader.build({"lane_length": 4, "stride": 0}) + \
        b"\xff" * 5000
    blob = three_frames((CodecId.NEURAL, 4096, payload), 4096, MODEL_ID)
    with pytest.raises(FrameDamageError) as caught:
        vortexfmt.decompress(blob)
    assert "LEB128" in str(caught.value) and len(str(caught.value)) < 300


# --- neural and mixed lanes, without torch ------------------------------------------------------


def neural_payload(lane_length: int, raw_size: int) -> bytes:
    steps = neural_layout.step_count(raw_size, lane_length)
    return neural_layout.NeuralPayloadHeader.build({"lane_length": lane_length,
                                                    "stride": 0}) + b"\x00" * steps


@pytest.mark.parametrize("codec", [CodecId.NEURAL, CodecId.MIXED])
def test_absurd_lane_counts_are_rejected_before_the_model_codec_loads(codec, monkeypatch):
    import vortexfmt.codecs as codecs

    def no_model_codec(*args, **kwargs):
        raise AssertionError("the model codec must not be loaded")

    monkeypatch.setattr(codecs, "model_codec", no_model_codec)
    frame = spec.MAX_FRAME_SIZE  # the largest frame, of the most lanes the format allows
    payload = neural_payload(1 if codec == CodecId.NEURAL else frame // 16384, frame)
    blob = build_archive([(codec, frame, payload, b"")], frame, MODEL_ID)
    assert len(blob) < 20_000
    with pytest.raises(FrameDamageError) as caught:
        vortexfmt.decompress(blob)
    message = str(caught.value)
    assert caught.value.frame_number == 0 and "memory limit of 1 GiB" in message
    assert "lanes of" in message


def test_mixed_lane_count_is_capped():
    raw_size = 16385
    need = frame_need  # the format's own cap, before any memory accounting
    with pytest.raises(VortexFormatError, match="more than 16384"):
        need(CodecId.MIXED, neural_payload(1, raw_size), raw_size)
    assert need(CodecId.NEURAL, neural_payload(1, raw_size), raw_size).memory < \
        limits.DEFAULT_MEMORY_LIMIT


@pytest.mark.skipif(HAS_TORCH, reason="checks the message where torch is missing")
def test_model_frame_without_torch_names_the_frame_and_the_extra():
    payload = neural_payload(512, 1024)
    blob = three_frames((CodecId.NEURAL, 1024, payload), 1024, MODEL_ID)
    with pytest.raises(FrameDamageError) as caught:
        vortexfmt.decompress(blob)
    assert isinstance(caught.value, MissingExtraError)
    message = str(caught.value)
    assert message.startswith("frame 1 (raw bytes 1024..2047)")
    assert "pip install 'vortexfmt[neural]'" in message
    report, out = salvage(blob)
    assert [d.frame_number for d in report.damage] == [1]
    assert out[:1024] == FIRST.ljust(1024, b".") and out[2048:] == THIRD


@pytest.mark.skipif(HAS_TORCH, reason="checks the message where torch is missing")
@pytest.mark.parametrize("command", ["unpack", "verify"])
def test_cli_says_what_to_install_for_a_model_frame_not_that_it_is_damaged(cli, tmp_path,
                                                                            command):
    archive = tmp_path / "model.vtx"
    archive.write_bytes(three_frames((CodecId.NEURAL, 1024, neural_payload(512, 1024)), 1024,
                                     MODEL_ID))
    extra = ["-o", tmp_path / "out"] if command == "unpack" else []
    result = cli(command, archive, *extra)
    assert result.exit_code == 1
    assert "pip install 'vortexfmt[neural]'" in result.stderr
    assert "damaged" not in result.stderr and "--salvage" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()


# --- unexpected failures and salvage ------------------------------------------------------------


@pytest.mark.parametrize("kind", [ValueError, RuntimeError, OverflowError, MemoryError,
                                  struct.error])
def test_unexpected_codec_failures_are_frame_damage(kind, monkeypatch):
    from vortexfmt.codecs import zstd

    def broken(self, payload, raw_size):
        raise kind("x" * 10_000)

    monkeypatch.setattr(zstd.ZstdCodec, "decode", broken)
    blob = vortexfmt.compress(FIRST * 4, codec="zstd", frame_size=len(FIRST))
    report, out = salvage(blob)
    assert [d.frame_number for d in report.damage] == [0, 1, 2, 3]
    with pytest.raises(FrameDamageError) as caught:
        vortexfmt.decompress(blob)
    assert caught.value.frame_number == 0 and kind.__name__ in str(caught.value)
    assert len(str(caught.value)) < 400


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_interrupts_are_not_swallowed(kind, monkeypatch):
    from vortexfmt.codecs import zstd

    def interrupted(self, payload, raw_size):
        raise kind()

    monkeypatch.setattr(zstd.ZstdCodec, "decode", interrupted)
    blob = vortexfmt.compress(FIRST, codec="zstd")
    with pytest.raises(kind):
        vortexfmt.decompress(blob)
    with pytest.raises(kind):
        salvage(blob)


def hostile_middles():
    frame = 1 << 22
    yield "varint", (CodecId.CM, frame, cm_payload(10)[:5] + b"\xff" * 2_000_000), frame
    yield "table_bits", (CodecId.CM, BIG, cm_payload(22)), BIG
    yield "lanes", (CodecId.NEURAL, frame, neural_payload(1, frame)), frame


@pytest.mark.parametrize("name,middle,frame", list(hostile_middles()),
                         ids=[m[0] for m in hostile_middles()])
@pytest.mark.parametrize("threads", [1, 2])
def test_salvage_recovers_the_frames_around_a_hostile_one(name, middle, frame, threads):
    blob = three_frames(middle, frame, MODEL_ID)
    report, out = salvage(blob, threads=threads)
    assert [d.frame_number for d in report.damage] == [1]
    assert report.damage[0].raw_offset == frame
    assert out[:frame] == FIRST.ljust(frame, b".")
    assert out[frame:2 * frame] == bytes(frame)
    assert out[2 * frame:] == THIRD
    # the stream reader, too, names the frame
    with pytest.raises(FrameDamageError) as caught:
        with vortexfmt.open(_Pipe(blob)) as reader:
            reader.read()
    assert caught.value.frame_number == 1


class _Pipe(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self._data.read(len(buffer))
        buffer[:len(chunk)] = chunk
        return len(chunk)


# --- the writer's largest configurations fit the default limit ----------------------------------


def test_the_writers_largest_cm_frames_fit_the_default_limit():
    raw = spec.MAX_FRAME_SIZE
    payload = spec.max_payload_size(raw)
    lanes = raw  # more than any writer uses (CmCodec's default is one lane)
    need = limits.cm_frame_memory(raw, payload, DEFAULT_MAX_TABLE_BITS, 1)
    assert need <= limits.DEFAULT_MEMORY_LIMIT
    assert limits.cm_frame_memory(4 << 20, spec.max_payload_size(4 << 20),
                                  DEFAULT_MAX_TABLE_BITS, 4096) <= limits.DEFAULT_MEMORY_LIMIT
    assert limits.cm_frame_memory(raw, payload, 22, lanes) > limits.DEFAULT_MEMORY_LIMIT


def test_the_writers_largest_classic_frames_fit_the_default_limit():
    raw = spec.MAX_FRAME_SIZE
    payload = spec.max_payload_size(raw)
    for memory in (limits.stored_frame_memory, limits.zstd_frame_memory,
                   limits.lzma_frame_memory):
        assert memory(raw, payload) <= limits.DEFAULT_MEMORY_LIMIT


def test_the_writers_model_frames_at_the_default_frame_size_fit_the_default_limit():
    from vortexfmt.container.writer import DEFAULT_FRAME_SIZE

    raw = DEFAULT_FRAME_SIZE
    payload = spec.max_payload_size(raw)
    # lanes.default_lane_length: neural lanes are at least 128 bytes (SHORTEST_LANE_LENGTH),
    # mixed frames have at most MAX_MIXED_LANES lanes
    for lane_length in (128, 512, 2048, 8192):
        assert limits.neural_frame_memory(raw, payload, lane_length, False) <= \
            limits.DEFAULT_MEMORY_LIMIT
    for lane_length in (raw // neural_layout.MAX_MIXED_LANES, 512, 2048, 8192):
        assert limits.neural_frame_memory(raw, payload, lane_length, True) <= \
            limits.DEFAULT_MEMORY_LIMIT



@pytest.mark.parametrize("mixed", [False, True])
def test_model_lane_lengths_grow_until_the_frame_fits_the_default_limit(mixed):
    for raw in (4 << 20, 16 << 20, 64 << 20, limits.largest_model_frame(mixed)):
        length = limits.model_lane_length_within(raw, 128, mixed)
        assert length is not None and length >= 128
        assert limits.neural_frame_memory(raw, spec.max_payload_size(raw), length, mixed) <= \
            limits.DEFAULT_MEMORY_LIMIT
    largest = limits.largest_model_frame(mixed)
    assert limits.model_lane_length_within(largest + 1, 128, mixed) is None
    assert (4 << 20) < largest < spec.MAX_FRAME_SIZE


@pytest.mark.parametrize("codec", ["neural", "mixed"])
def test_a_writer_refuses_model_frames_no_reader_could_decode_by_default(codec, tmp_path):
    from vortexfmt.container.writer import check_writer_arguments

    largest = limits.largest_model_frame(mixed=codec == "mixed")
    check_writer_arguments(codec, largest)
    with pytest.raises(ValueError, match=f"too large for the {codec} codec"):
        check_writer_arguments(codec, largest + 1)
    with pytest.raises(ValueError, match="too large"):  # before any file is created
        vortexfmt.open(tmp_path / "a.vtx", "wb", codec=codec, frame_size=spec.MAX_FRAME_SIZE)
    assert not (tmp_path / "a.vtx").exists()
    result = run_vortex("pack", "-", "-o", tmp_path / "b.vtx", "--codec", codec,
                        "--frame-size", str(spec.MAX_FRAME_SIZE), input=b"x")
    assert result.returncode == 2 and b"too large" in result.stderr
    assert b"Traceback" not in result.stderr and not (tmp_path / "b.vtx").exists()

def test_the_built_in_model_state_fits_the_per_lane_allowance():
    state = limits.model_lane_state_bytes(n_layers=2, d_model=48, window=32, memory=16,
                                          compression=4)
    assert state == 10_944
    assert state + 257 * (4 + 2) + 10 * 8 < limits.NEURAL_LANE_BYTES


def test_frame_memory_of_real_frames_is_what_limits_say():
    raw = b"some text to code " * 100
    for codec in ("stored", "zstd", "lzma", "cm"):
        blob = vortexfmt.compress(raw, codec=codec)
        assert vortexfmt.decompress(blob) == raw


def test_error_family():
    assert issubclass(ModelMismatchError, VortexFormatError)
    assert issubclass(FrameMemoryError, VortexFormatError)
    assert limits.format_bytes(int(4.625 * limits.GiB)) == "4.6 GiB"
    assert limits.format_bytes(320 * limits.MiB) == "320 MiB"


def test_the_cli_names_a_memory_limit_refusal_as_such_not_as_damage(tmp_path):
    archive = tmp_path / "a.vtx"
    archive.write_bytes(vortexfmt.compress(b"records of a kind, " * 2000, codec="cm"))
    verify = run_vortex("verify", "--memory-limit", "1M", archive)
    assert verify.returncode == 1
    last = verify.stderr.decode().strip().splitlines()[-1]
    assert last.endswith("not decoded: frames need more memory than the limit")
    assert "nothing written" not in last and "damaged" not in last
    unpack = run_vortex("unpack", "--memory-limit", "1M", archive, "-o", tmp_path / "out")
    assert unpack.returncode == 1 and not (tmp_path / "out").exists()
    assert b"more memory than the limit, nothing written" in unpack.stderr
    assert run_vortex("verify", archive).returncode == 0


def test_verify_of_a_damaged_archive_says_damaged_and_does_not_mention_writing(tmp_path):
    blob = bytearray(vortexfmt.compress(b"records of a kind, " * 2000, codec="cm"))
    blob[60] ^= 0xFF  # inside the frame's payload
    archive = tmp_path / "a.vtx"
    archive.write_bytes(bytes(blob))
    verify = run_vortex("verify", archive)
    assert verify.returncode == 1
    assert verify.stderr.decode().strip().splitlines()[-1].endswith(": damaged")


def test_an_index_entry_of_no_raw_bytes_is_damage_not_an_empty_content():
    """Frame header and content checksum intact; the index entry and the trailer say 0 bytes
    (their own checksums recomputed). No reader path may deliver b"" for it."""
    from vortexfmt.container.layout import read_layout

    raw = b"some content " * 20
    archive = build_archive([(CodecId.STORED, len(raw), raw, raw)], 4096)
    layout = read_layout(io.BytesIO(archive))
    index_offset, entry = layout.trailer.index_offset, layout.frames[0]
    forged = archive[:index_offset] + structures.build_index(
        [structures.IndexEntry(entry.frame_offset, 0, 0, 0)]) + \
        structures.build_trailer(index_offset, 0, spec.xxh64(raw))
    with pytest.raises(VortexFormatError, match="seek index entry 0: empty frame"):
        vortexfmt.decompress(forged)
    with pytest.raises(VortexFormatError, match="empty frame"):
        vortexfmt.open(io.BytesIO(forged)).read()


def test_a_zstd_payload_declaring_another_size_is_refused_before_allocating():
    """A zstd frame may declare its content size, which python-zstandard allocates whatever
    max_output_size says: 3 GiB declared for a 64 KiB frame is damage, found first."""
    raw = b"z" * 100
    block = ((len(raw) << 3) | 1).to_bytes(3, "little") + raw  # last block, raw, 100 bytes
    payload = b"\x28\xb5\x2f\xfd" + bytes([0xA0]) + (3 << 30).to_bytes(4, "little") + block
    archive = build_archive([(CodecId.ZSTD, 64 << 10, payload, bytes(64 << 10))], 64 << 10)
    with pytest.raises(FrameDamageError, match="zstd payload declares 3221225472 bytes, "
                                               "header says 65536"):
        vortexfmt.decompress(archive)
