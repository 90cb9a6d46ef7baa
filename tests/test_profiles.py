"""Profiles: a cm warm start trained for a format (FORMAT.md "Profiles" and "Primed frames").

A profile file is safetensors + JSON, identified by the SHA-256 of its canonical bytes; a
cm frame coded with it is flagged primed, and its archive records the profile's id, which
a reader needs (given, or found along the profile search path) to decode it.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import sys

import pytest
from conftest import HANG_GUARD_S, noise, run_vortex, text
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vortexfmt.spec import CodecId, max_payload_size
from vortexfmt.spec import cm as layout

import vortexfmt
from vortexfmt import limits, native
from vortexfmt.codecs import frame_need
from vortexfmt.codecs.cm import CmCodec, parse_header, parse_payload, table_bits_for
from vortexfmt.container.layout import read_layout
from vortexfmt.errors import ModelMismatchError, VortexFormatError
from vortexfmt.profiles import Profile, ProfileError, ProfileSettings, load_profile, save_profile
from vortexfmt.profiles import files as profile_files
from vortexfmt.profiles.codec import primed_cm_codec
from vortexfmt.profiles.search import find_by_id

SETTINGS = ProfileSettings("log", 12, 0)


def records(count: int, seed: int = 0) -> bytes:
    """Records of one made-up format: a counter, a small value and a tag."""
    out = bytearray()
    for i in range(count):
        out += struct.pack("<IhH8s", seed * 1000 + i, (i * 37 + seed) % 500 - 250, i % 7,
                           b"evt%05d" % (i % 300))
    return bytes(out)


@pytest.fixture
def profile(tmp_path) -> Profile:
    return save_profile(tmp_path / "log.vxprofile", Profile(SETTINGS, records(2000, seed=1)))


@pytest.fixture(autouse=True)
def no_profile_dirs(tmp_path, monkeypatch):
    """No profile is found but where a test puts it."""
    monkeypatch.delenv("VORTEX_PROFILE_PATH", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))


# --- Profile files -------------------------------------------------------------------------------

def test_profile_file_round_trip_keeps_settings_priming_bytes_and_id(profile):
    loaded = load_profile(profile.path)
    assert loaded.settings == SETTINGS
    assert loaded.prime == profile.prime
    assert loaded.profile_id == profile.profile_id


def test_profile_id_is_the_sha256_of_the_canonical_bytes(profile):
    config = b'{"format":"log","layout":null,"stride":0,"table_bits":12}'
    canonical = b"vortex-profile\0" + b"1\0" + config + b"\0" + profile.prime
    assert profile.profile_id == hashlib.sha256(canonical).digest()


def test_profile_id_does_not_depend_on_the_file_layout(profile, tmp_path):
    # the same profile, its JSON header written in another key order, spaced and padded
    header = {PRIME: {"data_offsets": [0, len(profile.prime)], "shape": [len(profile.prime)],
                      "dtype": "U8"},
              "__metadata__": {"vortex.version": "1", "vortex.format": "vortex-profile",
                               "vortex.profile": json.dumps(SETTINGS.to_dict(), indent=1)}}
    other = tmp_path / "other.vxprofile"
    _write_safetensors(other, json.dumps(header, indent=2).encode() + b"    ", profile.prime)
    assert load_profile(other).profile_id == profile.profile_id


def test_profile_id_changes_with_any_setting_or_priming_byte(profile):
    ids = {profile.profile_id}
    for changed in (ProfileSettings("log2", 12, 0), ProfileSettings("log", 13, 0),
                     ProfileSettings("log", 12, 16), ProfileSettings("log", 12, 0, "i32")):
        ids.add(Profile(changed, profile.prime).profile_id)
    ids.add(Profile(SETTINGS, profile.prime[:-1] + b"\xff").profile_id)
    assert len(ids) == 6


def test_profile_files_are_plain_safetensors(profile):
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = safetensors_numpy.load_file(str(profile.path))
    assert list(tensors) == ["prime"]
    assert tensors["prime"].dtype.name == "uint8"
    assert tensors["prime"].tobytes() == profile.prime


# --- Hostile profile files -----------------------------------------------------------------------

PRIME = "prime"


def _write_safetensors(path, header: bytes, data: bytes) -> None:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def _header(prime_size: int, *, settings=None, dtype="U8", shape=None, offsets=None,
            extra_tensor=False, fmt="vortex-profile", version="1") -> bytes:
    tensors = {PRIME: {"dtype": dtype, "shape": shape or [prime_size],
                       "data_offsets": offsets or [0, prime_size]}}
    if extra_tensor:
        tensors["other"] = {"dtype": "U8", "shape": [0], "data_offsets": [prime_size,
                                                                         prime_size]}
    metadata = {"vortex.format": fmt, "vortex.version": version,
                "vortex.profile": json.dumps(settings or SETTINGS.to_dict())}
    return json.dumps({"__metadata__": metadata, **tensors}).encode()


HOSTILE = {
    "not a profile": lambda: (_header(8, fmt="vortex-model"), bytes(8)),
    "a newer version": lambda: (_header(8, version="2"), bytes(8)),
    "two tensors": lambda: (_header(8, extra_tensor=True), bytes(8)),
    "another dtype": lambda: (_header(8, dtype="I32"), bytes(8)),
    "a shape beyond the data": lambda: (_header(8, shape=[1 << 40]), bytes(8)),
    "offsets beyond the data": lambda: (_header(8, offsets=[0, 1 << 40]), bytes(8)),
    "no priming bytes": lambda: (_header(0), b""),
    "bytes after the tensor": lambda: (_header(8), bytes(9)),
    "table_bits out of range": lambda: (_header(8, settings={**SETTINGS.to_dict(),
                                                              "table_bits": 40}), bytes(8)),
    "stride out of range": lambda: (_header(8, settings={**SETTINGS.to_dict(),
                                                          "stride": 5000}), bytes(8)),
    "an unknown setting": lambda: (_header(8, settings={**SETTINGS.to_dict(), "x": 1}),
                                   bytes(8)),
    "settings not JSON": lambda: (_header(8, settings="{"), bytes(8)),
    "a name that is not ASCII": lambda: (_header(8, settings={**SETTINGS.to_dict(),
                                                               "format": "Zürich"}), bytes(8)),
    "a layout with a control character": lambda: (
        _header(8, settings={**SETTINGS.to_dict(), "layout": "<i4\n"}), bytes(8)),
    "a missing setting": lambda: (_header(8, settings={
        k: v for k, v in SETTINGS.to_dict().items() if k != "layout"}), bytes(8)),
    "a header that is not JSON": lambda: (b"\xff" * 16, bytes(8)),
    "a header nested too deeply for a parser": lambda: (b"[" * 5000, bytes(8)),
    "settings nested too deeply for a parser": lambda: (_header(8, settings="[" * 5000),
                                                        bytes(8)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_profile_files_are_refused(tmp_path, case):
    path = tmp_path / "bad.vxprofile"
    _write_safetensors(path, *HOSTILE[case]())
    with pytest.raises(ProfileError, match="bad.vxprofile"):
        load_profile(path)


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_as_a_profile_is_refused_without_waiting_for_a_writer(tmp_path):
    """Opening a FIFO for reading blocks until a writer comes: a profile search must never
    do that (a subprocess, so that a regression fails by the guard instead of hanging)."""
    import os
    import subprocess

    fifo = tmp_path / "a.vxprofile"
    os.mkfifo(fifo)
    script = ("import sys; from vortexfmt.profiles import ProfileError, load_profile\n"
              "try:\n    load_profile(sys.argv[1])\n"
              "except ProfileError as error:\n    print(error)")
    result = subprocess.run([sys.executable, "-c", script, str(fifo)], capture_output=True,
                            text=True, timeout=HANG_GUARD_S)
    assert result.stdout.strip() == f"{fifo}: not a profile (not a regular file)"


def test_a_hostile_file_on_the_search_path_does_not_hide_the_right_profile(profile, tmp_path):
    data = records(300, seed=5)
    archive = tmp_path / "a.vtx"
    archive.write_bytes(vortexfmt.compress(data, model=profile.path, frame_size=4096))
    _write_safetensors(tmp_path / "0-nested.vxprofile", b"[" * 5000, bytes(8))  # first
    with vortexfmt.open(archive) as reader:  # finds log.vxprofile beside it by id
        assert reader.read() == data


def test_a_declared_header_length_beyond_the_bounds_is_refused_unread(tmp_path):
    path = tmp_path / "huge-header.vxprofile"
    path.write_bytes(struct.pack("<Q", 1 << 62) + b"{}")
    with pytest.raises(ProfileError, match="header of"):
        load_profile(path)


def test_a_file_larger_than_any_profile_is_refused_before_it_is_read(tmp_path):
    path = tmp_path / "huge.vxprofile"
    with open(path, "wb") as handle:  # sparse: no disk is used
        handle.truncate(profile_files.MAX_PROFILE_FILE_SIZE + 1)
    with pytest.raises(ProfileError, match="larger than a profile may be"):
        load_profile(path)


def test_saving_a_profile_names_its_path_in_errors_not_the_temporary_file(tmp_path):
    target = tmp_path / "gone" / "p.vxprofile"
    with pytest.raises(FileNotFoundError) as caught:
        save_profile(target, Profile(SETTINGS, records(20)))
    assert caught.value.filename == str(target)
    assert not (tmp_path / "gone").exists()


def test_a_truncated_profile_is_refused(profile, tmp_path):
    path = tmp_path / "cut.vxprofile"
    path.write_bytes(profile.path.read_bytes()[:-1])
    with pytest.raises(ProfileError):
        load_profile(path)


def test_profiles_hold_a_bounded_number_of_priming_bytes():
    with pytest.raises(ValueError, match="priming bytes"):
        Profile(SETTINGS, bytes(layout.MAX_PRIME_SIZE + 1))


# --- Priming in the kernel -----------------------------------------------------------------------

kernel = native.cm_kernel()


def _primed_round_trip(data: bytes, prime: bytes, table_bits: int, stride: int,
                       threads: int = 1) -> bytes:
    streams, _ = kernel.encode(data, 1, table_bits, stride, False, None, threads, prime)
    payload = b"".join(streams)
    assert kernel.decode(payload, [(0, len(payload))], len(data), table_bits, stride, None,
                         prime) == data
    return payload


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(min_size=1, max_size=3000), prime=st.binary(min_size=1, max_size=3000),
       stride=st.sampled_from([0, 3, 12]))
def test_priming_is_learnt_identically_in_encode_and_decode(data, prime, stride):
    one_thread = _primed_round_trip(data, prime, 10, stride, threads=1)
    assert _primed_round_trip(data, prime, 10, stride, threads=2) == one_thread


def test_priming_with_the_same_format_makes_a_small_frame_smaller():
    prime, frame = records(3000, seed=1), records(600, seed=2)
    cold = _primed_round_trip(frame, b"", 12, 16)
    warm = _primed_round_trip(frame, prime, 12, 16)
    assert len(warm) < len(cold) * 0.8


def test_a_primed_frame_decoded_with_other_priming_bytes_is_not_the_frame():
    frame, prime = records(300, seed=2), records(1000, seed=1)
    payload = _primed_round_trip(frame, prime, 12, 16)
    # the model is not the encoder's: what it decodes is noise, which the stream is far too
    # short for (a 300-record frame in about 1.5 KB)
    with pytest.raises(kernel.StreamOverrun, match="lane 0's stream ends"):
        kernel.decode(payload, [(0, len(payload))], len(frame), 12, 16, None,
                      prime[:-1] + bytes([prime[-1] ^ 1]))


def test_a_primed_frame_has_one_lane():
    with pytest.raises(ValueError, match="one lane"):
        kernel.encode(b"abcd", 2, 10, 0, False, None, 1, b"xy")
    with pytest.raises(ValueError, match="one lane"):
        kernel.decode(b"ab", [(0, 1), (1, 1)], 4, 10, 0, None, b"xy")


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frames=st.lists(st.binary(max_size=2000), min_size=1, max_size=3),
       prime=st.binary(min_size=1, max_size=3000), stride=st.sampled_from([0, 1, 3, 12]))
def test_a_frame_coded_from_a_learnt_model_is_the_frame_coded_after_learning(frames, prime,
                                                                              stride):
    # the model that learnt the priming bytes once, copied for each frame, codes every
    # frame as learning the priming bytes again before it does: the same payload
    learnt = kernel.learn_primed_model(prime, 10, stride)
    assert learnt.prime_size == len(prime)
    for data in frames:
        payload = _primed_round_trip(data, prime, 10, stride)
        for threads in (1, 2):  # on two threads, each stage starts from a copy of its part
            streams, _ = kernel.encode(data, 1, 10, stride, False, None, threads,
                                       primed_model=learnt)
            assert b"".join(streams) == payload
        assert kernel.decode(payload, [(0, len(payload))], len(data), 10, stride,
                             primed_model=learnt) == data


def test_training_never_picks_table_bits_a_profile_cannot_hold(tmp_path, monkeypatch):
    """Frames of 512 KiB or more may have tables of 2^19 buckets and more, a profile at most
    2^18: train measured 19 and then failed to write the profile."""
    from vortexfmt.profiles import train
    from vortexfmt.profiles.files import MAX_PROFILE_TABLE_BITS

    monkeypatch.setattr(train.cm_layout, "max_table_bits", lambda size: 22)  # huge frames
    path = tmp_path / "records.bin"
    path.write_bytes(records(6000))
    trained = train.train_profile([path], "records", frame_size=16 << 10, prime_size=4096)
    assert trained.profile.settings.table_bits <= MAX_PROFILE_TABLE_BITS
    assert {trial.table_bits for trial in trained.trials} <= {16, 18}


def test_a_frame_too_large_to_prime_within_the_readers_limit_is_coded_cold(monkeypatch):
    """A primed frame counts the learnt model twice: the writer primes no frame that a
    reader would refuse by default (above about 170 MiB), and codes it as without a
    profile. Here the limit is lowered so that a small frame is such a frame."""
    profile = Profile(ProfileSettings("records", 16, 16), records(4000, seed=1))
    data = records(500, seed=2)
    codec = CmCodec(profile=profile)
    assert parse_header(codec.encode(data), len(data))[0].flags & layout.FLAG_PRIMED
    need = limits.cm_frame_memory(len(data), max_payload_size(len(data)),
                                  min(16, layout.max_table_bits(len(data))), 1, primed=True)
    monkeypatch.setattr(limits, "DEFAULT_MEMORY_LIMIT", need - 1)
    payload = codec.encode(data)
    header, _ = parse_header(payload, len(data))
    assert header.flags == 0 and header.table_bits == table_bits_for(len(data))
    assert payload == CmCodec().encode(data)
    assert codec.decode(payload, len(data)) == data


def test_a_primed_codec_encodes_on_two_threads_the_payload_of_one():
    """A frame large enough for the writer's second thread (64 KiB), primed."""
    profile = Profile(ProfileSettings("records", 16, 16), records(4000, seed=1))
    data = records(5000, seed=2)
    assert len(data) >= 64 << 10
    codec = CmCodec(profile=profile)
    payload = codec.encode(data, threads=2)
    assert payload == codec.encode(data, threads=1)
    assert codec.decode(payload, len(data)) == data


