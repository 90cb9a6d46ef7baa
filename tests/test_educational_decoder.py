"""tools/educational_decoder.py, the decoder written from FORMAT.md alone, against the library.

Both must decode every test vector (fixtures/vectors, and its cm, numeric and primed
folders) byte for byte, and archives that `vortex pack` writes from small real samples (with
a layout and with a profile too); the educational decoder must reject every malformed
archive of fixtures/bad, damaged cm frames and bad numeric descriptors.

The educational decoder runs the cm model in Python (about 1.5 KiB/s on one core), so the
cm bytes decoded here are kept to about 40 KiB in all (vectors 20 KiB, samples 2.25 KiB
each): about 30 s of this module's time alone.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys

import pytest
from conftest import CORPUS, FIXTURES, ROOT
from test_profiles import HOSTILE

import vortexfmt

TOOL = ROOT / "tools" / "educational_decoder.py"
VECTOR_FILES = sorted((FIXTURES / "vectors").glob("*.vtx")) + \
    sorted((FIXTURES / "vectors" / "cm").glob("*.vtx")) + \
    sorted((FIXTURES / "vectors" / "numeric").glob("*.vtx"))
PRIMED_FILES = sorted((FIXTURES / "vectors" / "primed").glob("*.vtx"))
SAMPLE_SIZE = 2304  # over 2 KiB, so that the writer looks for a record length
SEED_FILES = ("events.bin", "telemetry.bin", "capture.pcap", "logs.bin")
CORPUS_FILES = ("hep_hzz_events.rec", "net_http.pcap", "seis_balst_lhe.i32", "log_pg_wal.bin")


def _load_tool():
    spec = importlib.util.spec_from_file_location("educational_decoder", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


educational = _load_tool()


def test_the_tool_imports_nothing_from_vortexfmt():
    source = TOOL.read_text(encoding="utf-8")
    imported = {line.split()[1].split(".")[0] for line in source.splitlines()
                if line.startswith(("import ", "from "))}
    assert imported <= {"__future__", "hashlib", "json", "lzma", "operator", "struct", "sys",
                        "xxhash", "zstandard"}, imported


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.parent.name + "/" + path.stem)
def test_both_decoders_decode_every_vector(path):
    blob = path.read_bytes()
    content = path.with_suffix(".bin").read_bytes()
    assert vortexfmt.decompress(blob) == content
    assert educational.decode_archive(blob) == content


@pytest.mark.parametrize("path", PRIMED_FILES, ids=lambda path: path.stem)
def test_both_decoders_decode_every_primed_vector_with_its_profile(path):
    blob = path.read_bytes()
    content = path.with_suffix(".bin").read_bytes()
    profile = path.with_suffix(".vxprofile")
    assert vortexfmt.decompress(blob, model=str(profile)) == content
    assert educational.decode_archive(blob, profile.read_bytes()) == content


def test_a_primed_archive_needs_its_own_profile():
    first, second = PRIMED_FILES[:2]
    with pytest.raises(educational.Damaged, match="give the profile"):
        educational.decode_archive(first.read_bytes())
    with pytest.raises(educational.Damaged, match="is not the archive's model id"):
        educational.decode_archive(first.read_bytes(),
                                   second.with_suffix(".vxprofile").read_bytes())


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: p.replace(b'"vortex-profile"', b'"vortex-profilx"'),
     "not a version-1 Vortex profile"),
    (lambda p: p + b"\x00", "one tensor"),
    (lambda p: p[:-1], "one tensor"),
    (lambda p: (1 << 20).to_bytes(8, "little") + p[8:], "header of 1048576 bytes"),
    (lambda p: p[:8] + b"[" + p[9:], "unreadable header"),
])
def test_a_bad_profile_is_refused(edit, message):
    profile = PRIMED_FILES[0].with_suffix(".vxprofile").read_bytes()
    educational.read_profile(profile)
    with pytest.raises(educational.Damaged, match=message):
        educational.read_profile(edit(profile))


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_the_profiles_the_library_refuses_are_refused(case):
    """tests/test_profiles.py's hostile profile files: both readers refuse each."""
    import struct
    header, data = HOSTILE[case]()
    with pytest.raises(educational.Damaged, match="profile"):
        educational.read_profile(struct.pack("<Q", len(header)) + header + data)


def test_cm_vectors_hold_cm_frames_only():
    for path in sorted((FIXTURES / "vectors" / "cm").glob("*.vtx")):
        with vortexfmt.open(io.BytesIO(path.read_bytes())) as reader:
            frames = reader.layout.frames
            assert frames
            codecs = {path.read_bytes()[entry.frame_offset + 4] for entry in frames}
        assert codecs == {5}, path.name


