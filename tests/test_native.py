"""Building the C++ kernels: build logs never reach standard output (where they would
corrupt `vortex unpack -o -`), a failed build shows its log, and a slow build says so."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest

from vortexfmt import native


def _noisy_load(seconds: float = 0.0):
    def load():
        os.write(1, b"ninja: building...\n")
        os.write(2, b"c++ -O3 ...\n")
        time.sleep(seconds)
        return "module"
    return load


def test_a_build_log_is_kept_off_stdout_and_stderr(capfd):
    assert native.quietly(_noisy_load(), "building x") == "module"
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_a_failed_build_shows_its_log_on_stderr(capfd):
    def failing():
        os.write(2, b"error: no compiler\n")
        raise OSError("no compiler")

    with pytest.raises(OSError):
        native.quietly(failing)
    out, err = capfd.readouterr()
    assert out == "" and "error: no compiler" in err


def test_a_slow_build_is_announced_on_stderr(capfd, monkeypatch):
    monkeypatch.setattr(native, "ANNOUNCE_AFTER_S", 0.01)
    native.quietly(_noisy_load(1.0), "building the C++ step kernel")  # ample slack
    out, err = capfd.readouterr()
    assert out == "" and err == "vortex: building the C++ step kernel\n"


def test_announcing_can_be_turned_off(capfd, monkeypatch):
    monkeypatch.setattr(native, "ANNOUNCE_AFTER_S", 0.01)
    monkeypatch.setattr(native, "announce_builds", False)
    native.quietly(_noisy_load(0.3), "building the C++ step kernel")
    assert capfd.readouterr() == ("", "")


def test_vortex_quiet_turns_announcing_off(monkeypatch, tmp_path):
    from click.testing import CliRunner
    from vortexfmt.cli.main import main

    monkeypatch.setattr(native, "announce_builds", True)
    source = tmp_path / "data.bin"
    source.write_bytes(b"abc" * 100)
    result = CliRunner().invoke(main, ["pack", "-q", "--codec", "zstd", str(source)])
    assert result.exit_code == 0, result.output
    assert native.announce_builds is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux links it torch-free")
def test_packing_and_unpacking_cm_frames_never_imports_torch(tmp_path):
    native.cm_kernel()  # built (once per machine) by this process, which has torch
    script = textwrap.dedent("""
        import sys
        import vortexfmt
        data = bytes(range(256)) * 64
        with vortexfmt.open(sys.argv[1], "wb", codec="cm") as archive:
            archive.write(data)
        with vortexfmt.open(sys.argv[1], "rb") as archive:
            assert archive.read() == data
        print(sorted({m.split(".")[0] for m in sys.modules} & {"torch", "torchac"}))
    """)
    archive = tmp_path / "data.vx"
    done = subprocess.run([sys.executable, "-c", script, str(archive)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_kernel_file_that_cannot_be_loaded_is_built_again(tmp_path):
    (tmp_path / "vortex_cm_kernel.so").write_bytes(b"\x7fELF half written")
    assert native._load_built("cm", tmp_path) is None
    assert native._load_built("cm", tmp_path / "absent") is None


def test_a_torch_free_kernel_is_built_where_its_sources_say():
    directory = native.torch_free_build_directory("cm")
    assert directory.name.startswith("cm-")
    assert directory == native.torch_free_build_directory("cm")
    if sys.platform.startswith("linux"):
        assert native.cm_kernel().__file__.startswith(str(directory))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux links it torch-free")
def test_a_kernel_that_cannot_be_built_is_reported_unavailable(monkeypatch, capfd, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")  # a file where the build directory's parent should be
    monkeypatch.setattr(native, "torch_free_build_directory", lambda name: blocked / name)
    assert native._build("cm") is None
    assert "C++ cm kernel unavailable" in capfd.readouterr().err
