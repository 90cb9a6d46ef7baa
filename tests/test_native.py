"""Building the C++ kernels: build logs never reach standard output (where they would
corrupt `vortex unpack -o -`), a failed build shows its log, and a slow build says so."""

from __future__ import annotations

import os
import shutil
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


linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="Linux links the cm kernel torch-free")


def _cm_build_in_a_cache_of_its_own(root):
    """A copy, under `root` as TORCH_EXTENSIONS_DIR, of the cm build this process uses."""
    built = native.torch_free_build_directory("cm")
    native.cm_kernel()
    copy = root / "vortex" / built.name
    shutil.copytree(built, copy)
    return copy


#: Prints whether the cm kernel loaded, and whether that imported torch.
_LOAD_CM = ("import sys; from vortexfmt import native; kernel = native.cm_kernel(); "
            "print(kernel is not None, 'torch' in sys.modules)")


def _run_with_cache(root, script: str) -> subprocess.CompletedProcess:
    """`script` run by a fresh Python whose kernels are built under `root`."""
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "TORCH_EXTENSIONS_DIR": str(root)}, timeout=300)


@linux_only
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


def test_a_published_kernel_that_cannot_be_loaded_is_removed(tmp_path):
    damaged = tmp_path / "vortex_cm_kernel.published.so"
    damaged.write_bytes(b"\x7fELF half written")
    assert native._load_published("cm", damaged) is None
    assert not damaged.exists()
    assert native._load_published("cm", tmp_path / "absent" / "kernel.so") is None


@linux_only
def test_a_damaged_published_kernel_is_loaded_through_torch_and_published_again(tmp_path):
    copy = _cm_build_in_a_cache_of_its_own(tmp_path)
    (copy / "vortex_cm_kernel.published.so").write_bytes(b"\x7fELF half written")
    runs = [_run_with_cache(tmp_path, _LOAD_CM) for _ in range(2)]
    assert [run.stdout.split() for run in runs] == [["True", "True"], ["True", "False"]], \
        [run.stderr for run in runs]
    assert (copy / "vortex_cm_kernel.published.so").stat().st_mode & 0o777 == \
        (copy / "vortex_cm_kernel.so").stat().st_mode & 0o777


@linux_only
def test_a_damaged_build_is_linked_again(tmp_path):
    copy = _cm_build_in_a_cache_of_its_own(tmp_path)
    for damaged in ("vortex_cm_kernel.so", "vortex_cm_kernel.published.so"):
        (copy / damaged).write_bytes(b"\x7fELF half written")  # newer than cm_kernel.o
    # in fresh processes: torch renames a module it is asked to load a second time
    runs = [_run_with_cache(tmp_path, _LOAD_CM) for _ in range(2)]
    assert [run.stdout.split() for run in runs] == [["True", "True"], ["True", "False"]], \
        [run.stderr for run in runs]


def test_a_build_that_cannot_be_loaded_again_says_which_directory_to_delete(
        tmp_path, monkeypatch):
    directory = tmp_path / "cm-0123456789abcdef"
    monkeypatch.setattr(native, "torch_free_build_directory", lambda name: directory)
    attempts = []

    def damaged(name, ldflags, **options):
        attempts.append(sorted(path.name for path in directory.iterdir()))
        (directory / "vortex_cm_kernel.so").write_bytes(b"\x7fELF half written")
        raise ImportError("vortex_cm_kernel.so: file too short")

    monkeypatch.setattr(native, "_load_with_torch", damaged)
    with pytest.raises(ImportError, match=f"too short; delete {directory} to build it again"):
        native._build_torch_free("cm")
    assert attempts == [[], []]  # the damaged file was removed before the second attempt


def test_a_torch_free_kernel_is_built_where_its_sources_say():
    native.step_kernel()  # torch's cpp_extension appends its libraries to the flags it
    native.mixing_kernel()  # is given: building these first must not move cm's build
    directory = native.torch_free_build_directory("cm")
    assert directory.name.startswith("cm-")
    fresh = subprocess.run(
        [sys.executable, "-c",
         "from vortexfmt import native; print(native.torch_free_build_directory('cm'))"],
        capture_output=True, text=True, timeout=60)
    assert fresh.stdout.strip() == str(directory)
    if sys.platform.startswith("linux"):
        assert native.cm_kernel().__file__.startswith(str(directory))


@linux_only
def test_a_kernel_that_cannot_be_built_is_reported_unavailable(monkeypatch, capfd, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_bytes(b"")  # a file where the build directory's parent should be
    monkeypatch.setattr(native, "torch_free_build_directory", lambda name: blocked / name)
    assert native._build("cm") is None
    assert "C++ cm kernel unavailable" in capfd.readouterr().err
