"""Output files that appear only when complete: written to a temporary file beside the
target and renamed over it on success, removed on failure."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

STDIO = "-"


def check_can_write(path: str, force: bool) -> None:
    """Refuse to overwrite an existing file without --force (a usage error)."""
    if path != STDIO and os.path.exists(path) and not force:
        raise click.UsageError(f"{path} already exists; use -f to overwrite it")


@contextmanager
def atomic_output(path: str, *, keep_on: tuple[type[BaseException], ...] = ()) -> Iterator:
    """A binary file object for `path` (stdout for "-"), renamed into place on success.

    If the body raises, the temporary file is removed, unless the exception is one of
    `keep_on` (salvage's report of damage), in which case it is renamed into place all the
    same. Any other failure (an unreadable header, an interrupt) leaves nothing behind.
    """
    if path == STDIO:
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(prefix=".vortex-", suffix=".part", dir=directory)
    os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private; give it the usual mode
    try:
        with os.fdopen(handle, "wb") as output:
            yield output
    except keep_on:
        os.replace(temporary, path)
        raise
    except BaseException:
        os.unlink(temporary)
        raise
    os.replace(temporary, path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