def test_a_learnt_model_codes_only_frames_of_its_settings_in_one_lane():
    learnt = kernel.learn_primed_model(b"0123456789", 10, 12)
    for table_bits, stride in ((11, 12), (10, 0)):
        with pytest.raises(ValueError, match="other table bits or stride"):
            kernel.encode(b"abcd", 1, table_bits, stride, False, primed_model=learnt)
        with pytest.raises(ValueError, match="other table bits or stride"):
            kernel.decode(b"ab", [(0, 2)], 4, table_bits, stride, primed_model=learnt)
    with pytest.raises(ValueError, match="one lane"):
        kernel.encode(b"abcd", 2, 10, 12, False, primed_model=learnt)
    with pytest.raises(ValueError, match="priming bytes and a primed model"):
        kernel.encode(b"abcd", 1, 10, 12, False, prime=b"xy", primed_model=learnt)
    with pytest.raises(ValueError, match="needs priming bytes"):
        kernel.learn_primed_model(b"", 10, 12)


def test_learning_priming_bytes_stops_when_asked():
    import threading

    stop = threading.Event()
    stop.set()
    with pytest.raises(kernel.Cancelled):
        kernel.learn_primed_model(text(200_000), 12, 0, stop)


def test_without_priming_bytes_payloads_are_those_of_revision_1_as_before():
    data = text(5000)
    assert kernel.encode(data, 1, 12, 0, False, None, 1, b"") == \
        kernel.encode(data, 1, 12, 0, False)


