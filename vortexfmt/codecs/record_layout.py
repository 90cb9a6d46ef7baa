"""Layout strings: what a user says the records of a file are (``--layout``).

A layout is numpy's dtype spelling, one or more fields separated by commas, and an
optional number of interleaved channels:

    <i4           little-endian int32 values
    >f8           big-endian float64 values
    <f4:6ch       6 interleaved channels of float32 (a record of 6 fields)
    <f4,<i4,<f8   records of a float32, an int32 and a float64 (16 bytes)
    3<i2,u1       a count repeats a field: three int16 and a byte (7 bytes)

A field is an optional count, a byte order (``<`` little-endian, the default; ``>``
big-endian; ``|`` or ``=`` for one-byte fields), a kind (``i`` signed, ``u`` unsigned,
``f`` float) and a width in bytes (1, 2, 4 or 8; a float is 2, 4 or 8). ``:Nch`` repeats
the whole record N times. A record has at most 255 fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vortexfmt.codecs.numeric import FIELD_WIDTHS, MAX_FIELDS

KINDS = {"i": "signed", "u": "unsigned", "f": "float"}
FLOAT_WIDTHS = (2, 4, 8)

_FIELD = re.compile(r"(?P<count>\d+)?(?P<order>[<>|=])?(?P<kind>[iuf])(?P<width>\d+)")
_CHANNELS = re.compile(r"(?P<channels>\d+)ch")


class LayoutError(ValueError):
    """A layout string that cannot be read; the message says what is wrong, on one line."""


@dataclass(frozen=True)
class LayoutField:
    kind: str  # "i", "u" or "f"
    width: int
    big_endian: bool


@dataclass(frozen=True)
class RecordLayout:
    """The fields of one record, in order (channels already repeated)."""

    fields: tuple[LayoutField, ...]

    @property
    def record_size(self) -> int:
        return sum(field.width for field in self.fields)


def parse_layout(text: str) -> RecordLayout:
    """The record a layout string describes; raises LayoutError naming what is wrong."""
    if not isinstance(text, str):
        raise LayoutError(f"a layout is a string, not {type(text).__name__}")
    record, colon, suffix = text.strip().partition(":")
    channels = 1
    if colon:
        match = _CHANNELS.fullmatch(suffix.strip())
        if match is None:
            raise _error(text, f"{suffix.strip()!r} after ':' is not a channel count "
                               "such as '6ch'")
        channels = int(match["channels"])
        if channels == 0:
            raise _error(text, "0 channels")
    fields: list[LayoutField] = []
    for item in record.split(","):
        item = item.strip()
        match = _FIELD.fullmatch(item)
        if match is None:
            raise _error(text, f"{item!r} is not a field such as '<i4', '>f8' or '3u2'"
                         if item else "an empty field")
        kind, width = match["kind"], int(match["width"])
        allowed = FLOAT_WIDTHS if kind == "f" else FIELD_WIDTHS
        if width not in allowed:
            raise _error(text, f"{item!r}: a {KINDS[kind]} field has "
                               f"{', '.join(map(str, allowed))} bytes, not {width}")
        order = match["order"] or "<"
        if order in "|=" and width != 1:
            raise _error(text, f"{item!r}: say '<' or '>' for a field of {width} bytes")
        count = int(match["count"] or 1)
        if count == 0:
            raise _error(text, f"{item!r} repeats a field 0 times")
        if len(fields) + count > MAX_FIELDS:
            raise _error(text, f"more than {MAX_FIELDS} fields")
        fields += [LayoutField(kind, width, order == ">")] * count
    if len(fields) * channels > MAX_FIELDS:
        raise _error(text, f"{len(fields) * channels} fields, more than {MAX_FIELDS}")
    return RecordLayout(tuple(fields) * channels)


def _error(text: str, reason: str) -> LayoutError:
    return LayoutError(f"bad layout {text!r}: {reason}")
