"""`vortex pack | unpack | inspect | verify`: the command line, following zstd/xz habits.

Exit status (for several inputs, the worst of theirs; an error on one input is reported
and the others are still processed):

* 0: success.
* 1: damaged or mismatched data, an input that is not a Vortex archive, or an I/O error
  (a full disk, a read-only or missing directory, an unreadable input, an output that is a
  directory). Every such error is one line on stderr, ``vortex: PATH: reason``.
* 2: usage errors.
* 128 + N on signal N: 130 on SIGINT, 143 on SIGTERM, 129 on SIGHUP (as gzip and xz),
  141 (quietly) when the reader of stdout went away (EPIPE).

No output file is ever left half written: outputs are written to ``.vortex-*.part`` files
beside the target, flushed, fsync'ed and renamed; any error or signal removes them.
"""

from __future__ import annotations

import inspect as _inspect
import json
import os
import shutil
import signal
import sys
import tempfile

import click
from vortexfmt.cli.cluster import dask_option, run_on_dask
from vortexfmt.cli.files import (
    STDIO,
    atomic_output,
    check_can_read,
    check_can_write,
    display,
    named,
)
from vortexfmt.cli.progress import progress_bar
from vortexfmt.cli.sizes import SizeType, size_summary
from vortexfmt.cli.threads import decode_threads_option, resolve_threads, threads_option

from vortexfmt import spec
from vortexfmt.codecs import WRITER_CODEC_CHOICES, codec_name
from vortexfmt.codecs.levels import MAX_LEVEL, MIN_LEVEL
from vortexfmt.container.check import check_archive
from vortexfmt.container.layout import read_layout
from vortexfmt.container.reader import ArchiveReader
from vortexfmt.container.writer import DEFAULT_FRAME_SIZE, ArchiveWriter
from vortexfmt.errors import VortexError

SUFFIX = ".vtx"
#: pack warns below this frame size, where cm codes no frame (a 345 KB file in 1-byte frames
#: became 19.7 MB)
SMALL_FRAME_SIZE = 256
COPY_CHUNK = 1 << 20
EXIT_SIGPIPE = 128 + signal.SIGPIPE


class Failed(Exception):
    """One input failed: its message has been printed; `code` is its exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def fail(message: str) -> None:
    """Report damaged or mismatched data: message on stderr, status 1 for this input."""
    click.echo(f"vortex: {message}", err=True)
    raise Failed(1)


class Signalled(KeyboardInterrupt):
    """SIGINT, SIGTERM or SIGHUP: raised like Ctrl-C, so that every cleanup runs (the
    writer aborts, the temporary output is removed); the command exits 128 + signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.code = 128 + signum


_HANDLED_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP")
                         if hasattr(signal, name))


def _install_signal_handlers() -> dict:
    """Handlers raising Signalled; a signal the caller ignores (nohup) stays ignored.
    Returns the previous handlers."""
    previous = {}
    delivered = []

    def handler(signum, frame):
        if delivered:  # cleanup under way: a second signal must not cut it short
            return
        delivered.append(signum)
        raise Signalled(signum)

    for number in _HANDLED_SIGNALS:
        try:
            old = signal.getsignal(number)
            if old is signal.SIG_IGN:
                continue
            signal.signal(number, handler)
            previous[number] = old
        except (ValueError, OSError):  # not the main thread
            pass
    return previous


