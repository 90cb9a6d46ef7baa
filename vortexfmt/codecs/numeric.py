"""Numeric transforms of a cm frame (FORMAT.md "CM payload", "Numeric transform").

A frame of fixed-size records, each a list of fields (integers or floats of 1, 2, 4 or 8
bytes, little- or big-endian), is rewritten before the cm model codes it, so that the model
sees numbers rather than bytes: each field's values are differenced (delta of order 0, 1 or
2, per field, modulo 2^(8 x width)), optionally zigzag-mapped (small negative residuals
become small unsigned ones) and written most significant byte first, either record by
record (`interleaved`) or as byte planes (all records' first byte of field 0, then their
second byte, ...). The bytes after the last whole record stay as they are, at the end. The
transform keeps the frame's size and is undone exactly: all arithmetic is on unsigned
integers modulo 2^(8 x width), floats are their bit patterns. The array code is in
vortexfmt.codecs.numeric_arrays, imported (with numpy) only when a frame is transformed.
"""

from __future__ import annotations

from dataclasses import dataclass

from vortexfmt.errors import VortexFormatError
from vortexfmt.spec import cm as layout

#: Widths a field may have, in bytes.
FIELD_WIDTHS = layout.FIELD_WIDTHS
#: Frames shorter than this get a numeric transform only from a user's layout
#: (vortexfmt.codecs.numeric_search).
AUTO_MIN_RAW_SIZE = 64 << 10
#: Highest delta order (2: the second difference, a linear prediction from two values).
MAX_DELTA_ORDER = layout.MAX_DELTA_ORDER
#: Most fields a record may have (the descriptor's count is one byte).
MAX_FIELDS = layout.MAX_FIELDS

INTERLEAVED = layout.ORDER_INTERLEAVED
PLANES = layout.ORDER_PLANES
ORDERS = (INTERLEAVED, PLANES)


@dataclass(frozen=True)
class Field:
    """One field of a record: `width` bytes, stored big-endian if `big_endian`; its values
    are differenced `delta` times, then zigzag-mapped if `zigzag`."""

    width: int
    big_endian: bool = False
    delta: int = 0
    zigzag: bool = False

    def __post_init__(self) -> None:
        if self.width not in FIELD_WIDTHS:
            raise ValueError(f"field width {self.width} is not one of {FIELD_WIDTHS}")
        if not 0 <= self.delta <= MAX_DELTA_ORDER:
            raise ValueError(f"delta order {self.delta} is outside 0..{MAX_DELTA_ORDER}")


@dataclass(frozen=True)
class Transform:
    """A record layout and how its bytes are written: `order` is INTERLEAVED or PLANES."""

    fields: tuple[Field, ...]
    order: int = INTERLEAVED

    def __post_init__(self) -> None:
        if not 1 <= len(self.fields) <= MAX_FIELDS:
            raise ValueError(f"a record has 1..{MAX_FIELDS} fields, not {len(self.fields)}")
        if self.order not in ORDERS:
            raise ValueError(f"unknown byte order {self.order}")

    @property
    def record_size(self) -> int:
        return sum(field.width for field in self.fields)

    def describe(self) -> str:
        """A short human description, e.g. ``interleaved <4 d1 z x2``."""
        parts: list[str] = []
        for field in self.fields:
            text = f"{'>' if field.big_endian else '<'}{field.width}"
            text += f" d{field.delta}" if field.delta else ""
            text += " z" if field.zigzag else ""
            if parts and parts[-1].split(" x")[0] == text:
                head, _, count = parts[-1].partition(" x")
                parts[-1] = f"{head} x{int(count or 1) + 1}"
            else:
                parts.append(text)
        return f"{'planes' if self.order == PLANES else 'interleaved'} " + ", ".join(parts)


def apply(data: bytes, transform: Transform) -> bytes:
    """The transformed frame: the same number of bytes, whole records rewritten, the tail
    (len(data) mod record_size bytes) unchanged at the end."""
    from vortexfmt.codecs import numeric_arrays  # numpy, only where a frame is transformed
    return numeric_arrays.apply(data, transform)


def invert(data: bytes, transform: Transform) -> bytes:
    """The frame `apply` was given: invert(apply(x, t), t) == x for every x and t."""
    from vortexfmt.codecs import numeric_arrays
    return numeric_arrays.invert(data, transform)


def to_descriptor(transform: Transform) -> dict:
    """The payload's descriptor of `transform` (spec.cm.NumericDescriptor, to build)."""
    fields = [{"width": field.width,
               "mode": (layout.MODE_BIG_ENDIAN if field.big_endian else 0)
               | field.delta << layout.MODE_DELTA_SHIFT
               | (layout.MODE_ZIGZAG if field.zigzag else 0)}
              for field in transform.fields]
    return {"order": transform.order, "count": len(fields), "fields": fields}


def from_descriptor(descriptor) -> Transform:
    """The transform a parsed descriptor describes; raises VortexFormatError for any value
    FORMAT.md tells a reader to reject."""
    if descriptor.order not in ORDERS:
        raise VortexFormatError(f"cm numeric descriptor has unknown order {descriptor.order}")
    if descriptor.count == 0:
        raise VortexFormatError("cm numeric descriptor has no fields")
    fields = []
    for number, field in enumerate(descriptor.fields):
        if field.width not in FIELD_WIDTHS:
            raise VortexFormatError(f"cm numeric field {number} has width {field.width}, "
                                    f"not one of {', '.join(map(str, FIELD_WIDTHS))}")
        if field.mode & ~layout.MODE_KNOWN_BITS:
            raise VortexFormatError(f"cm numeric field {number} has unknown mode bits "
                                    f"{field.mode:#04x}")
        delta = (field.mode & layout.MODE_DELTA_MASK) >> layout.MODE_DELTA_SHIFT
        if delta > MAX_DELTA_ORDER:
            raise VortexFormatError(f"cm numeric field {number} has delta order {delta}, "
                                    f"above {MAX_DELTA_ORDER}")
        fields.append(Field(field.width, bool(field.mode & layout.MODE_BIG_ENDIAN), delta,
                            bool(field.mode & layout.MODE_ZIGZAG)))
    return Transform(tuple(fields), descriptor.order)
