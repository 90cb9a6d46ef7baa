"""The context-mixing codec (id 5): its streams are torchac's, frames round-trip exactly in
any number of lanes, and a reader rejects what FORMAT.md "CM payload" tells it to."""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys

import pytest
from conftest import FIXTURES, GOLDEN, HANG_GUARD_S, SAMPLES, corpus_file, noise, run_vortex, text
from vortexfmt.spec import CodecId
from vortexfmt.spec import cm as layout

import vortexfmt
from vortexfmt import spec
from vortexfmt.codecs import cm
from vortexfmt.errors import FrameDamageError, VortexFormatError

SEEDS = sorted((FIXTURES / "seed").iterdir())


def _kernel():
    return cm._kernel()


def _bits(data: bytes):
    """The bits of `data`, most significant first, as torchac symbols."""
    import torch

    values = torch.frombuffer(bytearray(data), dtype=torch.uint8).to(torch.int16)
    shifts = torch.arange(7, -1, -1, dtype=torch.int16)
    return ((values.unsqueeze(1) >> shifts) & 1).reshape(-1)


def _binary_cdfs(probabilities: bytes):
    """torchac CDFs (0, 2^16 - p1, unused) of bits whose probability of a 1 is p1/2^16."""
    import torch

    p1 = torch.frombuffer(bytearray(probabilities), dtype=torch.int16).to(torch.int32) & 0xFFFF
    cdf = torch.zeros(len(p1), 3, dtype=torch.int32)
    cdf[:, 1] = 65536 - p1
    return cdf.to(torch.int16)  # torchac reads int16 as uint16