# --- Primed frames in archives -------------------------------------------------------------------

def test_a_profile_archive_records_the_profile_and_flags_its_cm_frames(profile):
    data = records(3000, seed=3)
    blob = vortexfmt.compress(data, codec="cm", frame_size=16 << 10, model=profile.path)
    header = read_layout(io.BytesIO(blob)).header
    assert header.model_id == profile.profile_id
    assert header.version_minor == 3
    payload = _first_payload(blob)
    cm_header, _ = parse_header(payload, 16 << 10)
    assert cm_header.flags == layout.FLAG_PRIMED and cm_header.lanes == 1
    assert cm_header.stride == SETTINGS.stride and cm_header.table_bits == SETTINGS.table_bits
    assert vortexfmt.decompress(blob, model=profile.path) == data
    assert vortexfmt.decompress(blob, model=profile) == data
    cold = vortexfmt.compress(data, codec="cm", frame_size=16 << 10)
    assert len(blob) < len(cold)


def _first_payload(blob: bytes) -> bytes:
    entry = read_layout(io.BytesIO(blob)).frames[0]
    start = entry.frame_offset + 32
    return blob[start:start + entry.payload_size]


def test_auto_with_a_profile_keeps_the_classical_codecs_and_primes_cm(profile):
    data = records(2000, seed=4) + noise(3000)
    blob = vortexfmt.compress(data, frame_size=8 << 10, model=profile.path)
    assert vortexfmt.decompress(blob, model=profile.path) == data


