"""`vortex pack/unpack --dask ADDRESS`: the same work on a dask.distributed cluster
(vortexfmt.dask), one line per file, `vortex: PATH: reason` for each that fails."""

from __future__ import annotations

import os

import click
from vortexfmt.cli.files import STDIO, check_can_read, check_can_write
from vortexfmt.cli.sizes import size_summary

from vortexfmt.errors import VortexError

DASK_EXTRA_HINT = "pip install 'vortexfmt[dask]'"


def dask_option(function):
    return click.option("--dask", "dask_address", metavar="ADDRESS", default=None,
                        help="Run on the dask.distributed scheduler at ADDRESS (e.g. "
                        "tcp://host:8786); its workers must see the files at the same "
                        "paths.")(function)


def run_on_dask(command: str, address: str, inputs: list[str], outputs: list[str],
                force: bool, quiet: bool, **options) -> int:
    """Pack or unpack (`command`) each input into its output on the cluster at `address`;
    returns the exit status (0, or 1 if any file failed)."""
    if STDIO in inputs or STDIO in outputs:
        raise click.UsageError("--dask reads and writes files, not stdin or stdout")
    try:
        for path in inputs:
            check_can_read(path)
        for source, path in zip(inputs, outputs, strict=True):
            check_can_write(path, force, source)
    except OSError as error:
        click.echo(f"vortex: {error.filename}: {error.strerror}", err=True)
        return 1
    try:
        import distributed

        from vortexfmt import dask as cluster_jobs
    except ImportError as error:
        raise click.UsageError(f"--dask needs dask and distributed ({error}); install them "
                               f"with {DASK_EXTRA_HINT}") from None
    try:
        client = distributed.Client(address, timeout=30)
    except (OSError, TimeoutError, ValueError) as error:
        click.echo(f"vortex: --dask {address}: cannot reach the scheduler ({error})", err=True)
        return 1
    job = cluster_jobs.pack_files if command == "pack" else cluster_jobs.unpack_files
    with client:
        try:
            results = job([os.path.abspath(p) for p in inputs],
                          [os.path.abspath(p) for p in outputs], client, errors="return",
                          **options)
        except ValueError as error:
            raise click.UsageError(str(error)) from None
    status = 0
    for given, target, result in zip(inputs, outputs, results, strict=True):
        if result.error is not None:
            status = 1
            error = result.error
            reason = error.strerror if isinstance(error, OSError) and error.strerror \
                else str(error).splitlines()[0] if str(error) else type(error).__name__
            if not isinstance(error, (OSError, VortexError)):
                reason = f"{type(error).__name__}: {reason}"
            click.echo(f"vortex: {given}: {reason}", err=True)
        elif not quiet and command == "pack":  # as vortex pack and unpack say it
            click.echo(f"{given}: {size_summary(result.raw_size, result.packed_size)} -> "
                       f"{target}", err=True)
        elif not quiet:
            click.echo(f"{given}: {result.raw_size} bytes -> {target}", err=True)
    return status
