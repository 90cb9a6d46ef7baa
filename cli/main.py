"""`vortex pack | unpack | inspect | verify`: the command line, following zstd/xz habits.

Exit status: 0 success, 1 damaged or mismatched data, 2 usage errors.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile

import click
from vortexfmt.cli.files import STDIO, atomic_output, check_can_write
from vortexfmt.cli.progress import progress_bar
from vortexfmt.cli.sizes import SizeType
from vortexfmt.cli.threads import resolve_threads, threads_option


from vortexfmt.codecs import WRITER_CODEC_CHOICES, codec_name
from vortexfmt.container.check import check_archive
from vortexfmt.container.layout import read_layout
from vortexfmt.container.reader import ArchiveReader
from vortexfmt.container.writer import DEFAULT_FRAME_SIZE, ArchiveWriter
from vortexfmt.errors import VortexError

SUFFIX = ".vtx"
COPY_CHUNK = 1 << 20
def fail(message: str) -> None:
    """Report damaged or mismatched data: message on stderr, exit status 1."""
    click.echo(f"vortex: {message}", err=True)
    sys.exit(1)


def _quiet_option(function):
    return click.option("-q", "--quiet", is_flag=True,
                        help="Print nothing but errors.")(function)


def _model_option(function):
    function = click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]),
                            default="auto", show_default=True,
                            help="Where the model codecs (mixed, neural) run (auto: "
                            "CUDA when present).")(function)
    return click.option("--model", "model", metavar="MODEL", default=None,
                        help="Model file or model id (default: the built-in model when "
                        "packing, the archive's model when unpacking).")(function)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vortexfmt")
def main() -> None:
    """Vortex: lossless compression of structured binary data with learned models."""


# --- pack ---------------------------------------------------------------------------------------

@main.command()
@click.argument("input_path", metavar="INPUT")
@click.option("-o", "--output", default=None, help="Archive to write (default INPUT.vtx; - "
              "for stdout).")
@click.option("--codec", type=click.Choice(WRITER_CODEC_CHOICES), default="auto",
              show_default=True, help="Frame codec; auto keeps the smallest per frame.")
@click.option("--frame-size", type=SizeType(), default=DEFAULT_FRAME_SIZE, show_default=True,
              help="Raw bytes per frame (e.g. 256K, 1M).")
@_model_option
@threads_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@_quiet_option
def pack(input_path, output, codec, frame_size, model, device, threads, force, quiet):
    """Compress INPUT (- for stdin) into a Vortex archive."""
    if output is None:
        output = STDIO if input_path == STDIO else input_path + SUFFIX
    if output == STDIO and sys.stdout.isatty():
        raise click.UsageError("refusing to write an archive to a terminal; use -o FILE")
    if input_path != STDIO and not os.path.isfile(input_path):
        raise click.UsageError(f"{input_path}: no such file")
    check_can_write(output, force)
    total = None if input_path == STDIO else os.path.getsize(input_path)
    source = sys.stdin.buffer if input_path == STDIO else open(input_path, "rb")
    try:
        with progress_bar(total, "pack", quiet) as progress, \
                atomic_output(output) as sink, \
                ArchiveWriter(sink, codec=codec, frame_size=frame_size, model=model,
                              device=device, progress=progress,
                              threads=resolve_threads(threads)) as writer:
            shutil.copyfileobj(source, writer, COPY_CHUNK)
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
        click.echo(f"{_display(input_path)}: {_summary(writer.raw_size, writer.packed_size)}"
                   f" -> {_display(output, output=True)} [{frames} frames"
                   f"{': ' + counts if counts else ''}]", err=True)


def _summary(raw: int, packed: int) -> str:
    ratio = f"{raw / packed:.3f}" if packed else "-"
    bits = f"{8 * packed / raw:.4f}" if raw else "-"
    return f"{raw} -> {packed} bytes (ratio {ratio}, {bits} bits/byte)"


def _display(path: str, *, output: bool = False) -> str:
    if path != STDIO:
        return path
    return "<stdout>" if output else "<stdin>"


# --- unpack and verify --------------------------------------------------------------------------

@main.command()
@click.argument("archive", metavar="ARCHIVE")
@click.option("-o", "--output", default=None,
              help="File to write (default ARCHIVE without .vtx; - for stdout).")
@_model_option
@threads_option
@click.option("-f", "--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--salvage", is_flag=True,
              help="Write every intact frame, fill damaged ranges with zeros, list them.")
@_quiet_option
def unpack(archive, output, model, device, threads, force, salvage, quiet):
    """Decompress ARCHIVE (- for stdin), checking every checksum.

    On damage the exit status is 1, the damaged frames are named with their raw byte
    ranges, and no output file is left behind (unless --salvage).
    """
    if output is None:
        if archive == STDIO:
            output = STDIO
        elif archive.endswith(SUFFIX) and len(os.path.basename(archive)) > len(SUFFIX):
            output = archive[:-len(SUFFIX)]
        else:
            raise click.UsageError(f"cannot name the output of {archive} (no {SUFFIX} "
                                   "suffix); use -o FILE")
    check_can_write(output, force)
    with _open_archive(archive, spool=salvage) as source:
        if not _seekable(source):
            _unpack_stream(source, output, model, device, resolve_threads(threads), quiet)
            return
        total = _raw_size_hint(source)
        damaged = None
        try:
            with progress_bar(total, "unpack", quiet) as progress, \
                    atomic_output(output, keep_on=(_Damaged,) if salvage else ()) as sink:
                report = check_archive(source, sink, model=model, device=device,
                                       salvage=salvage, progress=progress,
                                       threads=resolve_threads(threads))
                if not report.ok:
                    damaged = report
                    raise _Damaged()
        except _Damaged:
            pass
        except VortexError as error:
            fail(f"{_display(archive)}: {error}")
    if damaged is not None:
        _report_damage(archive, damaged, salvage, output)
        sys.exit(1)
    if not quiet:
        click.echo(f"{_display(archive)}: {report.raw_written} bytes -> "
                   f"{_display(output, output=True)}", err=True)


@main.command()
@click.argument("archive", metavar="ARCHIVE")
@_model_option
@threads_option
@_quiet_option
def verify(archive, model, device, threads, quiet):
    """Decode all of ARCHIVE and check every checksum, writing nothing. Exit 0 or 1."""
    with _open_archive(archive, spool=True) as source:
        total = _raw_size_hint(source)
        try:
            with progress_bar(total, "verify", quiet) as progress:
                report = check_archive(source, None, model=model, device=device,
                                       progress=progress,
                                       threads=resolve_threads(threads))
        except VortexError as error:
            fail(f"{_display(archive)}: {error}")
    if not report.ok:
        _report_damage(archive, report, False, None)
        sys.exit(1)
    if not quiet:
        click.echo(f"{_display(archive)}: OK ({len(report.layout.frames)} frames, "
                   f"{report.layout.raw_size} bytes)", err=True)


class _Damaged(Exception):
    """Raised inside the output context so the partial output is removed."""


def _report_damage(archive, report, salvaged: bool, output) -> None:
    for damage in report.damage:
        click.echo(f"vortex: {_display(archive)}: {damage.describe()}", err=True)
    if salvaged:
        click.echo(f"vortex: {_display(archive)}: salvaged {report.raw_written} bytes to "
                   f"{_display(output, output=True)}; damaged ranges are filled with zeros",
                   err=True)
    else:
        click.echo(f"vortex: {_display(archive)}: damaged, nothing written "
                   "(--salvage recovers the intact frames)", err=True)


def _unpack_stream(source, output, model, device, threads, quiet) -> None:
    """Unpack an archive read from a pipe: frames in order (`threads` decoded at once),
    stopping at the first damage."""
    try:
        with atomic_output(output) as sink, \
                ArchiveReader(source, model=model, device=device, threads=threads) as reader:
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
            if not os.path.isfile(self.path):
                raise click.UsageError(f"{self.path}: no such file")
            self.file = open(self.path, "rb")
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
    with _open_archive(archive, spool=True) as source:
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
    for key in ("format_version", "frame_size", "model_id", "raw_size", "archive_size",
                "frame_count", "content_checksum"):
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