def test_an_archive_of_a_profile_fails_cleanly_without_it(profile):
    blob = vortexfmt.compress(records(1000), codec="cm", frame_size=8 << 10,
                              model=profile.path)
    with pytest.raises(ModelMismatchError, match=profile.hex_id[:16]):
        vortexfmt.decompress(blob)


def test_an_archive_of_a_profile_fails_cleanly_with_another(profile, tmp_path):
    other = save_profile(tmp_path / "other.vxprofile",
                         Profile(ProfileSettings("log", 12, 16), profile.prime))
    blob = vortexfmt.compress(records(1000), codec="cm", frame_size=8 << 10,
                              model=profile.path)
    with pytest.raises(ModelMismatchError, match=f"{profile.hex_id[:16]}.*{other.hex_id[:16]}"):
        vortexfmt.decompress(blob, model=other.path)


def test_a_primed_frame_in_an_archive_that_records_no_profile_is_damage(profile):
    blob = bytearray(vortexfmt.compress(records(500), codec="cm", frame_size=8 << 10))
    entry = read_layout(io.BytesIO(bytes(blob))).frames[0]
    flags_at = entry.frame_offset + 32 + 1  # the cm payload's `flags`
    blob[flags_at] |= layout.FLAG_PRIMED  # no checksum covers the payload's bytes
    with pytest.raises(VortexFormatError, match="records no profile"):
        vortexfmt.decompress(bytes(blob), model=profile.path)


