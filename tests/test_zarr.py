"""Vortex from numcodecs and Zarr: the entry points, round trips, another process reading,
and damage reported through Zarr with Vortex's message."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

numcodecs = pytest.importorskip("numcodecs")
zarr = pytest.importorskip("zarr")

from vortexfmt import chunk  # noqa: E402
from vortexfmt.errors import VortexFormatError  # noqa: E402
from vortexfmt.numcodecs import VortexCodec as NumcodecsVortex  # noqa: E402
from vortexfmt.zarr import VortexCodec, layout_of  # noqa: E402


def _measurements(n: int = 20_000) -> np.ndarray:
    """A smooth float32 signal with noise: what a detector or sensor column looks like."""
    rng = np.random.default_rng(7)
    return (np.sin(np.arange(n) / 50.0) * 100 + rng.normal(0, 0.5, n)).astype("<f4")


def _run(code: str) -> str:
    """Run `code` in a fresh interpreter (nothing of vortexfmt imported unless it says so)."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_numcodecs_finds_the_codec_by_entry_point():
    out = _run("""
        import sys, numcodecs
        codec = numcodecs.get_codec({"id": "vortex", "codec": "cm", "layout": "<f4"})
        print(type(codec).__module__, codec.get_config())
    """)
    assert out.startswith("vortexfmt.numcodecs ")
    assert "'codec': 'cm'" in out and "'layout': '<f4'" in out and "'profile': None" in out


def test_zarr_finds_the_codec_by_entry_point():
    out = _run("""
        import zarr.registry
        print(zarr.registry.get_codec_class("vortex").__module__)
    """)
    assert out.strip() == "vortexfmt.zarr"


def test_numcodecs_round_trip_with_out():
    data = _measurements()
    codec = numcodecs.get_codec({"id": "vortex", "codec": "cm", "layout": "<f4"})
    blob = codec.encode(data)
    assert chunk.decode(blob) == data.tobytes()  # the codec writes a Vortex chunk
    assert len(blob) < data.nbytes
    assert bytes(codec.decode(blob)) == data.tobytes()
    out = np.empty_like(data)
    assert codec.decode(blob, out=out) is out
    np.testing.assert_array_equal(out, data)


def test_numcodecs_damage_is_vortexs_error():
    codec = NumcodecsVortex(codec="lzma")
    blob = bytearray(codec.encode(_measurements(2000)))
    blob[-3] ^= 0x20
    with pytest.raises(VortexFormatError, match="^vortex chunk: "):
        codec.decode(bytes(blob))
    with pytest.raises(VortexFormatError, match="^vortex chunk: truncated"):
        codec.decode(bytes(blob[:16]), out=np.empty(2000, "<f4"))


def test_numcodecs_config_round_trip():
    codec = NumcodecsVortex(level=5)
    config = codec.get_config()
    assert config == {"id": "vortex", "codec": "auto", "level": 5, "layout": None,
                      "profile": None}
    assert numcodecs.get_codec(json.loads(json.dumps(config))) == codec


@pytest.mark.parametrize("options, message", [
    ({"codec": "neural"}, "unknown Vortex chunk codec"),
    ({"codec": "cm", "level": 3}, "not both"),
    ({"level": 10}, "compression level"),
    ({"profile": "abc"}, "profiles are not supported"),
    ({"layout": "int32"}, "bad layout"),  # refused here, not at the first chunk written
    ({"layout": 4}, "layout string"),
])
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        NumcodecsVortex(**options)
    with pytest.raises(ValueError, match=message):
        VortexCodec(**options)


def test_layout_of_dtypes():
    assert layout_of(np.dtype("<f4")) == "<f4"
    assert layout_of(np.dtype(">i2")) == "<i2"  # as Zarr's bytes codec stores it
    assert layout_of(np.dtype("u1")) == "|u1"
    assert layout_of(np.dtype("S4")) is None
    assert layout_of(np.dtype([("a", "<i4")])) is None
    assert layout_of(np.dtype("?")) is None
    assert layout_of(np.dtype("<c8")) == "<f4:2ch"  # real and imaginary parts
    assert layout_of(np.dtype(">c16")) == "<f8:2ch"


