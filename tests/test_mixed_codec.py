"""The mixed codec (id 4): the byte model mixed with a frame's adaptive context statistics.
Its C++ kernel and its torch reference compute the same integers, its CDFs are valid, and
frames round-trip exactly through the API and the CLI."""

from __future__ import annotations

import math
import random

import pytest

pytest.importorskip("torch")  # the model codecs need the neural extra: skip without it

import torch
from conftest import GOLDEN, corpus_file, run_vortex
from test_neural_codec import CASES
from vortexfmt.spec import CodecId
from vortexfmt.spec import neural as layout

import vortexfmt
from vortexfmt import native
from vortexfmt.codecs.auto import FrameEncoder
from vortexfmt.errors import VortexFormatError
from vortexfmt.neural import mixing
from vortexfmt.neural.features import NONE, FrameContext
from vortexfmt.neural.lanes import (
    SHORTEST_LANE_LENGTH,
    STREAM_TARGET_BITS,
    decode_frame,
    default_lane_length,
    encode_frame,
)


@pytest.fixture
def reference_only(monkeypatch):
    monkeypatch.setenv("VORTEX_NATIVE", "0")


def test_log2_table_is_exact_at_powers_of_two_and_increasing():
    table = mixing.log2_table()
    for exponent in range(17):
        assert int(table[1 << exponent]) == exponent << mixing.SCORE_BITS
    assert bool((table[2:] >= table[1:-1]).all())
    for n in (3, 255, 1000, 65281, 130815):  # within one 1/64 bit below the true value
        assert 0 <= math.log2(n) * 64 - int(table[n]) < 1


def test_exp2_fraction_table_is_two_to_the_minus_i_over_64():
    assert [round(65536 * 2 ** (-i / 64)) for i in range(64)] == list(mixing.EXP2_FRACTION)


def _random_mixer(lanes: int = 40, lane_length: int = 64):
    torch.manual_seed(5)
    context = FrameContext(lanes * lane_length - 17, lane_length, 8)
    mixer = mixing.ContextMixer(context, out_resolution=16)
    mixer.tables.random_(0, mixing.COUNT_LIMIT + 1)
    mixer.tables[:, ::3].zero_()
    mixer.weights.random_(-mixing.WEIGHT_LIMIT, mixing.WEIGHT_LIMIT)
    mixer.hits.random_(0, 1000)
    mixer.misses.random_(0, 1000)
    context.data.random_(0, 256)
    features = (torch.randint(-400, 1, (lanes, 256)).float(),  # logits
                torch.randint(0, NONE + 1, (lanes,)),  # match (NONE: none)
                torch.randint(0, 5000, (lanes,)),  # run length
                torch.randint(0, NONE + 1, (lanes,)))  # record
    return mixer, features


def test_kernel_and_reference_give_the_same_scores_cdfs_and_gradients(monkeypatch):
    if native.mixing_kernel() is None:
        pytest.skip("VORTEX_NATIVE=0 in the environment: the kernel is off")
    results = []
    for setting in ("1", "0"):
        monkeypatch.setenv("VORTEX_NATIVE", setting)
        mixer, features = _random_mixer()
        cdf = mixer.cdf(40, *features)
        scores = mixer._step["scores"]
        symbols = torch.randint(0, 256, (mixer.context.lanes,))
        mixer.update(symbols, mixer.context.lengths > 40)
        results.append((cdf, scores, mixer.weights, mixer.tables, mixer.hits, mixer.misses))
    for kernel, reference in zip(*results, strict=True):
        assert torch.equal(kernel, reference)


def test_the_kernel_gives_the_same_results_on_any_number_of_threads(monkeypatch):
    """Lanes are cut into one chunk a thread (at least 16 lanes each): 1, 2, 3 and 8
    threads cut 70 lanes differently, and nothing may change."""
    monkeypatch.setenv("VORTEX_NATIVE", "1")
    results = []
    for threads in ("1", "2", "3", "8"):
        monkeypatch.setenv("VORTEX_THREADS", threads)
        mixer, features = _random_mixer(lanes=70)
        cdf = mixer.cdf(40, *features)
        scores = mixer._step["scores"]
        symbols = torch.randint(0, 256, (mixer.context.lanes,))
        mixer.update(symbols, mixer.context.lengths > 40)
        results.append((cdf, scores, mixer.weights, mixer.tables))
    for first, other in zip(results[0], results[-1], strict=True):
        assert torch.equal(first, other)
    for result in results[1:-1]:
        assert all(torch.equal(a, b) for a, b in zip(results[0], result, strict=True))