def test_a_codec_learns_the_priming_bytes_once_and_codes_each_frame_as_if_it_learnt_them():
    prime = records(2000, seed=1)
    codec = CmCodec(profile=Profile(SETTINGS, prime))
    frames = [records(400, seed=seed) for seed in (2, 3)] + [records(40, seed=4)]
    payloads = [codec.encode(frame) for frame in frames]
    for frame, payload in zip(frames, payloads, strict=True):
        header, streams = parse_payload(payload, len(frame))
        expected, _ = kernel.encode(frame, 1, header.table_bits, header.stride, False,
                                    prime=prime)  # learning the priming bytes for this frame
        assert payload.endswith(b"".join(expected))
    # the last frame is short enough for smaller tables: other settings, learnt again
    settings = {parse_header(p, len(f))[0].table_bits
                for p, f in zip(payloads, frames, strict=True)}
    assert len(settings) == 2
    reader = CmCodec(profile=Profile(SETTINGS, prime))
    for frame, payload in reversed(list(zip(frames, payloads, strict=True))):
        assert reader.decode(payload, len(frame)) == frame


def test_a_primed_frame_needs_the_priming_bytes_and_the_learnt_model_bound_in_memory():
    payload = CmCodec(profile=Profile(SETTINGS, b"0123456789")).encode(text(2000))
    plain = CmCodec().encode(text(2000))
    primed_need = frame_need(CodecId.CM, payload, 2000)
    table_bits = parse_header(payload, 2000)[0].table_bits
    assert table_bits == min(SETTINGS.table_bits, layout.max_table_bits(2000))  # capped
    assert primed_need.memory == limits.cm_frame_memory(2000, len(payload), table_bits, 1,
                                                        primed=True)
    # the model that learnt the priming bytes is kept, and copied for each frame
    assert primed_need.memory - limits.cm_frame_memory(2000, len(payload), table_bits, 1) \
        == limits.cm_table_bytes(table_bits) + limits.CM_MODEL_BYTES + 3 * layout.MAX_PRIME_SIZE
    assert frame_need(CodecId.CM, plain, 2000).memory < primed_need.memory


