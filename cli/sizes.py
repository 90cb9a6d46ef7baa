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


class SizeType(click.ParamType):
    name = "SIZE"

    def convert(self, value, param, ctx):
        return value if isinstance(value, int) else parse_size(value)


