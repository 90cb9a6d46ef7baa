"""`vortex bench`: a complete, machine-readable comparison with the classical codecs."""

from __future__ import annotations

import json

from conftest import HANG_GUARD_S, run_vortex

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
    import pytest

    pytest.importorskip("matplotlib")
    path = tmp_path / "a.bin"
    path.write_bytes(b"hello world " * 500)
    plot = tmp_path / "plot.png"
    result = run_vortex("bench", path, "--plot", plot, "--model", tiny_model.path, "-q",
                        timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
