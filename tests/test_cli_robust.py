"""The `vortex` command line trusted with the only copy of the data: every write checked
(full disks, short writes, broken pipes), every OS error one line, signals leave nothing
behind, several inputs, -c, -V, levels, and "not a Vortex archive"."""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import signal
import subprocess
import time

import pytest
from conftest import HANG_GUARD_S, leftovers, noise, run_vortex, text, vortex_command

import vortexfmt
from vortexfmt.codecs.levels import LEVELS
from vortexfmt.container.writer import ArchiveWriter

CONTENT = text(3000)


@contextlib.contextmanager
def tmpfs(directory, options="size=1m"):
    """A real tmpfs mounted on `directory` (skips where mount is not permitted)."""
    directory.mkdir(exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(directory)],
                            capture_output=True, check=False)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.decode().strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", str(directory)], check=False)


def one_line(stderr: bytes) -> str:
    lines = stderr.decode().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in lines[0]
    return lines[0]


# --- Full disks, short writes, broken pipes ------------------------------------------------


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    """An archive of 3 MB of noise (zstd: fast) and its content."""
    directory = tmp_path_factory.mktemp("big")
    content = noise(3_000_000, 7)
    archive = directory / "big.vtx"
    archive.write_bytes(vortexfmt.compress(content, codec="stored", frame_size=1 << 20))
    (directory / "big").write_bytes(content)
    return archive, directory / "big"


def test_unpack_to_stdout_on_a_full_disk_fails(big, tmp_path):
    archive, _ = big
    with tmpfs(tmp_path / "full") as full:
        with open(full / "out", "wb") as stdout:
            result = subprocess.run(vortex_command() + ["unpack", str(archive), "-o", "-"],
                                    stdout=stdout, stderr=subprocess.PIPE,
                                    timeout=HANG_GUARD_S, check=False)
    assert result.returncode == 1
    assert one_line(result.stderr) == "vortex: <stdout>: No space left on device"


@pytest.mark.parametrize("to", ["file", "stdout"])
def test_pack_on_a_full_disk_fails_and_leaves_nothing(big, tmp_path, to):
    _, content = big
    with tmpfs(tmp_path / "full") as full:
        target = full / "a.vtx"
        if to == "file":
            result = run_vortex("pack", "--codec", "stored", content, "-o", target)
            name = str(target)
        else:
            with open(target, "wb") as stdout:
                result = subprocess.run(
                    vortex_command() + ["pack", "--codec", "stored", str(content), "-o", "-"],
                    stdout=stdout, stderr=subprocess.PIPE, timeout=HANG_GUARD_S, check=False)
            name = "<stdout>"
        assert result.returncode == 1
        assert one_line(result.stderr) == f"vortex: {name}: No space left on device"
        if to == "file":
            assert sorted(os.listdir(full)) == []


class ShortSink(io.RawIOBase):
    """Takes at most `most` bytes a write; after `budget` bytes, raises ENOSPC (or returns
    `then`)."""

    def __init__(self, most=7, budget=None, then="raise"):
        self.data = bytearray()
        self.most, self.budget, self.then = most, budget, then
        self.writes_after_failure = 0

    def writable(self):
        return True

    def write(self, data):
        if self.budget is not None and len(self.data) >= self.budget:
            self.writes_after_failure += 1
            if self.then == "raise":
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.then
        chunk = bytes(data[:self.most])
        self.data += chunk
        return len(chunk)


def test_writer_completes_short_writes():
    sink = ShortSink(most=7)
    with ArchiveWriter(sink, codec="zstd", frame_size=256) as writer:
        writer.write(CONTENT)
    assert vortexfmt.decompress(bytes(sink.data)) == CONTENT


@pytest.mark.parametrize("then", ["raise", 0, None])
def test_writer_raises_at_the_first_failing_write_and_writes_no_index(then):
    sink = ShortSink(most=1000, budget=400, then=then)
    with pytest.raises(OSError) as caught:
        with ArchiveWriter(sink, codec="stored", frame_size=256) as writer:
            writer.write(CONTENT)
    assert caught.value.errno == (errno.ENOSPC if then == "raise" else errno.EIO)
    assert sink.writes_after_failure == 1  # no index, no trailer tried after it