@pytest.mark.parametrize("dtype", ["?", "<c8", "<c16", "<f2", "|i1"])
@pytest.mark.parametrize("codec", ["auto", "zstd"])
def test_zarr_v3_arrays_of_every_number_kind(tmp_path, dtype, codec):
    rng = np.random.default_rng(5)
    values = rng.normal(size=3000) * 50
    data = (values + 1j * values[::-1] if dtype.endswith(("c8", "c16")) else
            values > 0 if dtype == "?" else values).astype(dtype)
    path = str(tmp_path / "a.zarr")
    array = zarr.create_array(path, shape=data.shape, chunks=(1024,), dtype=data.dtype,
                              compressors=[VortexCodec(codec=codec)])
    array[:] = data
    assert zarr.open_array(path, mode="r")[:].tobytes() == data.tobytes()


def test_zarr_v3_array_written_here_read_by_another_process(tmp_path):
    data = _measurements().reshape(100, 200)
    path = tmp_path / "signal.zarr"
    array = zarr.create_array(str(path), shape=data.shape, chunks=(50, 100), dtype="<f4",
                              compressors=[VortexCodec(codec="cm")])
    array[:] = data
    metadata = json.loads((path / "zarr.json").read_text())
    vortex = [c for c in metadata["codecs"] if c["name"] == "vortex"]
    assert vortex == [{"name": "vortex", "configuration": {
        "codec": "cm", "level": None, "layout": "<f4", "profile": None}}]
    chunk_files = sorted(p for p in (path / "c").rglob("*") if p.is_file())
    assert len(chunk_files) == 4
    stored = sum(p.stat().st_size for p in chunk_files)
    assert stored < data.nbytes  # compressed
    first = chunk.decode((path / "c" / "0" / "0").read_bytes())
    assert first == np.ascontiguousarray(data[:50, :100]).tobytes()
    out = _run(f"""
        import hashlib, zarr
        array = zarr.open_array({str(path)!r}, mode="r")
        print(hashlib.sha256(array[:].tobytes()).hexdigest())
    """)
    import hashlib

    assert out.strip() == hashlib.sha256(data.tobytes()).hexdigest()


def test_zarr_v2_array_with_the_numcodecs_codec(tmp_path):
    data = np.arange(30_000, dtype="<i4") // 3
    path = str(tmp_path / "v2.zarr")
    array = zarr.create_array(path, shape=data.shape, chunks=(10_000,), dtype="<i4",
                              zarr_format=2, compressors=NumcodecsVortex(codec="auto"))
    array[:] = data
    np.testing.assert_array_equal(zarr.open_array(path, mode="r")[:], data)
    assert json.loads(Path(path, ".zarray").read_text())["compressor"]["id"] == "vortex"


def test_corrupt_chunk_raises_through_zarr_with_vortex_message(tmp_path):
    data = _measurements(4000)
    path = tmp_path / "bad.zarr"
    array = zarr.create_array(str(path), shape=data.shape, chunks=(1000,), dtype="<f4",
                              compressors=[VortexCodec(codec="cm")])
    array[:] = data
    victim = path / "c" / "2"
    blob = bytearray(victim.read_bytes())
    blob[len(blob) // 2] ^= 0x40
    victim.write_bytes(bytes(blob))
    reopened = zarr.open_array(str(path), mode="r")
    np.testing.assert_array_equal(reopened[:2000], data[:2000])  # the others still read
    with pytest.raises(Exception) as caught:
        reopened[:]
    assert "vortex chunk: " in str(caught.value)
    assert isinstance(caught.value, VortexFormatError)
    victim.write_bytes(bytes(blob[:10]))  # cut short
    with pytest.raises(VortexFormatError, match="vortex chunk: truncated"):
        reopened[2000:3000]
