"""`--threads`: how many frames a command codes at once."""

from __future__ import annotations

import os

import click

#: `--threads 0` (the default) takes one thread per CPU this process may run on, at most
#: this many: each holds a frame and its codec's state (cm: about 330 MiB at 4 MiB frames).
MAX_DEFAULT_THREADS = 8


def resolve_threads(threads: int) -> int:
    """`threads` itself, or for 0 the default: one per usable CPU, within 1..8."""
    if threads:
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_DEFAULT_THREADS))


def threads_option(function):
    return click.option(
        "-T", "--threads", type=click.IntRange(min=0), default=0, show_default=True,
        help=f"Frames coded at once (0: one per CPU, at most {MAX_DEFAULT_THREADS}). The "
        "archive is the same for any number; each thread holds a frame and its codec's "
        "state (cm: about 330 MiB at 4 MiB frames).")(function)
