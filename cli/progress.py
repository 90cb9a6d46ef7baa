"""Progress bars on stderr, shown only when stderr is a terminal and not silenced."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager


@contextmanager
def progress_bar(total: int | None, description: str, quiet: bool) -> Iterator[
        Callable[[int], None] | None]:
    """Yield a callback taking a byte count, or None when no bar is to be drawn."""
    if quiet or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm

    with tqdm(total=total, desc=description, unit="B", unit_scale=True, unit_divisor=1024,
              file=sys.stderr, leave=False) as bar:
        yield bar.update
