"""The neural frame codec round-trips exactly, through the API and the CLI, and refuses to
decode with the wrong model."""

from __future__ import annotations

import os
import random

import pytest

pytest.importorskip("torch")  # the model codecs need the neural extra: skip without it

from conftest import corpus_file, run_vortex
from vortexfmt.spec import CodecId

import vortexfmt
from vortexfmt.codecs import FrameDecoders
from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.errors import ModelMismatchError, VortexError, VortexFormatError
from vortexfmt.neural.files import save_model
from vortexfmt.neural.lanes import EncodeStats, decode_frame, encode_frame

SEED = os.path.join(os.path.dirname(__file__), "..", "fixtures", "seed")


def seed_file(name: str, size: int) -> bytes:
    with open(os.path.join(SEED, name), "rb") as handle:
        return handle.read(size)


CASES = {
    "empty": b"",
    "one byte": b"\x42",
    "short lane": bytes(range(100)),
    "incompressible": random.Random(7).randbytes(5000),
    "repetitive": b"vortex!" * 900,
    "events": seed_file("events.bin", 7000),
    "telemetry": seed_file("telemetry.bin", 7000),
    "pcap": seed_file("capture.pcap", 7000),
    "logs": seed_file("logs.bin", 7000),
}


@pytest.mark.parametrize("name", CASES)
def test_frame_round_trip(tiny_model, name):
    runtime = tiny_model.runtime("cpu")
    data = CASES[name]
    payload = encode_frame(runtime, data, lane_length=256)
    assert decode_frame(runtime, payload, len(data)) == data


@pytest.mark.parametrize("codec", ["neural", "mixed"])
@pytest.mark.parametrize("name", ["empty", "one byte", "incompressible", "logs"])
def test_api_round_trip_with_a_model_codec(tiny_model, name, codec):
    data = CASES[name]
    blob = vortexfmt.compress(data, codec=codec, model=tiny_model, frame_size=4096)
    assert vortexfmt.decompress(blob, model=tiny_model) == data


def test_seeking_into_a_neural_archive_decodes_the_right_bytes(tiny_model):
    data = CASES["events"]
    blob = vortexfmt.compress(data, codec="neural", model=tiny_model, frame_size=2048)
    import io

    with vortexfmt.open(io.BytesIO(blob), model=tiny_model) as reader:
        reader.seek(5000)
        assert reader.read(100) == data[5000:5100]


def test_header_records_the_model_id(tiny_model):
    blob = vortexfmt.compress(b"abc" * 2000, codec="neural", model=tiny_model)
    with vortexfmt.open(__import__("io").BytesIO(blob)) as reader:
        assert reader.header.model_id == tiny_model.model_id


def test_model_free_codecs_record_no_model(tiny_model):
    blob = vortexfmt.compress(b"abc" * 2000, codec="lzma", model=tiny_model)
    with vortexfmt.open(__import__("io").BytesIO(blob)) as reader:
        assert reader.header.model_id == bytes(32)


def test_unpacking_with_another_model_names_both_ids(tiny_model, tmp_path):
    blob = vortexfmt.compress(CASES["logs"], codec="neural", model=tiny_model)
    other = dict(tiny_model.tensors)
    other["head.bias"] = other["head.bias"] + 1
    other_model = save_model(tmp_path / "other.safetensors", tiny_model.config, other)
    with pytest.raises(ModelMismatchError) as error:
        vortexfmt.decompress(blob, model=other_model)
    assert tiny_model.hex_id in str(error.value) and other_model.hex_id in str(error.value)


def test_unpacking_without_the_model_says_which_model_is_missing(tiny_model, monkeypatch,
                                                                  tmp_path):
    monkeypatch.setenv("VORTEX_MODELS", str(tmp_path))
    blob = vortexfmt.compress(CASES["logs"], codec="neural", model=tiny_model)
    with pytest.raises(ModelMismatchError, match=tiny_model.hex_id):
        vortexfmt.decompress(blob)


def test_the_models_directory_finds_a_model_by_id(tiny_model, monkeypatch, tmp_path):
    save_model(tmp_path / "mine.safetensors", tiny_model.config, tiny_model.tensors)
    monkeypatch.setenv("VORTEX_MODELS", str(tmp_path))
    blob = vortexfmt.compress(CASES["logs"], codec="neural", model=tiny_model.hex_id[:12])
    assert vortexfmt.decompress(blob) == CASES["logs"]


