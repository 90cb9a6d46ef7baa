"""`vortex bench`: vortex against gzip, zstd, xz, bzip2, brotli and OpenZL on your files."""

from __future__ import annotations

import json
from pathlib import Path

import click
from vortexfmt.cli.sizes import SizeType
from vortexfmt.cli.threads import resolve_threads, threads_option

from vortexfmt import spec
from vortexfmt.bench_openzl import DTYPES
from vortexfmt.codecs import WRITER_CODEC_CHOICES


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--model", default=None, metavar="MODEL", help="Model file or id (default: "
              "the built-in model).")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True)
@click.option("--frame-size", type=SizeType(spec.MIN_FRAME_SIZE, spec.MAX_FRAME_SIZE),
              default=None, help="Vortex frame size (default 4M).")
@click.option("--codec", "codecs", multiple=True, default=("auto",), show_default=True,
              type=click.Choice(WRITER_CODEC_CHOICES),
              help="Vortex codec(s) to measure; repeat for several.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (a list of per-file "
              "objects with a `results` list) instead of a table.")
@click.option("--plot", "plot_path", default=None, metavar="PNG",
              help="Draw bits per byte against unpack speed for every codec.")
@click.option("--openzl-dtype", default="auto", show_default=True,
              type=click.Choice(("auto", "none") + DTYPES),
              help="Element type of OpenZL's numeric column (auto: from the suffix, .f32 "
              "float32, .i32 int32, ...; none: the generic column only).")
@threads_option
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors (and --json).")
def bench(files, model, device, frame_size, codecs, openzl_dtype, threads, as_json,
          plot_path, quiet):
    """Measure bits per byte and pack/unpack MB/s of vortex and classical codecs on FILES.

    Every vortex result is unpacked and checked against the original.
    """
    from vortexfmt.bench import bench_file, format_table, plot, to_json
    from vortexfmt.errors import VortexError

    if plot_path:  # before the benchmark, not after it
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise click.UsageError("--plot needs matplotlib (pip install matplotlib)") from None

    results = []
    try:
        for path in files:
            result = bench_file(Path(path), model=model, device=device,
                                frame_size=frame_size, vortex_codecs=codecs,
                                threads=resolve_threads(threads),
                                openzl_dtype=None if openzl_dtype == "none" else openzl_dtype)
            results.append(result)
            if not quiet and not as_json:
                click.echo(format_table([result]))
    except VortexError as error:
        click.echo(f"vortex: {error}", err=True)
        raise SystemExit(1) from None
    except AssertionError as error:
        click.echo(f"vortex: round trip failed: {error}", err=True)
        raise SystemExit(1) from None
    if as_json:
        click.echo(json.dumps(to_json(results), indent=2))
    if plot_path:
        try:
            plot(results, plot_path)
        except ImportError:
            raise click.UsageError("--plot needs matplotlib (pip install matplotlib)") from None
        if not quiet and not as_json:
            click.echo(f"plot written to {plot_path}")
