"""tools/educational_decoder.py, the decoder written from FORMAT.md alone, against the library.

Both must decode every test vector (fixtures/vectors, fixtures/vectors/cm) byte for byte,
and archives that `vortex pack` writes from small real samples; the educational decoder
must reject every malformed archive of fixtures/bad and damaged cm frames.

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

import vortexfmt

TOOL = ROOT / "tools" / "educational_decoder.py"
VECTOR_FILES = sorted((FIXTURES / "vectors").glob("*.vtx")) + \
    sorted((FIXTURES / "vectors" / "cm").glob("*.vtx"))
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
    assert imported <= {"__future__", "lzma", "operator", "struct", "sys", "xxhash",
                        "zstandard"}, imported


@pytest.mark.parametrize("path", VECTOR_FILES, ids=lambda path: path.parent.name + "/" + path.stem)
def test_both_decoders_decode_every_vector(path):
    blob = path.read_bytes()
    content = path.with_suffix(".bin").read_bytes()
    assert vortexfmt.decompress(blob) == content
    assert educational.decode_archive(blob) == content


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
    (lambda p: p[:1] + bytes([1]) + p[2:], "unknown flags"),
    (lambda p: p[:2] + bytes([9]) + p[3:], "table_bits 9"),
    (lambda p: p[:3] + (1025).to_bytes(2, "little") + p[5:], "stride 1025"),
    (lambda p: p + b"\0", "do not add up"),
])
def test_a_bad_cm_header_is_rejected(edit, message):
    payload = (FIXTURES / "vectors" / "cm" / "one-byte.vtx").read_bytes()[84:-(12 + 24 + 32)]
    educational.decode_cm(payload, 1)  # the untouched payload decodes
    with pytest.raises(educational.Damaged, match=message):
        educational.decode_cm(edit(payload), 1)


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
