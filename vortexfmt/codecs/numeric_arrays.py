"""The numeric transform on numpy arrays: `apply` and `invert` of vortexfmt.codecs.numeric
(FORMAT.md "Numeric descriptor"), apart so that numpy is imported only by a process that
transforms a frame or undoes a transform (reading a frame without one, numpy's 0.1 s of
import is the larger part of a small random read).

All arithmetic is on unsigned integers modulo 2^(8 x width): numpy integer arrays wrap.
"""

from __future__ import annotations

import numpy as np

from vortexfmt.codecs.numeric import PLANES, Field, Transform


def _uint(width: int) -> np.dtype:
    return np.dtype(f"u{width}")


def _values(columns: np.ndarray, field: Field) -> np.ndarray:
    """The field's values as native unsigned integers, from its (records, width) bytes."""
    msb_first = columns if field.big_endian else columns[:, ::-1]
    return np.ascontiguousarray(msb_first).view(f">u{field.width}").ravel() \
        .astype(_uint(field.width))


def _columns(values: np.ndarray, width: int, big_endian: bool) -> np.ndarray:
    """(records, width) bytes of native unsigned `values`, in the given byte order."""
    data = values.astype(f"{'>' if big_endian else '<'}u{width}").view(np.uint8)
    return data.reshape(len(values), width)


def _forward_values(values: np.ndarray, field: Field) -> np.ndarray:
    width_bits = 8 * field.width
    for _ in range(field.delta):  # v[i] - v[i-1], v[-1] = 0, modulo 2^(8 width)
        values = values - np.concatenate((np.zeros(1, values.dtype), values[:-1]))
    if field.zigzag:  # (r << 1) xor (r >> (bits - 1), arithmetic): 0, -1, 1, -2 -> 0, 1, 2, 3
        sign = (values >> np.array(width_bits - 1, values.dtype)) & np.array(1, values.dtype)
        values = (values << np.array(1, values.dtype)) ^ (np.zeros(1, values.dtype) - sign)
    return values


def _inverse_values(values: np.ndarray, field: Field) -> np.ndarray:
    if field.zigzag:  # (z >> 1) xor -(z and 1)
        low = values & np.array(1, values.dtype)
        values = (values >> np.array(1, values.dtype)) ^ (np.zeros(1, values.dtype) - low)
    for _ in range(field.delta):  # running sums modulo 2^(8 width)
        values = np.cumsum(values, dtype=values.dtype)
    return values


def apply(data: bytes, transform: Transform) -> bytes:
    """The transformed frame: the same number of bytes, whole records rewritten, the tail
    (len(data) mod record_size bytes) unchanged at the end."""
    size = transform.record_size
    records = len(data) // size
    if records == 0:
        return bytes(data)
    body = np.frombuffer(data, np.uint8, records * size).reshape(records, size)
    out = np.empty((records, size), np.uint8)
    offset = 0
    for field in transform.fields:
        values = _forward_values(_values(body[:, offset:offset + field.width], field), field)
        out[:, offset:offset + field.width] = _columns(values, field.width, big_endian=True)
        offset += field.width
    coded = out.T if transform.order == PLANES else out
    return np.ascontiguousarray(coded).tobytes() + bytes(data[records * size:])


def invert(data: bytes, transform: Transform) -> bytes:
    """The frame `apply` was given: invert(apply(x, t), t) == x for every x and t."""
    size = transform.record_size
    records = len(data) // size
    if records == 0:
        return bytes(data)
    coded = np.frombuffer(data, np.uint8, records * size)
    body = coded.reshape(size, records).T if transform.order == PLANES \
        else coded.reshape(records, size)
    out = np.empty((records, size), np.uint8)
    offset = 0
    for field in transform.fields:
        columns = np.ascontiguousarray(body[:, offset:offset + field.width])
        values = columns.view(f">u{field.width}").ravel().astype(_uint(field.width))
        values = _inverse_values(values, field)
        out[:, offset:offset + field.width] = _columns(values, field.width, field.big_endian)
        offset += field.width
    return out.tobytes() + bytes(data[records * size:])