def _stdout_gone() -> None:
    """After EPIPE on stdout: point it at /dev/null so that the flush at exit is quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real stdout (tests)
        pass


class _VortexGroup(click.Group):
    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True,
             **extra):
        previous = _install_signal_handlers()
        try:
            if not standalone_mode:
                return super().main(args, prog_name or "vortex", complete_var, False, **extra)
            try:
                result = super().main(args, prog_name or "vortex", complete_var, False,
                                      **extra)
            except click.UsageError as error:  # one line, as every other error
                hint = f" (see '{error.ctx.command_path} --help')" if error.ctx else ""
                click.echo(f"vortex: {error.format_message()}{hint}", err=True)
                sys.exit(error.exit_code)
            except click.ClickException as error:
                error.show()
                sys.exit(error.exit_code)
            except click.Abort:
                click.echo("Aborted!", err=True)
                sys.exit(1)
            sys.exit(result if isinstance(result, int) else 0)  # an int: --help, --version
        finally:
            for number, old in previous.items():
                signal.signal(number, old)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except Signalled as interrupt:
            sys.exit(interrupt.code)
        except KeyboardInterrupt:
            sys.exit(128 + signal.SIGINT)
        except BrokenPipeError:
            _stdout_gone()
            sys.exit(EXIT_SIGPIPE)


def run_each(paths, one) -> None:
    """Run `one(path)` for each input; report an OSError or usage error as one line and go
    on; exit with the worst status."""
    status = 0
    for path in paths:
        try:
            one(path)
        except Failed as failure:
            status = max(status, failure.code)
        except BrokenPipeError:
            raise
        except OSError as error:
            name = error.filename if error.filename is not None else display(path)
            click.echo(f"vortex: {name}: {error.strerror or error}", err=True)
            status = max(status, 1)
        except click.UsageError as error:
            if len(paths) == 1:
                raise
            click.echo(f"vortex: {error.format_message()}", err=True)
            status = max(status, 2)
    if status:
        sys.exit(status)


def _quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Print nothing but errors.")(function)


def _device_option(function):
    return click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                        default="auto", show_default=True,
                        help="Where the model codecs (mixed, neural) run (auto: "
                        "CUDA when present).")(function)


def _model_option(function):
    """--model and --device for pack."""
    return click.option("--model", "model", metavar="MODEL", default=None,
                        help="A profile (.vxprofile, from vortex train) that primes cm, or "
                        "with --codec neural or mixed a model file or id (default: no "
                        "profile; the built-in model for those codecs).")(
        _device_option(function))


def _archive_model_option(function):
    """--model and --device for the commands that decode."""
    return click.option("--model", "model", metavar="MODEL", default=None,
                        help="The profile or model the archive was packed with (default: "
                        "found by the archive's id: README \"Profiles\").")(
        _device_option(function))


def _stdout_option(function):
    return click.option("-c", "--stdout", "to_stdout", is_flag=True,
                        help="Write to stdout (as -o -).")(function)


def _memory_limit_option(function):
    return click.option("--memory-limit", type=SizeType(minimum=1), default=None,
                        help="Refuse archives whose decoding needs more memory than "
                        "this (e.g. 512M).")(function)


def _level_options(function):
    helps = {MIN_LEVEL: "Fastest: zstd level 3 (-2 .. -8 lie between; see --level).",
             MAX_LEVEL: "Strongest, the default: auto (stored, zstd, lzma, cm)."}
    for level in range(MAX_LEVEL, MIN_LEVEL - 1, -1):
        function = click.option(f"-{level}", f"level_{level}", is_flag=True,
                                help=helps.get(level),
                                hidden=level not in helps)(function)
    return click.option("--level", type=click.IntRange(MIN_LEVEL, MAX_LEVEL), default=None,
                        help="Compression level: 1 zstd -3, 2 zstd -9, 3 zstd -19, 4 lzma "
                        "-9e, 5 auto without cm, 6-9 auto with cm (the default); also "
                        "-1 .. -9."
                        )(function)


def _chosen_level(level, flags: dict) -> int | None:
    given = sorted({int(name.rsplit("_", 1)[1]) for name, on in flags.items() if on} |
                   ({level} if level is not None else set()))
    if len(given) > 1:
        raise click.UsageError(f"give one compression level, not {given}")
    return given[0] if given else None


def _memory_limit_kwargs(function, memory_limit) -> dict:
    if memory_limit is None:
        return {}
    try:
        accepts = "memory_limit" in _inspect.signature(function).parameters
    except (TypeError, ValueError):
        accepts = False
    if not accepts:
        raise click.UsageError("--memory-limit is not supported by this version's reader")
    return {"memory_limit": memory_limit}


def _refuse_terminal_input(path: str) -> None:
    if path == STDIO and sys.stdin.isatty():
        raise click.UsageError("refusing to read from a terminal; give a FILE or pipe "
                               "data in")


def _check_magic(source, path: str) -> None:
    """`vortex: PATH: not a Vortex archive` for an empty or foreign input."""
    magic = spec.FILE_MAGIC
    if _seekable(source):
        start = source.tell()
        head = source.read(len(magic))
        source.seek(start)
    else:
        peek = getattr(source, "peek", None)
        if peek is None:
            return
        head = peek(len(magic))[:len(magic)]
        if 0 < len(head) < len(magic):
            return  # too little buffered to tell: the reader will say
    if not head:  # the library's words for it, which fixtures/bad/EXPECTED records
        fail(f"{display(path)}: not a Vortex archive (file header at offset 0: archive "
             f"truncated (0 of {spec.FILE_HEADER_SIZE} bytes))")
    if not head.startswith(magic):
        fail(f"{display(path)}: not a Vortex archive (bad magic number at offset 0)")


@click.group(cls=_VortexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(None, "-V", "--version", package_name="vortexfmt", prog_name="vortex")
def main() -> None:
    """Vortex: lossless compression of structured binary data by context mixing (cm),
    with optional trained profiles for small frames."""


# --- pack ---------------------------------------------------------------------------------------

def _check_layout(context, parameter, value):
    """--layout, read before any file is opened: a bad string is a usage error."""
    if value is not None:
        from vortexfmt.codecs.record_layout import LayoutError, parse_layout

        try:
            parse_layout(value)
        except LayoutError as error:
            raise click.BadParameter(str(error)) from None
    return value


@main.command()
@click.argument("inputs", metavar="[INPUT]...", nargs=-1)
@click.option("-o", "--output", default=None, help="Archive to write (default INPUT.vtx; - "
              "for stdout); only with one INPUT.")
@_stdout_option
@click.option("--codec", type=click.Choice(WRITER_CODEC_CHOICES), default=None,
              help="Frame codec (default auto: the smallest per frame, lzma and zstd left "
              "out where cm leads zstd -3 by a tenth); not with a level.")
@_level_options
@click.option("--frame-size", type=SizeType(spec.MIN_FRAME_SIZE, spec.MAX_FRAME_SIZE),
              default=DEFAULT_FRAME_SIZE, show_default=True,
              help="Raw bytes per frame (e.g. 256K, 1M).")
@click.option("--layout", default=None, metavar="STR", callback=_check_layout,
              help="What the records are, for cm: a numpy dtype such as <i4 or >f8, "
                   "channels as <f4:6ch, fields as <f4,<i4,<f8 (default: guessed).")
@_model_option
@threads_option
@dask_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@_quiet_option
def pack(inputs, output, to_stdout, codec, level, frame_size, layout, model, device, threads,
         dask_address, force, quiet, **level_flags):
    """Compress each INPUT (- or none: stdin) into a Vortex archive INPUT.vtx."""
    inputs = list(inputs) or [STDIO]
    level = _chosen_level(level, level_flags)
    if frame_size < SMALL_FRAME_SIZE and not quiet:  # valid, but seldom what was meant
        click.echo(f"vortex: warning: frames of {frame_size} bytes each cost 56 bytes of "
                   f"header and index, and cm codes none below 256 bytes; frames of 64K or "
                   f"more pack far smaller", err=True)
    if level is not None and codec not in (None, "auto"):
        raise click.UsageError(f"give --codec {codec} or a level (-{level}), not both")
    if to_stdout:
        if output not in (None, STDIO):
            raise click.UsageError("give -c or -o, not both")
        output = STDIO
    if output is not None and len(inputs) > 1:
        raise click.UsageError("-o and -c take one INPUT (archives do not concatenate)")
    if dask_address is not None:
        if model is not None or codec in ("neural", "mixed"):
            raise click.UsageError("--dask packs with the codecs that need no model")
        outputs = [output] if output is not None else [path + SUFFIX for path in inputs]
        status = run_on_dask("pack", dask_address, inputs, outputs, force, quiet,
                             codec=codec or "auto", level=level, frame_size=frame_size,
                             layout=layout)
        if status:
            sys.exit(status)
        return

    def one(input_path):
        _pack_one(input_path, output, codec or "auto", level, frame_size, model, device,
                  threads, force, quiet, layout)

    run_each(inputs, one)


def _pack_one(input_path, output, codec, level, frame_size, model, device, threads, force,
              quiet, layout=None):
    if output is None:
        output = STDIO if input_path == STDIO else input_path + SUFFIX
    _refuse_terminal_input(input_path)
    if output == STDIO and sys.stdout.isatty():
        raise click.UsageError("refusing to write an archive to a terminal; use -o FILE")
    check_can_read(input_path)
    check_can_write(output, force, input_path)
    if input_path == STDIO:
        source, total = sys.stdin.buffer, None
    else:
        source = open(input_path, "rb")  # a directory or unreadable file fails here
        total = os.fstat(source.fileno()).st_size
    try:
        with progress_bar(total, "pack", quiet) as progress, \
                atomic_output(output) as sink, \
                ArchiveWriter(sink, codec=codec, level=level, frame_size=frame_size,
                              model=model, device=device, progress=progress,
                              threads=resolve_threads(threads), layout=layout) as writer:
            while True:
                try:
                    chunk = source.read(COPY_CHUNK)
                except OSError as error:
                    raise named(error, display(input_path)) from None
                if not chunk:
                    break
                writer.write(chunk)
    except VortexError as error:
        fail(str(error))
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    finally:
        if source is not sys.stdin.buffer:
            source.close()
    if not quiet:
        frames = sum(writer.codec_counts.values())
        counts = ", ".join(f"{codec_name(c)} {n}" for c, n in sorted(writer.codec_counts.items()))
        summary = size_summary(writer.raw_size, writer.packed_size)
        click.echo(f"{_display(input_path)}: {summary} -> {_display(output, output=True)}"
                   f" [{frames} frames"
                   f"{': ' + counts if counts else ''}]", err=True)


_display = display


# --- unpack and verify --------------------------------------------------------------------------

@main.command()
@click.argument("archives", metavar="[ARCHIVE]...", nargs=-1)
@click.option("-o", "--output", default=None,
              help="File to write (default ARCHIVE without .vtx; - for stdout); only with "
              "one ARCHIVE.")
@_stdout_option
@_archive_model_option
@decode_threads_option
@_memory_limit_option
@dask_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--salvage", is_flag=True,
              help="Write every intact frame, fill damaged ranges with zeros, list them.")
@_quiet_option
def unpack(archives, output, to_stdout, model, device, threads, memory_limit, dask_address,
           force, salvage, quiet):
    """Decompress each ARCHIVE (- or none: stdin), checking every checksum.

    On damage the exit status is 1, the damaged frames are named with their raw byte
    ranges, and no output file is left behind (unless --salvage). With -c, the contents
    of several archives are written to stdout one after the other.
    """
    archives = list(archives) or [STDIO]
    if to_stdout:
        if output not in (None, STDIO):
            raise click.UsageError("give -c or -o, not both")
        output = STDIO
    if output not in (None, STDIO) and len(archives) > 1:
        raise click.UsageError("-o takes one ARCHIVE")
    if dask_address is not None:
        if model is not None or salvage:
            raise click.UsageError("--dask unpacks without --model and --salvage")
        outputs = [output] if output is not None else [_default_unpack_output(a)
                                                       for a in archives]
        status = run_on_dask("unpack", dask_address, archives, outputs, force, quiet,
                             memory_limit=memory_limit)
        if status:
            sys.exit(status)
        return

    def one(archive):
        _unpack_one(archive, output, model, device, threads, memory_limit, force, salvage,
                    quiet)

    run_each(archives, one)


def _default_unpack_output(archive: str) -> str:
    """ARCHIVE without .vtx (stdout for stdin); a usage error when it has no such suffix."""
    if archive == STDIO:
        return STDIO
    if archive.endswith(SUFFIX) and len(os.path.basename(archive)) > len(SUFFIX):
        return archive[:-len(SUFFIX)]
    raise click.UsageError(f"cannot name the output of {archive} (no {SUFFIX} suffix); use "
                           "-o FILE")


def _unpack_one(archive, output, model, device, threads, memory_limit, force, salvage,
                quiet):
    if output is None:
        output = _default_unpack_output(archive)
    _refuse_terminal_input(archive)
    check_can_read(archive)
    check_can_write(output, force, archive)
    limit = _memory_limit_kwargs(check_archive, memory_limit)
    with _open_archive(archive, spool=salvage) as source:
        _check_magic(source, archive)
        if not _seekable(source):
            _unpack_stream(source, output, model, device, resolve_threads(threads), quiet,
                           _memory_limit_kwargs(ArchiveReader, memory_limit))
            return
        total = _raw_size_hint(source)
        damaged = None
        try:
            with progress_bar(total, "unpack", quiet) as progress, \
                    atomic_output(output, keep_on=(_Damaged,) if salvage else ()) as sink:
                report = check_archive(source, sink, model=model, device=device,
                                       salvage=salvage, progress=progress,
                                       threads=resolve_threads(threads), **limit)
                if not report.ok:
                    damaged = report
                    raise _Damaged()
        except _Damaged:
            pass
        except VortexError as error:
            fail(f"{_display(archive)}: {error}")
    if damaged is not None:
        _report_damage(archive, damaged, salvage, output)
        raise Failed(1)
    if not quiet:
        click.echo(f"{_display(archive)}: {report.raw_written} bytes -> "
                   f"{_display(output, output=True)}", err=True)


@main.command()
@click.argument("archives", metavar="[ARCHIVE]...", nargs=-1)
@_archive_model_option
@decode_threads_option
@_memory_limit_option
@_quiet_option
def verify(archives, model, device, threads, memory_limit, quiet):
    """Decode all of each ARCHIVE and check every checksum, writing nothing. Exit 0 or 1."""
    archives = list(archives) or [STDIO]

    def one(archive):
        _refuse_terminal_input(archive)
        limit = _memory_limit_kwargs(check_archive, memory_limit)
        with _open_archive(archive, spool=True) as source:
            _check_magic(source, archive)
            total = _raw_size_hint(source)
            try:
                with progress_bar(total, "verify", quiet) as progress:
                    report = check_archive(source, None, model=model, device=device,
                                           progress=progress,
                                           threads=resolve_threads(threads), **limit)
            except VortexError as error:
                fail(f"{_display(archive)}: {error}")
        if not report.ok:
            _report_damage(archive, report, False, None, verifying=True)
            raise Failed(1)
        if not quiet:
            click.echo(f"{_display(archive)}: OK ({len(report.layout.frames)} frames, "
                       f"{report.layout.raw_size} bytes)", err=True)

    run_each(archives, one)


class _Damaged(Exception):
    """Raised inside the output context so the partial output is removed."""


def _report_damage(archive, report, salvaged: bool, output,
                   verifying: bool = False) -> None:
    for damage in report.damage:
        click.echo(f"vortex: {_display(archive)}: {damage.describe()}", err=True)
    if salvaged:
        click.echo(f"vortex: {_display(archive)}: salvaged {report.raw_written} bytes to "
                   f"{_display(output, output=True)}; damaged ranges are filled with zeros",
                   err=True)
    elif not verifying:
        written = "output to <stdout> stopped there" if output == STDIO else "nothing written"
        click.echo(f"vortex: {_display(archive)}: {_what_failed(report)}, {written} "
                   "(--salvage recovers the intact frames)", err=True)
    else:
        click.echo(f"vortex: {_display(archive)}: {_what_failed(report)}", err=True)


def _what_failed(report) -> str:
    if all(damage.over_memory_limit for damage in report.damage):
        return "not decoded: frames need more memory than the limit"
    return "damaged"


def _unpack_stream(source, output, model, device, threads, quiet, limit) -> None:
    """Unpack an archive read from a pipe: frames in order (`threads` decoded at once),
    stopping at the first damage."""
    try:
        with atomic_output(output) as sink, \
                ArchiveReader(source, model=model, device=device, threads=threads,
                              **limit) as reader:
            size = 0
            while chunk := reader.read(COPY_CHUNK):
                sink.write(chunk)
                size += len(chunk)
    except VortexError as error:
        fail(f"<stdin>: {error}")
    if not quiet:
        click.echo(f"<stdin>: {size} bytes -> {_display(output, output=True)}", err=True)


class _open_archive:
    """Open ARCHIVE for reading; with `spool`, copy stdin to a temporary file so that the
    archive can be read like a seekable file (salvage and verify need its index)."""

    def __init__(self, path: str, spool: bool) -> None:
        self.path = path
        self.spool = spool

    def __enter__(self):
        if self.path != STDIO:
            check_can_read(self.path)
            self.file = open(self.path, "rb")  # a directory, an unreadable file: OSError
        elif self.spool:
            self.file = tempfile.TemporaryFile()
            shutil.copyfileobj(sys.stdin.buffer, self.file, COPY_CHUNK)
            self.file.seek(0)
        else:
            self.file = sys.stdin.buffer
        return self.file

    def __exit__(self, *exc_info) -> None:
        if self.file is not sys.stdin.buffer:
            self.file.close()


def _seekable(fileobj) -> bool:
    try:
        return fileobj.seekable()
    except (OSError, ValueError):
        return False


def _raw_size_hint(source) -> int | None:
    """Raw size from the trailer, for the progress bar; None if it cannot be read."""
    try:
        return read_layout(source).raw_size
    except VortexError:
        return None
    finally:
        source.seek(0)


# --- inspect ------------------------------------------------------------------------------------

@main.command()
@click.argument("archive", metavar="ARCHIVE")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (see README).")
@_quiet_option
def inspect(archive, as_json, quiet):
    """Show ARCHIVE's header, frame table and totals (reads headers only)."""
    run_each([archive], lambda path: _inspect_one(path, as_json, quiet))


