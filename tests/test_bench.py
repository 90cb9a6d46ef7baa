"""`vortex bench`: a complete, machine-readable comparison with the classical codecs."""

from __future__ import annotations

import json
import struct
import sys

import pytest
from conftest import HANG_GUARD_S, run_vortex

from vortexfmt.bench import bench_file

EXPECTED_CODECS = {"vortex-auto", "gzip-6", "gzip-9", "zstd-3", "zstd-19", "xz-9e", "bzip2-9"}


def test_bench_json_covers_every_codec_on_two_files(tmp_path, tiny_model):
    files = []
    for name, content in (("a.bin", bytes(range(256)) * 40), ("b.bin", b"abc" * 3000)):
        path = tmp_path / name
        path.write_bytes(content)
        files.append(path)
    result = run_vortex("bench", *files, "--json", "--model", tiny_model.path,
                        "--frame-size", "8K", "--codec", "auto", "--codec", "mixed",
                        timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [entry["file"] for entry in report] == [str(f) for f in files]
    for entry in report:
        codecs = {row["codec"] for row in entry["results"]} | set(entry["skipped"])
        assert EXPECTED_CODECS | {"brotli-11"} <= codecs
        for row in entry["results"]:
            assert row["bits_per_byte"] > 0 and row["pack_mb_s"] > 0 and row["unpack_mb_s"] > 0
            assert abs(row["bits_per_byte"] - 8 * row["packed_bytes"] / entry["size"]) < 1e-9
        auto = next(r for r in entry["results"] if r["codec"] == "vortex-auto")
        assert auto["extra"]["frames"] == {"cm": 2}
        assert auto["extra"]["cm_ideal_bits_per_byte"] <= auto["bits_per_byte"]
        mixed = next(r for r in entry["results"] if r["codec"] == "vortex-mixed")
        assert "model_ideal_bits_per_byte" in mixed["extra"]


def test_bench_plot_writes_a_png(tmp_path, tiny_model):
    pytest.importorskip("matplotlib")
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello world " * 500)
    plot = tmp_path / "plot.png"
    result = run_vortex("bench", path, "--plot", plot, "--model", tiny_model.path, "-q",
                        timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- OpenZL as a peer (optional) ----------------------------------------------------------------

def _numbers_file(tmp_path, name="samples.i32", count=3000):
    path = tmp_path / name
    path.write_bytes(b"".join(struct.pack("<i", (i * i) % 9973 - 5000) for i in range(count)))
    return path


def test_bench_skips_openzl_with_one_line_when_it_is_not_installed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openzl", None)  # import raises ImportError
    monkeypatch.setitem(sys.modules, "openzl.ext", None)
    result = bench_file(_numbers_file(tmp_path), vortex_codecs=("stored",))
    assert {"openzl", "openzl-int32"} <= set(result.skipped)
    for name in ("openzl", "openzl-int32"):
        assert result.skipped[name] == "the openzl package is not installed (pip install openzl)"
    assert not any(row.codec.startswith("openzl") for row in result.results)
    assert any(row.codec == "xz-9e" for row in result.results)  # the others still ran


def test_bench_runs_openzl_generic_and_numeric_beside_xz(tmp_path):
    pytest.importorskip("openzl.ext")
    result = bench_file(_numbers_file(tmp_path), vortex_codecs=("stored",))
    rows = {row.codec: row for row in result.results}
    assert {"openzl", "openzl-int32", "xz-9e", "zstd-19"} <= set(rows)  # round trips checked
    assert rows["openzl-int32"].packed_bytes > 0


def test_bench_openzl_numeric_column_needs_whole_values(tmp_path):
    pytest.importorskip("openzl.ext")
    path = tmp_path / "odd.f32"
    path.write_bytes(bytes(4001))
    result = bench_file(path, vortex_codecs=("stored",))
    assert "not whole float32 values" in result.skipped["openzl-float32"]
    none = bench_file(path, vortex_codecs=("stored",), openzl_dtype=None)
    assert not any(name.startswith("openzl-") for name in none.skipped)


@pytest.mark.parametrize("size", ["0", "1G"])
def test_bench_refuses_a_frame_size_no_archive_may_have(tmp_path, size):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc" * 100)
    result = run_vortex("bench", path, "--frame-size", size, timeout=HANG_GUARD_S)
    assert result.returncode == 2
    assert result.stderr.decode().startswith(
        f"vortex: Invalid value for '--frame-size': '{size}' lies outside 1..268435456 bytes")


@pytest.mark.skipif(__import__("importlib").util.find_spec("matplotlib") is not None,
                    reason="matplotlib is installed")
def test_bench_plot_without_matplotlib_is_refused_before_measuring(tmp_path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"abc" * 100)
    result = run_vortex("bench", path, "--plot", tmp_path / "p.png", timeout=HANG_GUARD_S)
    assert result.returncode == 2
    assert result.stdout == b""  # no table: nothing was measured
    assert b"--plot needs matplotlib" in result.stderr