def test_the_kernels_refuse_arrays_of_the_wrong_dtype_or_shape(monkeypatch):
    monkeypatch.setenv("VORTEX_NATIVE", "1")
    kernel = native.mixing_kernel()
    tables = torch.zeros(4, 256, dtype=torch.int16)
    rows = torch.zeros(2, 3, dtype=torch.int64)
    with pytest.raises(ValueError, match="tables must be a int16"):
        kernel.count_update(tables.to(torch.int32).numpy(), rows.numpy(),
                            torch.zeros(3, dtype=torch.int64).numpy(),
                            torch.ones(3, dtype=torch.bool).numpy(), 100)
    with pytest.raises(ValueError, match="symbols must be"):
        kernel.count_update(tables.numpy(), rows.numpy(),
                            torch.zeros(4, dtype=torch.int64).numpy(),
                            torch.ones(3, dtype=torch.bool).numpy(), 100)
    with pytest.raises(ValueError, match="out of range"):
        kernel.count_update(tables.numpy(), (rows + 4).numpy(),
                            torch.zeros(3, dtype=torch.int64).numpy(),
                            torch.ones(3, dtype=torch.bool).numpy(), 100)
    with pytest.raises(ValueError, match="C-contiguous"):
        kernel.count_update(torch.zeros(256, 4, dtype=torch.int16).t().numpy(), rows.numpy(),
                            torch.zeros(3, dtype=torch.int64).numpy(),
                            torch.ones(3, dtype=torch.bool).numpy(), 100)
    assert not tables.any()  # nothing was written before a check failed


def test_count_update_writes_into_the_tensor(monkeypatch):
    """The kernel gets a numpy view of the mixer's tables: its writes are the tensor's."""
    monkeypatch.setenv("VORTEX_NATIVE", "1")
    kernel = native.mixing_kernel()
    tables = torch.zeros(4, 256, dtype=torch.int16)
    rows = torch.tensor([[0, 1, 1], [3, 3, 2]])
    kernel.count_update(tables.numpy(), rows.numpy(), torch.tensor([5, 6, 6]).numpy(),
                        torch.tensor([True, True, False]).numpy(), 100)
    assert tables.nonzero().tolist() == [[0, 5], [1, 6], [3, 5], [3, 6]]
    assert tables.sum() == 4


@pytest.mark.parametrize("native_kernel", ["1", "0"])
def test_cdfs_run_from_0_to_2_16_with_every_frequency_at_least_1(monkeypatch, native_kernel):
    monkeypatch.setenv("VORTEX_NATIVE", native_kernel)
    mixer, features = _random_mixer()
    cdf = mixer.cdf(40, *features).to(torch.int64)
    assert bool((cdf[:, 0] == 0).all()) and bool((cdf[:, -1] == 1 << 16).all())
    assert bool((cdf[:, 1:] - cdf[:, :-1] >= 1).all())


def test_counts_past_the_limit_are_scaled_down_not_wrapped():
    context = FrameContext(300 * 64, 64, 0)
    mixer = mixing.ContextMixer(context, out_resolution=16)
    logits = torch.zeros(context.lanes, 256)
    none = torch.full((context.lanes,), NONE)
    zeros = torch.zeros(context.lanes, dtype=torch.int64)
    for t in range(3):  # every lane sees the same context and byte: +300 per step
        mixer.cdf(t, logits, none, zeros, none)
        mixer.update(torch.full((context.lanes,), 7), torch.ones(context.lanes, dtype=torch.bool))
        context.advance(t, torch.full((context.lanes,), 7))
    assert int(mixer.tables.max()) == mixing.COUNT_LIMIT
    assert int(mixer.tables.min()) >= 0


@pytest.mark.parametrize("name", list(CASES))
def test_frame_round_trip(tiny_model, name):
    runtime = tiny_model.runtime("cpu")
    data = CASES[name]
    payload = encode_frame(runtime, data, lane_length=64, mixed=True)
    assert decode_frame(runtime, payload, len(data), mixed=True) == data