def _lane_bytes(data: bytes, lanes: int) -> list[bytes]:
    length = max(1, -(-len(data) // lanes))
    return [data[i * length:(i + 1) * length] for i in range(lanes)]


@pytest.mark.parametrize("lanes", [1, 3])
def test_streams_are_torchac_streams_of_the_bit_probabilities(lanes, torchac):
    import torch

    data = text(3000) + noise(500) + text(1000)
    streams, _ = _kernel().encode(data, lanes, 12, 0, False)
    probabilities = _kernel().probabilities(data, lanes, 12, 0)
    assert len(streams) == len(probabilities) == lanes
    for stream, p1, lane in zip(streams, probabilities, _lane_bytes(data, lanes), strict=True):
        cdf, bits = _binary_cdfs(p1), _bits(lane)
        p1_values = torch.frombuffer(bytearray(p1), dtype=torch.int16).to(torch.int32) & 0xFFFF
        assert int(p1_values.min()) >= 1 and int(p1_values.max()) <= 65535
        assert torchac.encode_int16_normalized_cdf(cdf, bits) == stream
        assert torch.equal(torchac.decode_int16_normalized_cdf(cdf, stream), bits)


def test_ideal_code_length_is_within_a_few_bytes_of_the_stream():
    data = text(20000)
    codec = cm.CmCodec()
    codec.encode(data)
    assert codec.stats.coded_bytes * 8 - codec.stats.ideal_bits < 8 * 4
    assert codec.stats.ideal_bits <= codec.stats.coded_bytes * 8


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_samples_round_trip(name):
    data = SAMPLES[name]
    blob = vortexfmt.compress(data, codec="cm", frame_size=4096)
    assert vortexfmt.decompress(blob) == data


@pytest.mark.parametrize("seed_file", SEEDS, ids=lambda path: path.name)
def test_seed_files_round_trip(seed_file):
    data = seed_file.read_bytes()
    blob = vortexfmt.compress(data, codec="cm", frame_size=1 << 20)
    assert len(blob) < len(vortexfmt.compress(data, codec="lzma", frame_size=1 << 20))
    assert vortexfmt.decompress(blob) == data


@pytest.mark.parametrize("lanes", [1, 2, 3, 7, 64])
def test_lanes_round_trip_with_repeats_across_lanes(lanes):
    # Repeats a lane sees in other lanes, so that the match model reaches across lanes:
    # a decoder that read a byte it does not know yet would go wrong here.
    data = (text(2000) + noise(300, 7)) * 5 + bytes(range(256)) * 3
    codec = cm.CmCodec(lanes=lanes)
    payload = codec.encode(data)
    header, streams = cm.parse_payload(payload, len(data))
    assert header.lanes == lanes and len(streams) == lanes
    assert codec.decode(payload, len(data)) == data


# Sizes around the two-thread encoder's chunks of 256 bytes and its ring of 16 of them.
@pytest.mark.parametrize("size", [0, 1, 255, 256, 257, 16 * 256, 16 * 256 + 1, 50_000])
@pytest.mark.parametrize("lanes", [1, 3, 64])
def test_two_threads_encode_the_payload_one_thread_does(size, lanes):
    data = ((text(3000) + noise(700, 3)) * 20)[:size]
    stats = cm.CmCodec(lanes=lanes), cm.CmCodec(lanes=lanes)
    assert stats[1].encode(data, threads=2) == stats[0].encode(data)
    assert stats[1].stats == stats[0].stats  # the ideal code length too


def test_two_threads_encode_the_golden_payloads(monkeypatch):
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    encode = cm.CmCodec.encode
    monkeypatch.setattr(cm.CmCodec, "encode",
                        lambda self, raw, stop=None, threads=1: encode(self, raw, stop, 2))
    assert make_golden.compute_cm() == json.loads((GOLDEN / "cm.json").read_text())


def test_the_kernel_encodes_on_one_or_two_threads_only():
    for threads in (0, 3):
        with pytest.raises(ValueError, match="threads must be 1 or 2"):
            _kernel().encode(b"abc", 1, 10, 0, False, None, threads)


MEMORY_LIMITED_CODING = """
import resource, sys
from vortexfmt import native
kernel = native.cm_kernel()  # built by the test's process already
with open("/proc/self/status") as status:
    used = next(int(line.split()[1]) << 10 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + (2 << 30), resource.RLIM_INFINITY))
# table bits 24: 18 tables of 1 GiB each, more than the limit leaves
for name, code in [
        ("encode", lambda: kernel.encode(b"abc", 1, 24, 0, False, None, 1)),
        ("encode on two threads", lambda: kernel.encode(b"abc", 1, 24, 0, False, None, 2)),
        ("decode", lambda: kernel.decode(b"ab", [(0, 2)], 3, 24, 0))]:
    try:
        code()
    except MemoryError:
        print(name, "MemoryError")
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")
def test_tables_that_cannot_be_allocated_raise_memory_error_and_the_process_lives_on():
    """The kernel's loops are compiled once per CPU kind (GCC target_clones), and such a
    function ends the process if an exception reaches it: they catch what they throw."""
    _kernel()
    done = subprocess.run([sys.executable, "-c", MEMORY_LIMITED_CODING], capture_output=True,
                          text=True, timeout=HANG_GUARD_S)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["encode MemoryError", "encode on two threads MemoryError",
                                        "decode MemoryError"]


def test_more_lanes_than_bytes_take_one_lane_per_byte():
    codec = cm.CmCodec(lanes=10)
    payload = codec.encode(b"abc")
    assert cm.parse_payload(payload, 3)[0].lanes == 3
    assert codec.decode(payload, 3) == b"abc"


def test_incompressible_frame_costs_a_few_bytes_over_its_size():
    data = noise(50000, 9)
    payload = cm.CmCodec().encode(data)
    assert len(payload) < len(data) * 1.01


def test_table_size_grows_with_the_frame_up_to_its_limit():
    assert cm.table_bits_for(0) == cm.table_bits_for(100) == cm.MIN_TABLE_BITS
    assert cm.table_bits_for(1 << 16) == 14  # a bucket per 8 bytes: 2^13 buckets, rounded up
    assert cm.table_bits_for(1 << 20) == 18
    assert cm.table_bits_for(4 << 20) == cm.DEFAULT_MAX_TABLE_BITS
    assert layout.MIN_TABLE_BITS <= cm.MIN_TABLE_BITS
    assert cm.DEFAULT_MAX_TABLE_BITS <= layout.MAX_TABLE_BITS


def test_archives_of_cm_frames_record_no_model_and_minor_version_2_or_3():
    # 1.3 where frames may be large enough for cm to search for a numeric transform
    for frame_size, minor in ((4 << 20, 3), (60 << 10, 2)):
        blob = vortexfmt.compress(text(10000), codec="cm", frame_size=frame_size)
        with vortexfmt.open(io.BytesIO(blob)) as archive:
            header = archive.header
        assert header.model_id == bytes(32)
        assert header.version_minor == minor


# --- What a reader rejects ---------------------------------------------------------------------

def _payload(data: bytes = b"hello, hello, hello", lanes: int = 2) -> bytes:
    return cm.CmCodec(lanes=lanes).encode(data)


def _with_header(payload: bytes, raw_size: int, **fields) -> bytes:
    header, streams = cm.parse_payload(payload, raw_size)
    values = {key: header[key] for key in ("revision", "flags", "table_bits", "stride",
                                           "lanes")}
    values.update(fields)
    start = streams[0][0] - len(layout.StreamLengths.build(
        {"lengths": [length for _, length in streams]}, lanes=header.lanes))
    return layout.CmPayloadHeader.build(values) + payload[start:]


@pytest.mark.parametrize(("fields", "message"), [
    ({"revision": 2}, "revision 2"),
    ({"flags": 4}, "unknown flags"),  # bit 0 numeric, bit 1 primed (format 1.3)
    ({"flags": 0x84}, "unknown flags"),
    ({"flags": layout.FLAG_PRIMED}, "a primed frame has one"),  # _payload has 2 lanes
    ({"table_bits": layout.MIN_TABLE_BITS - 1}, "table_bits"),
    ({"table_bits": layout.MAX_TABLE_BITS + 1}, "table_bits"),
    ({"table_bits": layout.MIN_TABLE_BITS + 1}, "table_bits"),  # 19 bytes: 2^10 at most
    ({"stride": layout.MAX_STRIDE + 1}, "stride"),
])
def test_reader_rejects_bad_header_fields(fields, message):
    data = b"hello, hello, hello"
    payload = _with_header(_payload(data), len(data), **fields)
    with pytest.raises(VortexFormatError, match=message):
        cm.CmCodec().decode(payload, len(data))


def test_reader_rejects_more_lanes_than_bytes_and_zero_lanes():
    data = b"hello, hello, hello"
    payload = _payload(data)
    for lanes in (0, len(data) + 1):
        with pytest.raises(VortexFormatError):
            cm.CmCodec().decode(_with_header(payload, len(data), lanes=lanes), len(data))


@pytest.mark.parametrize("cut", [0, 1, 4, 6, -1])
def test_reader_rejects_truncated_payloads_and_extra_bytes(cut):
    data = b"hello, hello, hello"
    payload = _payload(data)
    with pytest.raises(VortexFormatError):
        cm.CmCodec().decode(payload[:cut] if cut >= 0 else payload + b"\0", len(data))


def test_table_size_a_reader_accepts_grows_with_the_frame():
    assert layout.max_table_bits(1) == layout.max_table_bits(1024) == layout.MIN_TABLE_BITS
    assert layout.max_table_bits(1025) == 11
    assert layout.max_table_bits(4 << 20) == layout.max_table_bits(1 << 28) == 22
    for raw_size in (1, 100, 5000, 1 << 20, 4 << 20, 1 << 28):  # the writer stays within
        assert cm.table_bits_for(raw_size) <= layout.max_table_bits(raw_size)


def test_padded_leb128_values_are_read_as_lebs():
    data = b"hello, hello, hello"
    payload = _payload(data, lanes=1)
    (offset, length), = cm.parse_payload(payload, len(data))[1]
    assert length < 0x80  # one LEB128 byte, which the padded form below spells in two
    fixed = payload[:5]  # revision, flags, table_bits, stride
    padded = fixed + b"\x81\x00" + bytes([0x80 | length, 0x00]) + payload[offset:]
    assert cm.CmCodec().decode(padded, len(data)) == data


def test_damaged_stream_is_reported_as_a_damaged_frame():
    data = text(20000)
    blob = bytearray(vortexfmt.compress(data, codec="cm"))
    blob[200] ^= 0x10  # inside the first frame's streams
    with pytest.raises(FrameDamageError):
        vortexfmt.decompress(bytes(blob))


def _random_payload(seed: int, lengths: tuple[int, int]) -> bytes:
    streams = [noise(lengths[0], seed), noise(lengths[1], seed + 100)]
    header = layout.CmPayloadHeader.build({"revision": 1, "flags": 0, "table_bits": 10,
                                           "stride": seed, "lanes": 2})
    header += layout.StreamLengths.build({"lengths": [len(s) for s in streams]}, lanes=2)
    return header + b"".join(streams)


def test_random_streams_decode_to_the_right_size_without_crashing():
    """Random bytes long enough for their lanes (250 bytes each) decode to garbage of the
    right size, which the frame checksum then rejects."""
    for seed in range(20):
        raw = cm.CmCodec().decode(_random_payload(seed, (400 + seed, 300)), 500)
        assert len(raw) == 500


@pytest.mark.parametrize("stream", [b"", b"\x00", noise(3, 1)], ids=["empty", "zero", "noise"])
def test_a_stream_far_too_short_for_its_lane_is_damage(stream):
    """The decoder reads zeros past a stream's end, but no encoder's stream is read more
    than 30 bits past it: at 64 the lane is damaged, and decoding stops there (within
    about 360 KB) instead of going on for all the 8 MiB the frame claims."""
    payload = layout.CmPayloadHeader.build({"revision": 1, "flags": 0, "table_bits": 10,
                                            "stride": 0, "lanes": 1})
    payload += spec.encode_leb128(len(stream)) + stream
    with pytest.raises(VortexFormatError, match="lane 0's stream ends before its bytes do"):
        cm.CmCodec().decode(payload, 8 << 20)


# --- Golden vectors and real files --------------------------------------------------------------

def test_golden_payloads_are_unchanged():
    """tests/golden/cm.json pins the model's arithmetic on every machine: any change is a
    change of the format (a new revision), never a silent drift."""
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    make_golden = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_golden)
    expected = json.loads((GOLDEN / "cm.json").read_text())
    assert make_golden.compute_cm() == expected


@pytest.mark.parametrize("name", ["net_http.pcap", "hep_hzz_events.rec"])
def test_corpus_slices_round_trip_through_the_cli(tmp_path, name):
    source = tmp_path / name
    source.write_bytes(corpus_file(name).read_bytes()[:150_000])
    packed = run_vortex("pack", source, "--codec", "cm", "-q", timeout=HANG_GUARD_S)
    assert packed.returncode == 0, packed.stderr
    out = tmp_path / "out"
    unpacked = run_vortex("unpack", f"{source}.vtx", "-o", out, "-q", timeout=HANG_GUARD_S)
    assert unpacked.returncode == 0, unpacked.stderr
    assert out.read_bytes() == source.read_bytes()


def test_codec_id_and_name():
    from vortexfmt.codecs import CODEC_IDS, codec_name

    assert CODEC_IDS["cm"] == CodecId.CM == 5
    assert codec_name(5) == "cm"


def test_an_installation_without_its_kernel_says_to_reinstall(monkeypatch):
    """The kernel is built by `pip install`; a tree where it is missing fails clearly,
    never by quietly packing without cm."""
    from vortexfmt import native

    blob = vortexfmt.compress(text(3000), codec="cm")
    monkeypatch.setitem(sys.modules, "vortexfmt._cm_kernel", None)  # import raises
    with pytest.raises(native.KernelUnavailableError, match="reinstall vortexfmt"):
        vortexfmt.decompress(blob)
    with pytest.raises(native.KernelUnavailableError, match="reinstall vortexfmt"):
        vortexfmt.compress(text(3000))


# --- Stopping a long frame -------------------------------------------------------------------


class StopAfter:
    """A stand-in for threading.Event that says "stop" from its `calls`-th poll on, and
    counts the polls (one per 64 KiB coded); or, given `interrupt_at`, presses Ctrl-C
    (simulates SIGINT) at that poll and never says "stop" itself."""

    def __init__(self, calls: int | None = None, interrupt_at: int | None = None) -> None:
        self.calls, self.interrupt_at, self.polls = calls, interrupt_at, 0

    def is_set(self) -> bool:
        import _thread

        self.polls += 1
        if self.polls == self.interrupt_at:
            _thread.interrupt_main()
        return self.calls is not None and self.polls >= self.calls


@pytest.mark.parametrize("threads", [1, 2])
def test_a_set_stop_event_stops_encoding_and_decoding_within_64_kib(threads):
    from vortexfmt.errors import CodingCancelled

    data = text(5 * 65536 + 100)
    payload = cm.CmCodec().encode(data)
    stop = StopAfter(calls=2)
    with pytest.raises(CodingCancelled, match="encoding cancelled"):
        cm.CmCodec().encode(data, stop=stop, threads=threads)
    assert stop.polls == 2  # after 128 KiB of 320, not at the end
    stop = StopAfter(calls=1)
    with pytest.raises(CodingCancelled, match="decoding cancelled"):
        cm.CmCodec().decode(payload, len(data), stop=stop)
    assert stop.polls == 1
    never = StopAfter()
    assert cm.CmCodec().decode(payload, len(data), stop=never) == data
    assert never.polls == 5


@pytest.mark.parametrize("direction", ["encode", "encode on two threads", "decode"])
def test_ctrl_c_stops_a_frame_coded_on_the_main_thread(direction):
    """Ctrl-C pressed during the second 64 KiB raises KeyboardInterrupt at the next poll,
    from inside the kernel: there is no third poll."""
    import signal

    data = text(5 * 65536 + 100)
    payload = cm.CmCodec().encode(data)
    stop = StopAfter(interrupt_at=2)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a shell
    try:
        with pytest.raises(KeyboardInterrupt):
            if direction.startswith("encode"):
                cm.CmCodec().encode(data, stop=stop, threads=2 if "two" in direction else 1)
            else:
                cm.CmCodec().decode(payload, len(data), stop=stop)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stop.polls == 2


class Answer:
    def __init__(self, value) -> None:
        self.value = value

    def is_set(self):
        return self.value


class Unanswerable:
    def __bool__(self):
        raise LookupError("no answer")


@pytest.mark.parametrize("answer, error", [(Answer(Unanswerable()), LookupError),
                                           (object(), AttributeError)],
                         ids=["bool-fails", "no-is_set"])
def test_a_stop_event_that_fails_raises_its_error(answer, error):
    with pytest.raises(error):
        cm.CmCodec().encode(text(70_000), stop=answer)