def test_broken_pipe_is_quiet(big):
    archive, _ = big
    process = subprocess.Popen(vortex_command() + ["unpack", str(archive), "-o", "-"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdout.read(1)
    process.stdout.close()
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=HANG_GUARD_S) != 0
    assert b"Traceback" not in stderr and b"Exception ignored" not in stderr
    assert len(stderr.splitlines()) <= 1


# --- OS errors: one line, before any coding ------------------------------------------------


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.bin"
    path.write_bytes(CONTENT)
    return path


def test_output_to_an_existing_directory_is_refused_before_reading(tmp_path, source,
                                                                   monkeypatch):
    (tmp_path / "out").mkdir()
    fifo = tmp_path / "fifo"  # reading it would block: proves the input is never opened
    os.mkfifo(fifo)
    for args in (["pack", fifo, "-o", tmp_path / "out", "-f"],
                 ["pack", fifo, "-o", tmp_path / "out"]):
        result = run_vortex(*args)
        assert result.returncode == 1
        assert one_line(result.stderr) == f"vortex: {tmp_path / 'out'}: Is a directory"
    assert leftovers(tmp_path) == [] and leftovers(tmp_path / "out") == []


def test_missing_output_directory(tmp_path, source):
    result = run_vortex("pack", source, "-o", tmp_path / "nope" / "a.vtx")
    assert result.returncode == 1
    assert one_line(result.stderr) == \
        f"vortex: {tmp_path / 'nope' / 'a.vtx'}: No such file or directory"


def test_output_directory_removed_while_writing_is_reported_by_the_output_name(tmp_path):
    """The finished temporary file cannot be renamed: the error names the output, not the
    hidden temporary file, and nothing is left behind."""
    import shutil

    from vortexfmt.cli.files import atomic_output

    directory = tmp_path / "gone"
    directory.mkdir()
    target = str(directory / "out.vtx")
    with pytest.raises(FileNotFoundError) as raised:
        with atomic_output(target) as sink:
            sink.write(b"data")
            shutil.rmtree(directory)
    assert raised.value.filename == target
    assert not directory.exists()


def test_read_only_directory(tmp_path, source):
    archive = tmp_path / "a.vtx"
    archive.write_bytes(vortexfmt.compress(CONTENT))
    if os.geteuid() == 0:  # root writes anywhere: a read-only file system instead
        context = tmpfs(tmp_path / "ro", "ro,size=1m")
    else:
        (tmp_path / "ro").mkdir()
        os.chmod(tmp_path / "ro", 0o555)
        context = contextlib.nullcontext(tmp_path / "ro")
    with context as directory:
        for args in (["pack", source, "-o", directory / "a.vtx"],
                     ["unpack", archive, "-o", directory / "out"]):
            result = run_vortex(*args)
            assert result.returncode == 1
            line = one_line(result.stderr)
            assert line.startswith(f"vortex: {args[3]}: ")
            assert "Read-only file system" in line or "Permission denied" in line
        assert os.listdir(directory) == []


def test_input_is_a_directory(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d.vtx").mkdir()
    for args in (["pack", tmp_path / "d"], ["unpack", tmp_path / "d.vtx"],
                 ["verify", tmp_path / "d.vtx"]):
        result = run_vortex(*args)
        assert result.returncode == 1
        assert one_line(result.stderr).endswith(": Is a directory")


# --- Signals ---------------------------------------------------------------------------------


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143),
                                          (signal.SIGHUP, 129)])
def test_signals_exit_128_plus_n_and_leave_nothing(tmp_path, signum, code):
    source = tmp_path / "input.bin"
    source.write_bytes(noise(2 << 20, 3))
    process = subprocess.Popen(
        vortex_command() + ["pack", str(source), "--codec", "cm", "--frame-size", "1M",
                            "-T", "1", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: [signal.signal(s, signal.SIG_DFL) for s in
                            (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)])
    try:
        while process.poll() is None and not leftovers(tmp_path):
            time.sleep(0.01)  # until coding has started (the .part file exists)
        assert process.poll() is None
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=HANG_GUARD_S)
    finally:
        process.kill()
    assert process.returncode == code, stderr
    assert b"Traceback" not in stderr
    assert leftovers(tmp_path) == []
    assert not (tmp_path / "input.bin.vtx").exists()


# --- Several inputs, -c, stdin, -V -----------------------------------------------------------


def test_several_inputs(tmp_path):
    names = ["a", "b", "c"]
    for number, name in enumerate(names):
        (tmp_path / name).write_bytes(text(500 + number))
    result = run_vortex("pack", "-q", *[tmp_path / n for n in names])
    assert result.returncode == 0, result.stderr
    for name in names:
        (tmp_path / name).rename(tmp_path / (name + ".orig"))
    result = run_vortex("unpack", "-q", *[tmp_path / (n + ".vtx") for n in names])
    assert result.returncode == 0, result.stderr
    for name in names:
        assert (tmp_path / name).read_bytes() == (tmp_path / (name + ".orig")).read_bytes()