def test_a_profile_primes_cm_only(profile):
    with pytest.raises(ValueError, match="primes the cm codec"):
        vortexfmt.compress(b"abc", codec="lzma", model=profile.path)


def test_a_primed_frame_has_no_numeric_transform():
    with_layout = Profile(ProfileSettings("f32", 12, 0, "<f4"), b"x" * 64)
    codec = primed_cm_codec(with_layout)  # the layout is recorded, not used for coding
    assert codec.profile is with_layout and codec.layout is None and not codec.numeric
    with pytest.raises(ValueError, match="layout or a profile"):
        CmCodec(profile=with_layout, layout="<f4")
    data = bytes(range(256)) * 512  # numeric-looking frames of 128 KiB
    payload = codec.encode(data)
    header, _ = parse_payload(payload, len(data))
    assert header.flags == layout.FLAG_PRIMED and header.transform is None
    assert codec.decode(payload, len(data)) == data


# --- Finding the profile of an archive -----------------------------------------------------------

def test_profiles_are_found_by_id_along_the_search_path(profile, tmp_path, monkeypatch):
    data = records(800, seed=5)
    blob = vortexfmt.compress(data, codec="cm", frame_size=8 << 10, model=profile)
    # VORTEX_PROFILE_PATH
    monkeypatch.setenv("VORTEX_PROFILE_PATH", str(profile.path.parent))
    assert vortexfmt.decompress(blob) == data
    monkeypatch.delenv("VORTEX_PROFILE_PATH")
    # the user's directory
    user = tmp_path / "data-home" / "vortex" / "profiles"
    user.mkdir(parents=True)
    (user / "copy.vxprofile").write_bytes(profile.path.read_bytes())
    assert find_by_id(profile.profile_id).profile_id == profile.profile_id
    assert vortexfmt.decompress(blob) == data


