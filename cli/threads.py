"""`--threads`: how many frames a command codes at once."""

from __future__ import annotations

import os

import click

#: `--threads 0` (the default) takes one thread per CPU this process may run on, at most
#: this many, and no more than half the machine's memory holds at MEMORY_PER_THREAD each:
#: a thread holds a frame and its codec's state (cm: about 330 MiB at 4 MiB frames).
MAX_DEFAULT_THREADS = 8
MEMORY_PER_THREAD = 400 << 20


def resolve_threads(threads: int) -> int:
    """`threads` itself, or for 0 the default (see MAX_DEFAULT_THREADS)."""
    if threads:
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not on a POSIX system
        memory = MAX_DEFAULT_THREADS * 2 * MEMORY_PER_THREAD
    return max(1, min(cpus, MAX_DEFAULT_THREADS, memory // 2 // MEMORY_PER_THREAD))


def threads_option(function):
    return click.option(
        "-T", "--threads", type=click.IntRange(min=0), default=0, show_default=True,
        help=f"Frames coded at once (0: one per CPU, at most {MAX_DEFAULT_THREADS} and as "
        "many as half the memory holds). The archive is the same for any number; each "
        "thread holds a frame and its codec's state (cm: about 330 MiB at 4 MiB "
        "frames).")(function)