@pytest.mark.usefixtures("reference_only")
def test_reference_decodes_what_the_kernel_encoded(tiny_model, monkeypatch):
    runtime = tiny_model.runtime("cpu")
    data = CASES["telemetry"]
    monkeypatch.setenv("VORTEX_NATIVE", "1")
    payload = encode_frame(runtime, data, lane_length=64, mixed=True)
    monkeypatch.setenv("VORTEX_NATIVE", "0")
    assert decode_frame(runtime, payload, len(data), mixed=True) == data
    assert encode_frame(runtime, data, lane_length=64, mixed=True) == payload


@pytest.mark.parametrize("threads", [1, 2])
def test_payload_is_the_same_with_one_or_two_threads(tiny_model, threads):
    runtime = tiny_model.runtime("cpu")
    data = CASES["events"]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        payload = encode_frame(runtime, data, lane_length=64, mixed=True)
    finally:
        torch.set_num_threads(before)
    assert payload == encode_frame(runtime, data, lane_length=64, mixed=True)


def test_mixing_beats_the_model_alone_on_repetitive_records(tiny_model):
    runtime = tiny_model.runtime("cpu")
    rng = random.Random(3)
    records = [bytes(rng.randrange(256) for _ in range(24)) for _ in range(40)]
    data = b"".join(rng.choice(records) for _ in range(400))
    alone = encode_frame(runtime, data, lane_length=128)
    mixed = encode_frame(runtime, data, lane_length=128, mixed=True)
    assert len(mixed) < 0.8 * len(alone)


def test_a_payload_with_too_many_lanes_is_rejected(tiny_model):
    raw_size = layout.MAX_MIXED_LANES * 2 + 1
    header = layout.NeuralPayloadHeader.build({"lane_length": 2, "stride": 0})
    with pytest.raises(VortexFormatError, match="lanes"):
        decode_frame(tiny_model.runtime("cpu"), header + bytes(4), raw_size, mixed=True)


def test_lane_length_keeps_mixed_frames_within_the_lane_limit():
    assert default_lane_length(4 << 20) == 2048
    assert default_lane_length(1 << 20) == 512
    # Data that compresses well gets more, shorter lanes, so every step's stream stays long.
    lanes = -(-(4 << 20) // default_lane_length(4 << 20, bits_per_byte=0.3))
    assert lanes * 0.3 >= 0.99 * STREAM_TARGET_BITS  # lanes are whole: within 1%
    assert default_lane_length(4 << 20, bits_per_byte=0.001) == SHORTEST_LANE_LENGTH
    big = 1 << 28
    assert -(-big // default_lane_length(big, mixed=True)) <= layout.MAX_MIXED_LANES


def test_auto_does_not_offer_the_model_codecs(tiny_model):
    names = [codec.name for codec in FrameEncoder("auto", tiny_model, frame_size=1 << 20).codecs]
    assert names == ["stored", "zstd", "lzma", "cm"]


def test_cli_round_trip_and_inspect(tiny_model, tmp_path):
    source = tmp_path / "logs.bin"
    source.write_bytes(CASES["logs"])
    model_path = GOLDEN / "tiny.safetensors"
    archive = tmp_path / "logs.vtx"
    result = run_vortex("pack", str(source), "-o", str(archive), "--codec", "mixed",
                        "--model", str(model_path), "--frame-size", "4096")
    assert result.returncode == 0, result.stderr
    inspect = run_vortex("inspect", str(archive))
    assert b" mixed " in inspect.stdout
    restored = tmp_path / "restored.bin"
    result = run_vortex("unpack", str(archive), "-o", str(restored), "--model", str(model_path))
    assert result.returncode == 0, result.stderr
    assert restored.read_bytes() == source.read_bytes()


def test_corpus_file_round_trips(tiny_model):
    data = corpus_file("hep_hzz_events.rec").read_bytes()[:20000]
    runtime = tiny_model.runtime("cpu")
    payload = encode_frame(runtime, data, lane_length=256, mixed=True)
    assert decode_frame(runtime, payload, len(data), mixed=True) == data
    assert CodecId.MIXED == 4


def test_archives_record_the_lowest_minor_version_their_codecs_need(tiny_model):
    from vortexfmt.container.structures import parse_file_header

    data = CASES["logs"]
    for codec, frame_size, minor in (("mixed", 4096, 1), ("auto", 4096, 2), ("cm", 1024, 2),
                                     ("neural", 4096, 0), ("zstd", 4096, 0)):
        blob = vortexfmt.compress(data, codec=codec, model=tiny_model, frame_size=frame_size)
        assert parse_file_header(blob[:52]).version_minor == minor, (codec, frame_size)