def test_an_error_on_one_input_does_not_stop_the_others(tmp_path):
    (tmp_path / "a").write_bytes(b"A" * 100)
    (tmp_path / "c").write_bytes(b"C" * 100)
    (tmp_path / "b").mkdir()
    result = run_vortex("pack", "-q", tmp_path / "a", tmp_path / "b", tmp_path / "c")
    assert result.returncode == 1
    assert one_line(result.stderr) == f"vortex: {tmp_path / 'b'}: Is a directory"
    assert (tmp_path / "a.vtx").exists() and (tmp_path / "c.vtx").exists()


def test_dash_c_writes_to_stdout(tmp_path, source):
    result = run_vortex("pack", "-c", "-q", source)
    assert result.returncode == 0
    assert vortexfmt.decompress(result.stdout) == CONTENT
    assert not (tmp_path / "in.bin.vtx").exists()
    (tmp_path / "a.vtx").write_bytes(result.stdout)
    result = run_vortex("unpack", "-c", tmp_path / "a.vtx", tmp_path / "a.vtx")
    assert result.stdout == CONTENT + CONTENT
    result = run_vortex("pack", "-c", source, source)
    assert result.returncode == 2


def test_pack_with_no_file_reads_stdin():
    result = run_vortex("pack", "-q", input=CONTENT)
    assert result.returncode == 0
    assert vortexfmt.decompress(result.stdout) == CONTENT


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
@pytest.mark.parametrize("args", [["pack"], ["pack", "-"], ["unpack", "-"]])
def test_refuses_to_read_a_terminal(tmp_path, args):
    primary, secondary = os.openpty()
    try:
        result = subprocess.run(vortex_command() + args + ["-o", str(tmp_path / "x")],
                                stdin=secondary, capture_output=True, timeout=HANG_GUARD_S,
                                check=False)
    finally:
        os.close(primary)
        os.close(secondary)
    assert result.returncode == 2
    assert b"refusing to read from a terminal" in result.stderr


@pytest.mark.parametrize("flag", ["-V", "--version"])
def test_version(flag):
    result = run_vortex(flag)
    assert result.returncode == 0
    assert result.stdout.decode().strip() == f"vortex, version {vortexfmt.__version__}"


# --- Not a Vortex archive -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["empty", "gzip", "gzip-big"])
@pytest.mark.parametrize("command", [["unpack", "-o", "out"], ["verify"], ["inspect"]])
def test_not_a_vortex_archive(tmp_path, kind, command):
    path = tmp_path / "input"
    path.write_bytes({"empty": b"", "gzip": gzip.compress(b"hello\n"),
                      "gzip-big": gzip.compress(noise(100_000))}[kind])
    result = run_vortex(command[0], path, *command[1:], cwd=tmp_path)
    assert result.returncode == 1
    assert one_line(result.stderr).startswith(f"vortex: {path}: not a Vortex archive (")
    assert not (tmp_path / "out").exists() and leftovers(tmp_path) == []


def test_not_a_vortex_archive_on_stdin():
    result = run_vortex("unpack", "-", input=b"")
    assert result.returncode == 1
    assert one_line(result.stderr).startswith("vortex: <stdin>: not a Vortex archive (")


# --- Levels --------------------------------------------------------------------------------


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_levels_round_trip_and_name_their_codec(cli, tmp_path, level):
    path = tmp_path / "data"
    path.write_bytes(text(5000))
    result = cli("pack", path, f"-{level}", "--frame-size", "1K")
    assert result.exit_code == 0, result.stderr
    expected = {"zstd": "zstd", "lzma": "lzma"}.get(LEVELS[level][0])
    if expected:
        assert f": {expected} 5]" in result.stderr
    assert vortexfmt.decompress((tmp_path / "data.vtx").read_bytes()) == text(5000)
    assert cli("pack", path, "--level", str(level), "-f", "-o", tmp_path / "b.vtx",
               "--frame-size", "1K").exit_code == 0
    assert (tmp_path / "b.vtx").read_bytes() == (tmp_path / "data.vtx").read_bytes()


def test_default_level_is_auto(cli, tmp_path):
    path = tmp_path / "data"
    path.write_bytes(text(5000))
    cli("pack", path, "-o", tmp_path / "default.vtx", "--frame-size", "1K")
    cli("pack", path, "-9", "-o", tmp_path / "nine.vtx", "--frame-size", "1K")
    cli("pack", path, "--codec", "auto", "-o", tmp_path / "auto.vtx", "--frame-size", "1K")
    blobs = {(tmp_path / n).read_bytes() for n in ("default.vtx", "nine.vtx", "auto.vtx")}
    assert len(blobs) == 1


def test_level_and_codec_are_exclusive_in_the_library():
    from vortexfmt.codecs.auto import FrameEncoder

    with pytest.raises(ValueError):
        FrameEncoder("lzma", level=1)
    with pytest.raises(ValueError):
        ArchiveWriter(io.BytesIO(), level=10)
    assert FrameEncoder("auto", level=1).codecs[0].level == 3
