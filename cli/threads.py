"""`--threads`: how many frames a command codes at once."""

from __future__ import annotations

import os

import click

#: `--threads 0` (the default) takes one thread per CPU this process may run on, at most
#: this many, and no more than half the memory it may use (the machine's, or its
#: container's limit) holds at MEMORY_PER_THREAD each:
#: a thread holds a frame and its codec's state (packing at 4 MiB frames: 468 MiB more for
#: a second thread, measured; cm's tables are 320 MiB of it).
MAX_DEFAULT_THREADS = 8
MEMORY_PER_THREAD = 512 << 20


def resolve_threads(threads: int) -> int:
    """`threads` itself, or for 0 the default (see MAX_DEFAULT_THREADS)."""
    if threads:
        return threads
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    memory = min([memory_limit()] + physical_memory())
    return max(1, min(cpus, MAX_DEFAULT_THREADS, memory // 2 // MEMORY_PER_THREAD))


#: Where a container's memory limit is found (cgroup v2, then v1), as seen from inside it.
CGROUP_MEMORY_LIMITS = ("/sys/fs/cgroup/memory.max",
                        "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_limit() -> int:
    """The memory this process's container may use, in bytes (a very large number where
    none is set or none can be read)."""
    limit = 1 << 62
    for path in CGROUP_MEMORY_LIMITS:
        try:
            with open(path) as file:
                value = file.read().strip()
        except OSError:
            continue
        if value.isdigit():
            limit = min(limit, int(value))
    return limit


def physical_memory() -> list[int]:
    """The machine's memory in bytes, or [] where the system does not say."""
    try:
        return [os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")]
    except (AttributeError, ValueError, OSError):  # not on a POSIX system
        return []


def threads_option(function):
    """-T for the commands that pack (and bench, which packs first)."""
    return click.option(
        "-T", "--threads", type=click.IntRange(min=0), default=0, show_default=True,
        help=f"Frames coded at once (0: one per CPU, at most {MAX_DEFAULT_THREADS} and as "
        "many as half the memory holds); a cm frame of 64 KiB or more that starts while "
        "fewer are being packed takes two. The archive is the same for any number; each "
        "thread holds a frame and its codec's state (about 470 MiB at 4 MiB "
        "frames).")(function)


def decode_threads_option(function):
    """-T for the commands that only decode (unpack, verify)."""
    return click.option(
        "-T", "--threads", type=click.IntRange(min=0), default=0, show_default=True,
        help=f"Frames decoded at once (0: one per CPU, at most {MAX_DEFAULT_THREADS} and as "
        "many as half the memory holds); each thread holds a frame and its codec's state "
        "(about 470 MiB at 4 MiB frames). The output is the same for any number.")(function)