def _inspect_one(archive, as_json, quiet):
    _refuse_terminal_input(archive)
    with _open_archive(archive, spool=True) as source:
        _check_magic(source, archive)
        try:
            layout = read_layout(source)
            frames = [_frame_row(source, layout, number, entry)
                      for number, entry in enumerate(layout.frames)]
        except VortexError as error:
            fail(f"{_display(archive)}: {error}")
    header = layout.header
    packed = layout.size
    summary = {
        "format_version": f"{header.version_major}.{header.version_minor}",
        "flags": header.flags,
        "frame_size": header.frame_size,
        "model_id": header.model_id.hex() if header.needs_model else None,
        "profile": _profile_found(header, archive),
        "raw_size": layout.raw_size,
        "archive_size": packed,
        "frame_count": len(frames),
        "content_checksum": f"{layout.trailer.content_checksum:016x}",
        "ratio": layout.raw_size / packed if packed else None,
        "bits_per_byte": 8 * packed / layout.raw_size if layout.raw_size else None,
        "frames": frames,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    if quiet:
        return
    for key in ("format_version", "frame_size", "model_id", "profile", "raw_size",
                "archive_size", "frame_count", "content_checksum"):
        click.echo(f"{key:<17} {summary[key] if summary[key] is not None else '-'}")
    click.echo(f"{'ratio':<17} " + (f"{summary['ratio']:.3f}" if summary["ratio"] else "-"))
    click.echo(f"{'bits_per_byte':<17} " +
               (f"{summary['bits_per_byte']:.4f}" if summary["bits_per_byte"] else "-"))
    click.echo()
    click.echo(f"{'frame':>6} {'offset':>12} {'codec':<7} {'raw':>10} {'packed':>10} "
               f"{'ratio':>7}  checksum")
    for row in frames:
        ratio = f"{row['raw_size'] / row['packed_size']:.3f}" if row["packed_size"] else "-"
        click.echo(f"{row['index']:>6} {row['offset']:>12} {row['codec']:<7} "
                   f"{row['raw_size']:>10} {row['packed_size']:>10} {ratio:>7}  "
                   f"{row['checksum']}")


def _profile_found(header, archive) -> str | None:
    """The profile file whose id the archive records, found on the profile search path
    (vortexfmt.profiles.search; headers only), or None (none there, or a neural model's
    id)."""
    if not header.needs_model:
        return None
    from vortexfmt.errors import ModelMismatchError
    from vortexfmt.profiles import search

    try:
        found = search.find_by_id(header.model_id, None if archive == STDIO else archive)
    except ModelMismatchError:
        return None
    return str(found.path)


def _frame_row(source, layout, number, entry) -> dict:
    from vortexfmt.container.frames import read_frame_header

    source.seek(layout.base + entry.frame_offset)
    header = read_frame_header(source, entry.frame_offset, layout.header)
    return {"index": number, "offset": entry.frame_offset, "raw_offset": entry.raw_offset,
            "codec": codec_name(header.codec), "raw_size": entry.raw_size,
            "packed_size": entry.payload_size, "checksum": f"{header.raw_checksum:016x}"}


from vortexfmt.cli.bench import bench  # noqa: E402  (commands register on the group)
from vortexfmt.cli.train import train  # noqa: E402

main.add_command(train)
main.add_command(bench)


if __name__ == "__main__":  # pragma: no cover
    main()