def _sample(path, size=SAMPLE_SIZE) -> bytes:
    """`size` bytes from the middle of a file (past any file header)."""
    data = path.read_bytes()
    start = max(0, len(data) // 2 - size // 2)
    return data[start:start + size]


def _pack_and_decode(cli, tmp_path, sample: bytes, *options: str) -> bytes:
    source = tmp_path / "sample.bin"
    source.write_bytes(sample)
    archive = tmp_path / "sample.vtx"
    result = cli("pack", "-q", "-f", *options, "-o", archive, source)
    assert result.exit_code == 0, result.output
    blob = archive.read_bytes()
    assert vortexfmt.decompress(blob) == sample
    return blob


@pytest.mark.parametrize("name", SEED_FILES)
def test_packed_seed_sample_decodes(cli, tmp_path, name):
    sample = _sample(FIXTURES / "seed" / name)
    blob = _pack_and_decode(cli, tmp_path, sample, "--codec", "cm", "--frame-size", "4K")
    assert blob[52 + 4] == 5  # a cm frame
    assert educational.decode_archive(blob) == sample


@pytest.mark.parametrize("name", CORPUS_FILES)
def test_packed_corpus_sample_decodes(cli, tmp_path, name):
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available")
    sample = _sample(path)
    blob = _pack_and_decode(cli, tmp_path, sample, "--codec", "cm", "--frame-size", "4K")
    assert educational.decode_archive(blob) == sample


def test_packed_corpus_sample_with_a_layout_decodes(cli, tmp_path):
    """`vortex pack --layout`: the frame carries a numeric transform (format 1.3)."""
    path = CORPUS / "seis_balst_lhe.i32"
    if not path.is_file():
        pytest.skip("corpus file seis_balst_lhe.i32 not available")
    sample = _sample(path)
    blob = _pack_and_decode(cli, tmp_path, sample, "--codec", "cm", "--frame-size", "4K",
                            "--layout", "<i4")
    assert blob[9] == 3 and blob[52 + 32 + 1] == 0x01  # format 1.3, a numeric cm frame
    assert educational.decode_archive(blob) == sample


@pytest.mark.parametrize("path", [FIXTURES / "seed" / "events.bin",
                                  CORPUS / "log_pg_wal.bin"], ids=lambda path: path.name)
def test_packed_sample_with_a_trained_profile_decodes(cli, tmp_path, path):
    """`vortex train` on the file's first 20 KB, `vortex pack --model` on its middle."""
    if not path.is_file():
        pytest.skip(f"corpus file {path.name} not available")
    training = tmp_path / ("head" + path.suffix)
    training.write_bytes(path.read_bytes()[:20_000])
    profile = tmp_path / "head.vxprofile"
    result = cli("train", "-q", training, "-o", profile, "--prime-size", "2K",
                 "--frame-size", "4K")
    assert result.exit_code == 0, result.output
    sample = _sample(path)
    source = tmp_path / "sample.bin"
    source.write_bytes(sample)
    archive = tmp_path / "sample.vtx"
    result = cli("pack", "-q", "--codec", "cm", "--frame-size", "4K", "--model", profile,
                 "-o", archive, source)
    assert result.exit_code == 0, result.output
    blob = archive.read_bytes()
    assert blob[9] == 3 and blob[52 + 32 + 1] == 0x02  # format 1.3, a primed cm frame
    assert vortexfmt.decompress(blob, model=str(profile)) == sample
    assert educational.decode_archive(blob, profile.read_bytes()) == sample


def test_packed_auto_archive_decodes(cli, tmp_path):
    """The default writer: per frame the smallest of stored, zstd, lzma and cm."""
    sample = (FIXTURES / "seed" / "logs.bin").read_bytes()[:1500] + bytes(700) + \
        (FIXTURES / "seed" / "telemetry.bin").read_bytes()[4096:4096 + 300]
    blob = _pack_and_decode(cli, tmp_path, sample, "--frame-size", "700")
    assert educational.decode_archive(blob) == sample


# --- Damage ------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", sorted((FIXTURES / "bad").glob("*.vtx")), ids=lambda p: p.stem)
def test_every_bad_archive_is_rejected(path):
    with pytest.raises(educational.Damaged):
        educational.decode_archive(path.read_bytes())


def test_a_damaged_cm_stream_is_rejected():
    blob = bytearray((FIXTURES / "vectors" / "cm" / "stride-odd.vtx").read_bytes())
    with vortexfmt.open(io.BytesIO(bytes(blob))) as reader:
        last = reader.layout.frames[-1]
    blob[last.frame_offset + 32 + last.payload_size - 3] ^= 0x10  # in the last lane's stream
    with pytest.raises(educational.Damaged, match="frame 2 at offset .*: checksum mismatch"):
        educational.decode_archive(bytes(blob))
    with pytest.raises(vortexfmt.VortexFormatError):
        vortexfmt.decompress(bytes(blob))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: bytes([2]) + p[1:], "revision 2"),
    (lambda p: p[:1] + bytes([4]) + p[2:], "unknown flags"),
    (lambda p: p[:2] + bytes([9]) + p[3:], "table_bits 9"),
    (lambda p: p[:3] + (1025).to_bytes(2, "little") + p[5:], "stride 1025"),
    (lambda p: p + b"\0", "do not add up"),
])
def test_a_bad_cm_header_is_rejected(edit, message):
    payload = (FIXTURES / "vectors" / "cm" / "one-byte.vtx").read_bytes()[84:-(12 + 24 + 32)]
    educational.decode_cm(payload, 1)  # the untouched payload decodes
    with pytest.raises(educational.Damaged, match=message):
        educational.decode_cm(edit(payload), 1)


