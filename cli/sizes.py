"""Sizes on the command line: 65536, 64K, 1M, 1MiB (binary multiples)."""

from __future__ import annotations

import re

import click

_SIZE_PATTERN = re.compile(r"^\s*(\d+)\s*([kmg]?)(i?b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """'1048576', '64K', '1M', '1MiB' -> bytes (binary multiples)."""
    match = _SIZE_PATTERN.match(text)
    if not match:
        raise click.BadParameter(f"{text!r} is not a size such as 65536, 64K or 1M")
    return int(match.group(1)) << {"": 0, "k": 10, "m": 20, "g": 30}[match.group(2).lower()]


def size_summary(raw: int, packed: int) -> str:
    """`RAW -> PACKED bytes (ratio R, B bits/byte)`, with `-` where a figure has no meaning
    (an empty input)."""
    ratio = f"{raw / packed:.3f}" if packed and raw else "-"
    bits = f"{8 * packed / raw:.4f}" if raw else "-"
    return f"{raw} -> {packed} bytes (ratio {ratio}, {bits} bits/byte)"


class SizeType(click.ParamType):
    """A size, refused (a usage error) outside `minimum`..`maximum` where they are given;
    with `auto`, the word ``auto`` too, as None."""

    name = "SIZE"

    def __init__(self, minimum: int | None = None, maximum: int | None = None,
                 auto: bool = False) -> None:
        self.minimum, self.maximum, self.auto = minimum, maximum, auto

    def convert(self, value, param, ctx):
        if self.auto and isinstance(value, str) and value.strip().lower() == "auto":
            return None  # the command chooses
        size = value if isinstance(value, int) else parse_size(value)
        low = self.minimum is not None and size < self.minimum
        high = self.maximum is not None and size > self.maximum
        if low or high:
            bounds = f"{self.minimum if self.minimum is not None else 0}.." + \
                (str(self.maximum) if self.maximum is not None else "")
            self.fail(f"{value!r} lies outside {bounds} bytes", param, ctx)
        return size


