"""Output files that appear only when complete: written to a temporary file beside the
target, flushed, fsync'ed and renamed over it on success, removed on failure.

Every write, to a file or to stdout, goes through CheckedOutput: a short write is
completed, and an OSError is raised again naming the output as the user gave it (the
temporary file's name, or nothing, would mean nothing to them).
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import click

STDIO = "-"


def display(path: str, *, output: bool = False) -> str:
    """How messages name `path`: `<stdout>`/`<stdin>` for "-"."""
    if path != STDIO:
        return path
    return "<stdout>" if output else "<stdin>"


def _replace(temporary: str, path: str) -> None:
    """Give the finished temporary file its name; an error names `path`, not the
    temporary file (the output's directory removed meanwhile, say)."""
    try:
        os.replace(temporary, path)
    except OSError as error:
        raise named(error, path) from None


def named(error: OSError, name: str) -> OSError:
    """`error` again, of the same class, naming `name` (for `vortex: NAME: reason`)."""
    renamed = type(error)(error.errno, error.strerror or str(error), name)
    renamed.__cause__ = error
    return renamed


def check_can_write(path: str, force: bool, source: str | None = None) -> None:
    """Refuse, before anything is read or coded, an empty output name or, without --force,
    an existing file (usage errors), and an output that is a directory or the input
    `source` itself, by any name, with or without --force: it would be lost (OSErrors,
    reported as `vortex: PATH: reason`)."""
    if path == STDIO:
        return
    if path == "":
        raise click.UsageError("the output name is empty")
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), path)
    if source not in (None, STDIO) and os.path.exists(path) and os.path.exists(source) \
            and os.path.samefile(path, source):
        raise FileExistsError(errno.EEXIST, "is the input file; it would be overwritten, "
                              "choose another output", path)
    if os.path.lexists(path) and not force:
        raise click.UsageError(f"{path} already exists; use -f to overwrite it")


def check_can_read(path: str) -> None:
    """Refuse a missing input before anything is written: `vortex: PATH: No such file or
    directory` (an OSError)."""
    if path != STDIO and not os.path.lexists(path):
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)


class CheckedOutput:
    """A binary sink that writes all it is given or raises OSError naming `name`."""

    def __init__(self, fileobj, name: str) -> None:
        self._fileobj = fileobj
        self.name = name

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        total = view.nbytes
        try:
            while view.nbytes:
                count = self._fileobj.write(view)
                if not count:
                    raise OSError(errno.EIO, f"write accepted {count!r} of {view.nbytes} "
                                  "bytes")
                view = view[count:]
        except OSError as error:
            raise named(error, self.name) from None
        return total

    def flush(self) -> None:
        try:
            self._fileobj.flush()
        except OSError as error:
            raise named(error, self.name) from None

    def sync(self) -> None:
        """flush(), then fsync where the sink is a file (ENOSPC may only show here)."""
        self.flush()
        try:
            descriptor = self._fileobj.fileno()
        except (AttributeError, OSError, ValueError):
            return
        try:
            os.fsync(descriptor)
        except OSError as error:
            if error.errno in (errno.EINVAL, errno.EROFS, errno.ENOTSUP):  # a pipe, a tty
                return
            raise named(error, self.name) from None

    def seekable(self) -> bool:
        return False


@contextmanager
def atomic_output(path: str, *, keep_on: tuple[type[BaseException], ...] = ()) -> Iterator:
    """A checked binary sink for `path` (stdout for "-"), renamed into place on success.

    The temporary file is created first, so that a missing or read-only directory fails
    before anything is coded. On success it is flushed, fsync'ed, closed and renamed.
    If the body raises, the temporary file is removed, unless the exception is one of
    `keep_on` (salvage's report of damage), in which case it is renamed into place all the
    same. Any other failure (an unreadable header, an interrupt, a full disk) leaves
    nothing behind.
    """
    if path == STDIO:
        sink = CheckedOutput(sys.stdout.buffer, display(path, output=True))
        yield sink
        sink.flush()
        return
    directory = os.path.dirname(os.path.abspath(path))
    try:
        handle, temporary = tempfile.mkstemp(prefix=".vortex-", suffix=".part", dir=directory)
    except OSError as error:
        raise named(error, path) from None
    try:
        os.chmod(temporary, 0o666 & ~_umask())  # mkstemp makes it private: the usual mode
        with os.fdopen(handle, "wb") as output:
            sink = CheckedOutput(output, path)
            try:
                yield sink
            except keep_on:
                sink.sync()
                raise
            sink.sync()
        _replace(temporary, path)
    except keep_on:
        _replace(temporary, path)
        raise
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