def _first_payload(path) -> tuple[bytes, int]:
    blob = path.read_bytes()
    with vortexfmt.open(io.BytesIO(blob)) as reader:
        first = reader.layout.frames[0]
    start = first.frame_offset + 32
    return blob[start:start + first.payload_size], first.raw_size


def _set(payload: bytes, offset: int, value: int) -> bytes:
    return payload[:offset] + bytes([value]) + payload[offset + 1:]


@pytest.mark.parametrize(("edit", "message"), [
    (lambda p: _set(p, 1, 0x03), "both primed and numeric"),
    (lambda p: _set(p, 1, 0x05), "unknown flags"),
    (lambda p: _set(p, 5, 2), "order 2"),
    (lambda p: _set(p, 6, 0), "no fields"),
    (lambda p: _set(p, 7, 3), "width 3"),
    (lambda p: _set(p, 8, p[8] | 0x06), "delta order 3"),
    (lambda p: _set(p, 8, p[8] | 0x10), "mode bits"),
    (lambda p: p[:9], "truncated"),
])
def test_a_bad_numeric_descriptor_is_rejected_by_both_decoders(edit, message):
    """FORMAT.md "Numeric descriptor": what a reader MUST reject (offsets 5 and 6: order and
    count; 7 and 8: the first field's width and mode)."""
    from vortexfmt.codecs.cm import parse_header
    payload, raw_size = _first_payload(FIXTURES / "vectors" / "numeric" / "short-frame.vtx")
    assert payload[1] == 0x01 and payload[6] == 3  # numeric, three fields
    educational.decode_cm(payload, raw_size)  # the untouched payload decodes
    with pytest.raises(educational.Damaged, match=message):
        educational.decode_cm(edit(payload), raw_size)
    with pytest.raises(vortexfmt.VortexFormatError):
        parse_header(edit(payload), raw_size)


def test_command_line(tmp_path):
    output = tmp_path / "out.bin"
    vector = FIXTURES / "vectors" / "text-cm-2frames.vtx"
    run = subprocess.run([sys.executable, TOOL, vector, output], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert output.read_bytes() == vector.with_suffix(".bin").read_bytes()
    bad = FIXTURES / "bad" / "payload-bitflip.vtx"
    output.unlink()
    run = subprocess.run([sys.executable, TOOL, bad, output], capture_output=True, text=True,
                         check=False)
    assert run.returncode == 1
    assert run.stderr.startswith(f"educational_decoder: {bad}: frame 1 at offset 148: ")
    assert "Traceback" not in run.stderr
    assert not output.exists()


def test_command_line_with_a_profile(tmp_path):
    output = tmp_path / "out.bin"
    vector = PRIMED_FILES[0]
    run = subprocess.run([sys.executable, TOOL, "--profile", vector.with_suffix(".vxprofile"),
                          vector, output], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert output.read_bytes() == vector.with_suffix(".bin").read_bytes()
    output.unlink()
    run = subprocess.run([sys.executable, TOOL, vector, output], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 1
    assert "give the profile" in run.stderr and "Traceback" not in run.stderr
    assert not output.exists()