def test_a_neural_frame_in_an_archive_without_model_is_damage():
    decoders = FrameDecoders(bytes(32))
    with pytest.raises(VortexFormatError, match="records no model|cannot fit"):
        decoders.decode(CodecId.NEURAL, b"\0\2\0\0", 10)


@pytest.mark.parametrize("payload", [b"", b"\x00", b"\x00\x02\x00\x00", b"\x00\x02\x00\x00\x05",
                                     b"\x00\x02\xff\xff" + bytes(40), os.urandom(300)])
def test_malformed_payloads_raise_format_errors(tiny_model, payload):
    runtime = tiny_model.runtime("cpu")
    try:
        decoded = decode_frame(runtime, payload, 100)
    except VortexFormatError:
        return
    assert len(decoded) == 100  # garbage streams decode to garbage, caught by the checksum


def test_a_damaged_neural_frame_is_caught_by_its_checksum(tiny_model):
    blob = bytearray(vortexfmt.compress(CASES["logs"], codec="neural", model=tiny_model))
    blob[200] ^= 0x10
    with pytest.raises(VortexFormatError):
        vortexfmt.decompress(bytes(blob), model=tiny_model)


def test_auto_is_never_much_worse_than_zstd(tiny_model):
    data = CASES["incompressible"] + CASES["pcap"]
    auto = vortexfmt.compress(data, codec="auto", model=tiny_model, frame_size=4096)
    zstd = vortexfmt.compress(data, codec="zstd", frame_size=4096)
    frames = -(-len(data) // 4096)
    assert len(auto) <= len(zstd) + 4 * frames
    assert vortexfmt.decompress(auto, model=tiny_model) == data


def test_auto_below_the_neural_frame_size_needs_no_model():
    encoder = FrameEncoder("auto", frame_size=1024)
    assert encoder.model_id is None


def test_coded_size_is_within_one_percent_of_the_ideal_code_length(tiny_model):
    """Streams carry hundreds of bytes each, so their lengths and flushes stay below 1%.
    (`vortex bench` measures the same at the default frame size on the corpus.)"""
    data = seed_file("telemetry.bin", 150_000)
    stats = EncodeStats()
    encode_frame(tiny_model.runtime("cpu"), data, lane_length=128, stats=stats)
    assert stats.coded_bytes + stats.overhead_bytes < 1.01 * stats.ideal_bits / 8


def test_corpus_file_round_trips(tiny_model):
    data = corpus_file("net_http.pcap").read_bytes()[:20_000]
    blob = vortexfmt.compress(data, codec="neural", model=tiny_model, frame_size=8192)
    assert vortexfmt.decompress(blob, model=tiny_model) == data


def test_cli_round_trip_with_model_and_wrong_model(tiny_model, tmp_path):
    source = tmp_path / "logs.bin"
    source.write_bytes(CASES["logs"])
    model_path = tiny_model.path
    packed = run_vortex("pack", source, "--codec", "neural", "--model", model_path)
    assert packed.returncode == 0, packed.stderr
    archive = tmp_path / "logs.bin.vtx"
    unpacked = run_vortex("unpack", archive, "-o", tmp_path / "out", "--model", model_path)
    assert unpacked.returncode == 0, unpacked.stderr
    assert (tmp_path / "out").read_bytes() == CASES["logs"]
    other = dict(tiny_model.tensors)
    other["head.bias"] = other["head.bias"] - 1
    save_model(tmp_path / "other.safetensors", tiny_model.config, other)
    wrong = run_vortex("unpack", archive, "-o", tmp_path / "out2", "--model",
                       tmp_path / "other.safetensors")
    assert wrong.returncode == 1
    assert tiny_model.hex_id in wrong.stderr.decode()
    assert not (tmp_path / "out2").exists()


def test_model_option_rejects_a_missing_file():
    with pytest.raises(VortexError, match="no such file"):
        vortexfmt.compress(b"x" * 5000, codec="neural", model="/nonexistent/model")


def test_unpacking_a_neural_archive_to_stdout_writes_only_the_content(tiny_model, tmp_path):
    """Nothing but the content reaches standard output (torchac's run-time build used to
    print there)."""
    archive = tmp_path / "logs.vtx"
    archive.write_bytes(vortexfmt.compress(CASES["logs"], codec="neural", model=tiny_model))
    result = run_vortex("unpack", archive, "-o", "-", "--model", tiny_model.path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == CASES["logs"]
