"""C++ extensions built on first use (like torchac's backend), with their build logs kept
off standard output, where they would corrupt `vortex unpack -o -`."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_MIXING_SOURCE = Path(__file__).with_name("mixing_kernel.cpp")
_mixing_kernel: object | None = None
_mixing_tried = False


def quietly(load: Callable[[], T]) -> T:
    """Run `load` with file descriptors 1 and 2 captured; show the log only on failure."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            return load()
        except BaseException:
            os.dup2(saved[1], 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)


def mixing_kernel():
    """The compiled CPU kernels of the context mixer, or None when they cannot be built
    (no C++ compiler) or `VORTEX_NATIVE=0`: the mixer then runs its torch reference, which
    computes the same integers, several times slower."""
    global _mixing_kernel, _mixing_tried
    if os.environ.get("VORTEX_NATIVE", "1") == "0":
        return None
    if not _mixing_tried:
        _mixing_tried = True
        from torch.utils import cpp_extension

        try:
            _mixing_kernel = quietly(lambda: cpp_extension.load(
                name="vortex_mixing_kernel", sources=[str(_MIXING_SOURCE)],
                # No -march=native: torch caches the build in the home directory, which
                # clusters share between machines of different CPUs (it gained ~10%).
                extra_cflags=["-O3"], verbose=False))
        except Exception as error:  # no compiler, no ninja: fall back to the reference
            print(f"vortex: C++ mixing kernel unavailable ({error.__class__.__name__}); "
                  "using the slower torch reference", file=sys.stderr)
            _mixing_kernel = None
    return _mixing_kernel
