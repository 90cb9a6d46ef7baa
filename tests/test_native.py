"""Building the C++ kernels: build logs never reach standard output (where they would
corrupt `vortex unpack -o -`), a failed build shows its log, and a slow build says so."""

from __future__ import annotations

import os
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