def test_a_profile_next_to_the_archive_is_found(profile, tmp_path):
    directory = tmp_path / "beside"
    directory.mkdir()
    (directory / "log.vxprofile").write_bytes(profile.path.read_bytes())
    data = records(800, seed=6)
    archive = directory / "data.vtx"
    archive.write_bytes(vortexfmt.compress(data, codec="cm", frame_size=8 << 10,
                                           model=profile))
    with vortexfmt.open(archive) as reader:
        assert reader.read() == data


def test_a_profile_file_whose_recorded_id_lies_is_not_taken(profile, tmp_path, monkeypatch):
    liar = tmp_path / "liar"
    liar.mkdir()
    header = json.loads(profile.path.read_bytes()[8:8 + struct.unpack(
        "<Q", profile.path.read_bytes()[:8])[0]])
    header["__metadata__"]["vortex.id"] = profile.hex_id
    _write_safetensors(liar / "x.vxprofile", json.dumps(header).encode(),
                       profile.prime[:-1] + b"!")
    monkeypatch.setenv("VORTEX_PROFILE_PATH", str(liar))
    with pytest.raises(ModelMismatchError):
        find_by_id(profile.profile_id)


# --- Command line --------------------------------------------------------------------------------

def test_cli_train_pack_unpack_verify_inspect_with_a_profile(tmp_path):
    for i in range(2):
        (tmp_path / f"train{i}.rec").write_bytes(records(6000, seed=i))
    sample = tmp_path / "sample.rec"
    sample.write_bytes(records(3000, seed=9))
    profile = tmp_path / "rec.vxprofile"
    result = run_vortex("train", tmp_path / "train0.rec", tmp_path / "train1.rec", "-o", profile,
                        "--frame-size", "16K")
    assert result.returncode == 0, result.stderr
    loaded = load_profile(profile)
    assert loaded.settings.format == "rec"
    assert f"profile {loaded.hex_id[:16]}".encode() in result.stderr
    archive = tmp_path / "sample.rec.vtx"
    result = run_vortex("pack", sample, "--frame-size", "16K", "--model", profile, "-q")
    assert result.returncode == 0, result.stderr
    result = run_vortex("inspect", "--json", archive)
    info = json.loads(result.stdout)
    assert info["model_id"] == loaded.hex_id
    assert info["profile"] == str(profile)  # beside the archive
    sample.unlink()
    hidden = tmp_path / "elsewhere"
    hidden.mkdir()
    profile.rename(hidden / profile.name)
    assert json.loads(run_vortex("inspect", "--json", archive).stdout)["profile"] is None
    result = run_vortex("unpack", archive, "-q")
    assert result.returncode == 1
    lines = result.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"vortex: {archive}:")
    assert f"needs profile {loaded.hex_id[:16]}" in lines[0]
    assert "Traceback" not in result.stderr.decode()
    assert not sample.exists()
    result = run_vortex("unpack", archive, "--model", hidden / profile.name, "-q")
    assert result.returncode == 0, result.stderr
    assert sample.read_bytes() == records(3000, seed=9)
    result = run_vortex("verify", archive, "-q", "--model", hidden / profile.name)
    assert result.returncode == 0, result.stderr


def test_cli_pack_with_a_hostile_profile_is_one_line(tmp_path):
    bad = tmp_path / "bad.vxprofile"
    _write_safetensors(bad, *HOSTILE["stride out of range"]())
    (tmp_path / "a").write_bytes(b"hello" * 100)
    result = run_vortex("pack", tmp_path / "a", "--model", bad, "-q")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr.decode()


