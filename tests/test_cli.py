"""The `vortex` command line: pack, unpack, inspect, verify.

Exit status: 0 success, 1 damaged or mismatched data or I/O errors, 2 usage errors, 128+N
on signal N (tests/test_cli_robust.py holds the I/O errors, signals and levels).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading

import pytest
from conftest import (
    CODECS,
    FIXTURES,
    HANG_GUARD_S,
    SAMPLES,
    leftovers,
    noise,
    run_vortex,
    text,
    vortex_command,
)

import vortexfmt
from vortexfmt import spec

CONTENT = text(1000)


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.bin"
    path.write_bytes(CONTENT)
    return path


def pack(cli, path, *args):
    return cli("pack", path, "--frame-size", "256", *args)


# --- Round trips -------------------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("name", SAMPLES)
def test_round_trip(cli, tmp_path, codec, name):
    content = SAMPLES[name]
    path = tmp_path / "data"
    path.write_bytes(content)
    result = cli("pack", path, "--codec", codec, "--frame-size", "256")
    assert result.exit_code == 0, result.stderr
    result = cli("unpack", tmp_path / "data.vtx", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == content
    assert vortexfmt.decompress((tmp_path / "data.vtx").read_bytes()) == content


def test_stdin_to_stdout(cli):
    result = cli("pack", "-", "--frame-size", "128", input=CONTENT)
    assert result.exit_code == 0
    blob = result.stdout_bytes
    assert vortexfmt.decompress(blob) == CONTENT
    result = cli("unpack", "-", input=blob)
    assert result.exit_code == 0
    assert result.stdout_bytes == CONTENT


def test_file_to_stdout_and_back(cli, source, tmp_path):
    result = pack(cli, source, "-o", "-")
    assert result.exit_code == 0
    assert not (tmp_path / "in.bin.vtx").exists()
    archive = tmp_path / "a.vtx"
    archive.write_bytes(result.stdout_bytes)
    result = cli("unpack", archive, "-o", "-")
    assert result.stdout_bytes == CONTENT


def pipeline(data: bytes, pack_args=(), unpack_args=()):
    """`vortex pack - | vortex unpack -` as real processes joined by a pipe."""
    command = vortex_command()
    packer = subprocess.Popen(command + ["pack", "-", *pack_args], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    unpacker = subprocess.Popen(command + ["unpack", "-", *unpack_args], stdin=packer.stdout,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    packer.stdout.close()  # the unpacker holds the read end now

    def feed():
        packer.stdin.write(data)
        packer.stdin.close()

    feeder = threading.Thread(target=feed)
    feeder.start()
    output, unpack_errors = unpacker.communicate(timeout=HANG_GUARD_S)
    feeder.join(timeout=HANG_GUARD_S)
    pack_errors = packer.stderr.read()
    packer.stderr.close()
    assert packer.wait(timeout=HANG_GUARD_S) == 0, pack_errors
    return unpacker.returncode, output, pack_errors.decode(), unpack_errors.decode()


@pytest.mark.parametrize("codec", ["stored", "auto"])
def test_real_pipe(codec):
    content = text(40_000) + noise(30_000) + bytes(20_000)
    code, output, pack_errors, unpack_errors = pipeline(
        content, ["--codec", codec, "--frame-size", "4K"])
    assert code == 0, unpack_errors
    assert output == content
    assert pack_errors.startswith("<stdin>: 90000 -> ")
    assert "-> <stdout> [22 frames" in pack_errors
    assert unpack_errors.strip() == "<stdin>: 90000 bytes -> <stdout>"


@pytest.mark.parametrize("threads", ["1", "3"])
def test_real_pipe_with_threads(threads):
    content = text(40_000) + noise(30_000) + bytes(20_000)
    code, output, _, unpack_errors = pipeline(
        content, ["--codec", "auto", "--frame-size", "4K", "-T", threads], ["-T", threads])
    assert code == 0, unpack_errors
    assert output == content


def test_real_pipe_empty_input():
    code, output, _, errors = pipeline(b"", ["-q"], ["-q"])
    assert (code, output, errors) == (0, b"", "")


def test_real_pipe_of_a_damaged_archive():
    blob = bytearray(vortexfmt.compress(CONTENT, codec="stored", frame_size=256))
    blob[52 + 32 + 256 + 32 + 10] ^= 0x40  # frame 1's payload
    result = run_vortex("unpack", "-", input=bytes(blob))
    assert result.returncode == 1
    assert b"frame 1 (raw bytes 256..511)" in result.stderr
    assert b"checksum mismatch" in result.stderr
    assert CONTENT.startswith(result.stdout)  # never a damaged byte


def test_real_verify_from_a_pipe():
    blob = vortexfmt.compress(CONTENT, frame_size=256)
    assert run_vortex("verify", "-", "-q", input=blob).returncode == 0
    result = run_vortex("verify", "-", input=blob[:-1])
    assert result.returncode == 1
    assert b"trailer" in result.stderr


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal")
def test_refuses_to_write_an_archive_to_a_terminal(source):
    primary, secondary = os.openpty()
    try:
        result = subprocess.run(vortex_command() + ["pack", str(source), "-o", "-"],
                                stdout=secondary, stderr=subprocess.PIPE, timeout=HANG_GUARD_S,
                                check=False)
    finally:
        os.close(primary)
        os.close(secondary)
    assert result.returncode == 2
    assert b"refusing to write an archive to a terminal" in result.stderr


@pytest.mark.parametrize("threads", ["1", "2", "5", "0"])
def test_threads_change_nothing_but_speed(cli, source, tmp_path, threads):
    assert pack(cli, source, "-o", tmp_path / "one.vtx", "-T", "1", "-q").exit_code == 0
    assert pack(cli, source, "-o", tmp_path / "many.vtx", "--threads", threads,
                "-q").exit_code == 0
    assert (tmp_path / "many.vtx").read_bytes() == (tmp_path / "one.vtx").read_bytes()
    assert cli("unpack", tmp_path / "many.vtx", "-o", tmp_path / "out", "-T",
               threads).exit_code == 0
    assert (tmp_path / "out").read_bytes() == CONTENT
    assert cli("verify", tmp_path / "many.vtx", "-T", threads, "-q").exit_code == 0


def test_default_threads_follow_cpus_and_memory(monkeypatch, tmp_path):
    from vortexfmt.cli import threads

    assert threads.resolve_threads(3) == 3  # asked for: taken as is
    monkeypatch.setattr(threads, "CGROUP_MEMORY_LIMITS", (str(tmp_path / "none"),))
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(64)),
                        raising=False)
    monkeypatch.setattr(threads.os, "sysconf", lambda name: {
        "SC_PHYS_PAGES": (64 << 30) // 4096, "SC_PAGE_SIZE": 4096}[name])
    assert threads.resolve_threads(0) == threads.MAX_DEFAULT_THREADS  # 64 CPUs, 64 GiB
    monkeypatch.setattr(threads.os, "sysconf", lambda name: {
        "SC_PHYS_PAGES": (2 << 30) // 4096, "SC_PAGE_SIZE": 4096}[name])
    assert threads.resolve_threads(0) == 2  # 2 GiB: half of it holds two threads
    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert threads.resolve_threads(0) == 1


def test_default_threads_keep_to_a_containers_memory_limit(monkeypatch, tmp_path):
    from vortexfmt.cli import threads

    monkeypatch.setattr(threads.os, "sched_getaffinity", lambda pid: set(range(64)),
                        raising=False)
    monkeypatch.setattr(threads.os, "sysconf", lambda name: {
        "SC_PHYS_PAGES": (64 << 30) // 4096, "SC_PAGE_SIZE": 4096}[name])
    v2, v1 = tmp_path / "memory.max", tmp_path / "memory.limit_in_bytes"
    monkeypatch.setattr(threads, "CGROUP_MEMORY_LIMITS", (str(v2), str(v1)))
    assert threads.resolve_threads(0) == 8  # neither file: the machine's 64 GiB
    v2.write_text("max\n")
    v1.write_text("9223372036854771712\n")  # cgroup v1 says "no limit" so
    assert threads.resolve_threads(0) == 8
    v2.write_text(f"{3 << 30}\n")  # 3 GiB: half of it holds three threads
    assert threads.resolve_threads(0) == 3


def test_negative_threads_are_a_usage_error(cli, source):
    result = pack(cli, source, "-T", "-1")
    assert result.exit_code == 2
    assert "-1 is not in the range x>=0" in result.stderr


# --- Output names, overwriting, the input --------------------------------------------------------


def test_pack_names_its_output_input_dot_vtx(cli, source, tmp_path):
    result = pack(cli, source)
    assert result.exit_code == 0
    assert vortexfmt.decompress((tmp_path / "in.bin.vtx").read_bytes()) == CONTENT


def test_unpack_names_its_output_archive_minus_vtx(cli, tmp_path):
    (tmp_path / "notes.txt.vtx").write_bytes(vortexfmt.compress(CONTENT))
    result = cli("unpack", tmp_path / "notes.txt.vtx")
    assert result.exit_code == 0
    assert (tmp_path / "notes.txt").read_bytes() == CONTENT


@pytest.mark.parametrize("name", ["archive.bin", ".vtx"])
def test_unpack_needs_o_without_a_vtx_suffix(cli, tmp_path, name):
    (tmp_path / name).write_bytes(vortexfmt.compress(CONTENT))
    result = cli("unpack", tmp_path / name)
    assert result.exit_code == 2
    assert "use -o FILE" in result.stderr


def test_never_deletes_the_input(cli, source, tmp_path):
    assert pack(cli, source).exit_code == 0
    assert source.read_bytes() == CONTENT
    archive = tmp_path / "in.bin.vtx"
    blob = archive.read_bytes()
    assert cli("unpack", archive, "-o", tmp_path / "out").exit_code == 0
    assert archive.read_bytes() == blob
    assert cli("verify", archive).exit_code == 0
    assert cli("inspect", archive).exit_code == 0
    assert archive.read_bytes() == blob


def test_pack_refuses_to_overwrite_without_force(cli, source, tmp_path):
    archive = tmp_path / "in.bin.vtx"
    archive.write_bytes(b"precious")
    result = pack(cli, source)
    assert result.exit_code == 2
    assert "already exists; use -f to overwrite it" in result.stderr
    assert archive.read_bytes() == b"precious"
    result = pack(cli, source, "-f")
    assert result.exit_code == 0
    assert vortexfmt.decompress(archive.read_bytes()) == CONTENT


def test_unpack_refuses_to_overwrite_without_force(cli, tmp_path):
    archive = tmp_path / "data.vtx"
    archive.write_bytes(vortexfmt.compress(CONTENT))
    (tmp_path / "data").write_bytes(b"precious")
    result = cli("unpack", archive)
    assert result.exit_code == 2
    assert "already exists" in result.stderr
    assert (tmp_path / "data").read_bytes() == b"precious"
    assert cli("unpack", archive, "--force").exit_code == 0
    assert (tmp_path / "data").read_bytes() == CONTENT


def test_no_temporary_files_are_left(cli, source, tmp_path):
    pack(cli, source)
    cli("unpack", tmp_path / "in.bin.vtx", "-o", tmp_path / "out")
    assert leftovers(tmp_path) == []


def test_output_file_gets_the_usual_permissions(cli, source, tmp_path):
    mask = os.umask(0o022)
    try:
        pack(cli, source)
    finally:
        os.umask(mask)
    assert (tmp_path / "in.bin.vtx").stat().st_mode & 0o777 == 0o644


# --- Messages ------------------------------------------------------------------------------------


def test_pack_summary_line(cli, source, tmp_path):
    result = pack(cli, source, "--codec", "stored")
    size = (tmp_path / "in.bin.vtx").stat().st_size
    assert result.stdout == ""
    assert result.stderr == (f"{source}: 1000 -> {size} bytes (ratio {1000 / size:.3f}, "
                             f"{8 * size / 1000:.4f} bits/byte) -> {source}.vtx "
                             "[4 frames: stored 4]\n")


def test_pack_summary_counts_codecs(cli, tmp_path):
    path = tmp_path / "mixed"
    path.write_bytes(noise(256) + text(512))
    result = cli("pack", path, "--frame-size", "256")
    match = re.search(r"\[3 frames: stored 1, (zstd|lzma|cm) \d(, (lzma|cm) \d)?\]$",
                      result.stderr)
    assert match, result.stderr


def test_summary_of_empty_input(cli, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    result = cli("pack", path)
    assert result.exit_code == 0
    assert "0 -> 96 bytes" in result.stderr and "[0 frames]" in result.stderr
    assert "(ratio -, - bits/byte)" in result.stderr  # no ratio of nothing


def test_unpack_and_verify_messages(cli, source, tmp_path):
    pack(cli, source)
    archive = tmp_path / "in.bin.vtx"
    result = cli("unpack", archive, "-o", tmp_path / "out")
    assert result.stderr == f"{archive}: 1000 bytes -> {tmp_path / 'out'}\n"
    result = cli("verify", archive)
    assert result.exit_code == 0
    assert result.stderr == f"{archive}: OK (4 frames, 1000 bytes)\n"


def test_quiet_prints_nothing(cli, source, tmp_path):
    archive = tmp_path / "in.bin.vtx"
    for args in (["pack", source, "-q"], ["unpack", archive, "-o", tmp_path / "out", "-q"],
                 ["verify", archive, "-q"], ["inspect", archive, "-q"]):
        result = cli(*args)
        assert (result.exit_code, result.stdout, result.stderr) == (0, "", ""), args


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0
    assert vortexfmt.__version__ in result.stdout


# --- inspect -------------------------------------------------------------------------------------


def test_inspect_json(cli, tmp_path):
    archive = tmp_path / "a.vtx"
    archive.write_bytes(vortexfmt.compress(CONTENT, codec="zstd", frame_size=256))
    result = cli("inspect", archive, "--json")
    assert result.exit_code == 0
    info = json.loads(result.stdout)
    assert info["format_version"] == "1.0"
    assert info["flags"] == 0
    assert info["frame_size"] == 256
    assert info["model_id"] is None
    assert info["raw_size"] == 1000
    assert info["archive_size"] == archive.stat().st_size
    assert info["frame_count"] == 4
    assert info["content_checksum"] == f"{spec.xxh64(CONTENT):016x}"
    assert info["ratio"] == pytest.approx(1000 / archive.stat().st_size)
    frames = info["frames"]
    assert [f["index"] for f in frames] == [0, 1, 2, 3]
    assert [f["raw_offset"] for f in frames] == [0, 256, 512, 768]
    assert [f["raw_size"] for f in frames] == [256, 256, 256, 232]
    assert {f["codec"] for f in frames} == {"zstd"}
    assert frames[0]["offset"] == spec.FILE_HEADER_SIZE
    assert frames[1]["offset"] == 52 + 32 + frames[0]["packed_size"]
    assert frames[3]["checksum"] == f"{spec.xxh64(CONTENT[768:]):016x}"


def test_inspect_json_of_an_empty_archive(cli, tmp_path):
    archive = tmp_path / "a.vtx"
    archive.write_bytes(vortexfmt.compress(b""))
    info = json.loads(cli("inspect", archive, "--json").stdout)
    assert (info["raw_size"], info["frame_count"], info["frames"]) == (0, 0, [])
    assert info["bits_per_byte"] is None


def test_inspect_table(cli, tmp_path):
    archive = tmp_path / "a.vtx"
    archive.write_bytes(vortexfmt.compress(CONTENT, codec="stored", frame_size=256))
    result = cli("inspect", archive)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert "format_version    1.0" in lines
    assert "frame_size        256" in lines
    assert "frame_count       4" in lines
    rows = [line.split() for line in lines if re.match(r"^\s+\d+\s+\d+\s+stored", line)]
    assert [row[:5] for row in rows] == [["0", "52", "stored", "256", "256"],
                                         ["1", "340", "stored", "256", "256"],
                                         ["2", "628", "stored", "256", "256"],
                                         ["3", "916", "stored", "232", "232"]]


def test_inspect_from_stdin(cli):
    result = cli("inspect", "-", "--json", input=vortexfmt.compress(CONTENT, frame_size=256))
    assert json.loads(result.stdout)["frame_count"] == 4


# --- Exit codes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["pack", "unpack", "verify", "inspect"])
def test_a_missing_input_is_one_line_and_exit_1(cli, tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    result = cli(command, "missing.vtx")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == ["vortex: missing.vtx: No such file or directory"]
    assert leftovers(tmp_path) == [] and not (tmp_path / "missing").exists()


@pytest.mark.parametrize("args, message", [
    (["pack", "in.bin", "--codec", "gzip"], "Invalid value for '--codec'"),
    (["pack", "in.bin", "--frame-size", "big"], "is not a size such as 65536, 64K or 1M"),
    (["pack", "in.bin", "--frame-size", "0", "-o", "zero.vtx"], "'0' lies outside 1..268435456"),
    (["pack", "in.bin", "--frame-size", "1G", "-o", "huge.vtx"], "lies outside 1..268435456"),
    (["frobnicate"], "No such command"),
    (["pack", "in.bin", "in.bin", "-o", "x.vtx"], "-o and -c take one INPUT"),
    (["pack", "in.bin", "-1", "--codec", "lzma"], "not both"),
])
def test_usage_errors_exit_2(cli, source, monkeypatch, args, message):
    monkeypatch.chdir(source.parent)
    result = cli(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("vortex: ")
    assert leftovers(source.parent) == []
    assert not (source.parent / "zero.vtx").exists()
    assert not (source.parent / "huge.vtx").exists()


@pytest.mark.parametrize("text_size, expected", [("64", 64), ("1K", 1024), ("1KiB", 1024),
                                                 ("4kb", 4096), ("2M", 2 << 20)])
def test_frame_size_option(cli, source, text_size, expected):
    assert cli("pack", source, "--frame-size", text_size, "-f").exit_code == 0
    with vortexfmt.open(f"{source}.vtx") as reader:
        assert reader.header.frame_size == expected


@pytest.mark.parametrize("command", [["unpack", "-o", "out"], ["verify"], ["inspect"]])
def test_unknown_major_version_is_named(cli, tmp_path, command):
    archive = FIXTURES / "bad" / "major-version-2.vtx"
    result = cli(command[0], archive, *command[1:])
    assert result.exit_code == 1
    assert "unsupported format version 2.0 (this reader supports 1.x)" in result.stderr


def test_exit_1_on_a_damaged_archive(cli, tmp_path):
    blob = bytearray(vortexfmt.compress(CONTENT, frame_size=256))
    blob[-40] ^= 1
    (tmp_path / "bad.vtx").write_bytes(bytes(blob))
    for args in (["verify"], ["unpack"], ["inspect"]):
        result = cli(args[0], tmp_path / "bad.vtx")
        assert result.exit_code == 1, args
        assert result.stderr.startswith(f"vortex: {tmp_path / 'bad.vtx'}: ")


def test_python_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "vortexfmt.cli.main", "verify", "--help"],
                            capture_output=True, timeout=HANG_GUARD_S, check=False)
    assert result.returncode == 0
    assert b"Decode all of each ARCHIVE" in result.stdout


@pytest.mark.parametrize("command, threads", [("pack", 1), ("unpack", 2)])
def test_ctrl_c_stops_a_command_and_leaves_no_output(tmp_path, command, threads):
    """SIGINT once the first frame is out, while the next ones are being coded (on the main
    thread with -T 1, on workers with -T 2): the command fails and leaves no output file.
    (test_cm_codec holds that the kernel stops within 64 KiB.)"""
    import signal
    import time

    source = tmp_path / "input.bin"
    source.write_bytes(noise(3 << 19))  # three frames of some seconds each
    if command == "pack":
        args = [source, "--codec", "cm", "--frame-size", "512K"]
        output, begun = tmp_path / "input.bin.vtx", spec.FILE_HEADER_SIZE
    else:
        archive = tmp_path / "in.vtx"
        archive.write_bytes(vortexfmt.compress(source.read_bytes(), codec="cm",
                                               frame_size=1 << 19, threads=2))
        args, output, begun = [archive, "-o", tmp_path / "out.bin"], tmp_path / "out.bin", 0
    process = subprocess.Popen(  # SIGINT as in a shell, even if this test's was ignored
        vortex_command() + [command, *map(str, args), "-T", str(threads), "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not any(
                (tmp_path / name).stat().st_size > begun for name in leftovers(tmp_path)):
            time.sleep(0.02)  # until the first frame is in the output
        assert process.poll() is None
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=HANG_GUARD_S)
    finally:
        process.kill()
    assert process.returncode == 130  # 128 + SIGINT, as gzip and xz
    assert not output.exists()
    assert leftovers(tmp_path) == []


# --- Outputs that would lose data, options that would be ignored --------------------------------


@pytest.mark.parametrize("via_link", [False, True], ids=["same-name", "symlink"])
def test_pack_and_unpack_never_overwrite_their_input_even_with_force(cli, source, tmp_path,
                                                                     via_link):
    given = source
    if via_link:
        given = tmp_path / "link.bin"
        given.symlink_to(source)
    result = pack(cli, given, "-o", source, "-f")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [f"vortex: {source}: is the input file; it would be "
                                          "overwritten, choose another output"]
    assert source.read_bytes() == CONTENT
    archive = tmp_path / "in.vtx"
    assert pack(cli, source, "-o", archive).exit_code == 0
    packed = archive.read_bytes()
    result = cli("unpack", archive, "-o", archive, "-f")
    assert result.exit_code == 1 and "is the input file" in result.stderr
    assert archive.read_bytes() == packed
    assert leftovers(tmp_path) == []


def test_an_empty_output_name_is_refused_before_coding(cli, source):
    result = pack(cli, source, "-o", "")
    assert result.exit_code == 2
    assert result.stderr.startswith("vortex: the output name is empty")


@pytest.mark.parametrize("model", ["in.bin", "no-such-model", "."])
def test_pack_refuses_a_model_that_no_codec_would_use(cli, source, tmp_path, monkeypatch,
                                                      model):
    """auto primes cm with a profile and takes no neural model: anything else given as
    --model is an error, never ignored."""
    monkeypatch.chdir(tmp_path)
    result = pack(cli, source, "-o", "out.vtx", "--model", model)
    assert result.exit_code == 2
    assert f"vortex: {model}: not a profile" in result.stderr
    assert not (tmp_path / "out.vtx").exists()


def test_a_file_named_as_a_profile_is_checked_as_one(cli, source, tmp_path):
    fake = tmp_path / "fake.vxprofile"
    fake.write_bytes(b"not a profile")
    result = pack(cli, source, "-o", tmp_path / "out.vtx", "--model", fake)
    assert result.exit_code == 1
    assert result.stderr.startswith(f"vortex: {fake}: not a profile")
    assert not (tmp_path / "out.vtx").exists()


@pytest.mark.parametrize("args", [["unpack", "-o", "out"], ["verify"]])
def test_a_memory_limit_of_zero_is_a_usage_error(cli, source, tmp_path, args):
    archive = tmp_path / "in.vtx"
    assert pack(cli, source, "-o", archive).exit_code == 0
    result = cli(args[0], archive, *args[1:], "--memory-limit", "0")
    assert result.exit_code == 2
    assert result.stderr.startswith("vortex: Invalid value for '--memory-limit': '0' lies "
                                    "outside 1.. bytes")


def test_unpack_to_stdout_says_where_its_output_stopped(cli, source, tmp_path):
    archive = tmp_path / "in.vtx"
    assert pack(cli, source, "-o", archive).exit_code == 0
    damaged = bytearray(archive.read_bytes())
    damaged[-200] ^= 0x01  # inside the last frames
    archive.write_bytes(bytes(damaged))
    result = cli("unpack", "-c", archive)
    assert result.exit_code == 1
    assert "output to <stdout> stopped there" in result.stderr
    assert "nothing written" not in result.stderr


def test_pack_warns_of_tiny_frames_and_still_packs_them(cli, source, tmp_path):
    result = cli("pack", source, "--frame-size", "100", "-o", tmp_path / "tiny.vtx")
    assert result.exit_code == 0
    assert "vortex: warning: frames of 100 bytes each cost 56 bytes" in result.stderr
    assert vortexfmt.decompress((tmp_path / "tiny.vtx").read_bytes()) == CONTENT
    quiet = cli("pack", source, "--frame-size", "100", "-o", tmp_path / "q.vtx", "-q")
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert "warning" not in cli("pack", source, "-o", tmp_path / "big.vtx").stderr