def test_cli_pack_with_a_missing_profile_is_one_line(cli, tmp_path):
    (tmp_path / "a").write_bytes(b"hello" * 100)
    result = cli("pack", tmp_path / "a", "--model", tmp_path / "typo.vxprofile", "-q")
    assert result.exit_code == 1
    assert result.stderr == f"vortex: {tmp_path / 'typo.vxprofile'}: no such profile file\n"
    assert not (tmp_path / "a.vtx").exists()


def test_cli_train_names_a_profile_after_the_suffix_in_printable_ascii(cli, tmp_path):
    data = tmp_path / "readings.größe"
    data.write_bytes(bytes(range(256)) * 40)
    profile = tmp_path / "p.vxprofile"
    result = cli("train", "-q", data, "-o", profile, "--prime-size", "2K",
                 "--frame-size", "4K")
    assert result.exit_code == 0, result.output
    assert load_profile(profile).settings.format == "gre"


def test_cli_train_refuses_a_name_a_profile_cannot_hold_on_one_line(cli, tmp_path):
    data = tmp_path / "readings.bin"
    data.write_bytes(bytes(range(256)) * 40)
    result = cli("train", data, "-o", tmp_path / "p.vxprofile", "--format", "Zürich")
    assert result.exit_code == 1
    assert "printable ASCII" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "p.vxprofile").exists()


@pytest.mark.parametrize("case", ["the-input", "exists", "empty", "no-directory", "layout"])
def test_cli_train_refuses_what_it_cannot_write_before_training(cli, tmp_path, monkeypatch,
                                                                 case):
    """An OUTPUT it cannot or must not write, or a --layout it cannot read, is refused
    before any training: one line, and the DATA file is left as it was."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "readings.bin"
    data.write_bytes(bytes(range(256)) * 40)
    (tmp_path / "old.vxprofile").write_bytes(b"kept")
    output, extra, status, message = {
        "the-input": (data, ["-f"], 1, f"vortex: {data}: is the input file"),
        "exists": ("old.vxprofile", [], 2, "vortex: old.vxprofile already exists; use -f"),
        "empty": ("", [], 2, "vortex: the output name is empty"),
        "no-directory": ("gone/p.vxprofile", [], 1,
                         f"vortex: {tmp_path / 'gone'}: No such file or directory"),
        "layout": ("p.vxprofile", ["--layout", "foo"], 2,
                   "vortex: Invalid value for '--layout': bad layout 'foo'"),
    }[case]
    result = cli("train", data, "-o", output, *extra)
    assert result.exit_code == status, result.output
    assert result.stderr.startswith(message) and len(result.stderr.splitlines()) == 1
    assert data.read_bytes() == bytes(range(256)) * 40
    assert (tmp_path / "old.vxprofile").read_bytes() == b"kept"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.vxprofile", "readings.bin"]


def test_cli_train_takes_prime_size_auto_and_force(cli, tmp_path):
    data = tmp_path / "readings.bin"
    data.write_bytes(bytes(range(256)) * 40)
    profile = tmp_path / "p.vxprofile"
    profile.write_bytes(b"old")
    result = cli("train", "-q", "-f", data, "-o", profile, "--prime-size", "auto",
                 "--frame-size", "4K")
    assert result.exit_code == 0, result.output
    assert load_profile(profile).settings.format == "bin"


def test_cli_train_refuses_neural_options_without_neural(cli, tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    result = cli("train", tmp_path / "a", "-o", tmp_path / "p", "--steps", "3")
    assert result.exit_code == 2
    assert "--steps: only with --neural" in result.stderr


@pytest.mark.skipif("torch" in sys.modules or __import__("importlib").util.find_spec("torch")
                    is not None, reason="torch is installed")
def test_cli_train_neural_without_torch_is_one_line(cli, tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    result = cli("train", "--neural", tmp_path / "a", "-o", tmp_path / "m.safetensors")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "pip install 'vortexfmt[neural]'" in result.stderr
