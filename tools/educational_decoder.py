#!/usr/bin/env python3
"""An educational Vortex decoder, written from FORMAT.md alone.

    python tools/educational_decoder.py [--profile PROFILE] ARCHIVE OUTPUT

Reads the whole archive, checks every structure and checksum as FORMAT.md says a
sequential reader must, decodes stored, zstd, lzma and cm frames (numeric transforms and
primed frames included: format 1.3; primed frames need the archive's profile, PROFILE),
and writes the content to OUTPUT (only once all of it is verified). Any damage: a one-line
message on stderr, exit 1, and nothing written.

It imports nothing from vortexfmt: only the standard library, xxhash and zstandard. It is
meant to be read next to FORMAT.md (section names are given in comments), and is slow:
the cm model runs in Python, one bit at a time (a few KiB per second).
"""

from __future__ import annotations

import hashlib
import json
import lzma
import operator
import struct
import sys

import xxhash
import zstandard


class Damaged(Exception):
    """The archive breaks a rule of FORMAT.md."""


# --- Constants (FORMAT.md "Constants") ---------------------------------------------------------

FILE_MAGIC = b"\x89VTX\r\n\x1a\n"
FRAME_MAGIC = b"\x8fVFR"
SKIPPABLE_MAGIC = b"\x8fVSK"
INDEX_MAGIC = b"\x8fVIX"
TRAILER_MAGIC = b"\x8fVTR"
MAX_FRAME_SIZE = 1 << 28
CODEC_NAMES = {0: "stored", 1: "zstd", 2: "neural", 3: "lzma", 4: "mixed", 5: "cm"}


def max_payload_size(raw_size: int) -> int:
    return raw_size + (raw_size >> 3) + 1024


def xxh32(data: bytes) -> int:
    return xxhash.xxh32_intdigest(data)


def xxh64(data: bytes) -> int:
    return xxhash.xxh64_intdigest(data)


# --- The container (FORMAT.md "File header", "Frame", "Skippable section", "Seek index",
# --- "Trailer", "Sequential reader") -----------------------------------------------------------

class Archive:
    """The archive's bytes, read front to back as a sequential reader does."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.offset = 0

    def take(self, size: int, what: str) -> bytes:
        if self.offset + size > len(self.data):
            raise Damaged(f"{what} at offset {self.offset}: archive truncated")
        piece = self.data[self.offset:self.offset + size]
        self.offset += size
        return piece


def check_sum(structure: bytes, what: str, offset: int) -> None:
    """The last 4 bytes of `structure` are the XXH32 of the bytes before them."""
    (stored,) = struct.unpack_from("<I", structure, len(structure) - 4)
    if xxh32(structure[:-4]) != stored:
        raise Damaged(f"{what} at offset {offset}: checksum mismatch")


def read_file_header(archive: Archive) -> tuple[int, bytes]:
    """Checks the file header; returns frame_size and model_id."""
    header = archive.take(52, "file header")
    if header[:8] != FILE_MAGIC:
        raise Damaged("not a Vortex archive (bad file magic)")
    major, minor, flags, frame_size = struct.unpack_from("<BBHI", header, 8)
    if major != 1:
        raise Damaged(f"unsupported format version {major}.{minor}")
    check_sum(header, "file header", 0)
    if flags != 0:
        raise Damaged(f"file header: unknown flags {flags:#06x}")
    if not 1 <= frame_size <= MAX_FRAME_SIZE:
        raise Damaged(f"file header: frame size {frame_size} outside 1..{MAX_FRAME_SIZE}")
    # any version_minor is accepted; model_id matters to primed (and neural) frames only
    return frame_size, header[16:48]


def decode_archive(data: bytes, profile: bytes | None = None) -> bytes:
    """The content of the archive `data`; `profile`: the bytes of the profile file its
    primed cm frames need (FORMAT.md "Profiles"), if any."""
    archive = Archive(data)
    frame_size, model_id = read_file_header(archive)
    prime = None
    if profile is not None:
        prime, profile_id = read_profile(profile)
        if model_id != profile_id:
            raise Damaged(f"the profile's id {profile_id.hex()} is not the archive's model "
                          f"id {model_id.hex()}")
    content = bytearray()
    entries = []  # what the seek index must say, one (offset, raw offset, sizes) per frame
    while True:
        start = archive.offset
        magic = archive.take(4, "block")
        if magic == FRAME_MAGIC:
            if entries and entries[-1][2] != frame_size:
                raise Damaged(f"frame at offset {start} follows a short frame")
            raw = read_frame(archive, start, len(entries), frame_size, model_id, prime)
            entries.append((start, len(content), len(raw), archive.offset - start - 32))
            content += raw
        elif magic == SKIPPABLE_MAGIC:
            header = magic + archive.take(12, "skippable section header")
            check_sum(header, "skippable section header", start)
            (length,) = struct.unpack_from("<I", header, 8)
            archive.take(length, "skippable section")
        elif magic == INDEX_MAGIC:
            read_index_and_trailer(archive, start, entries, content)
            return bytes(content)
        else:
            raise Damaged(f"offset {start}: no frame, skippable section or seek index here")


def read_frame(archive: Archive, start: int, number: int, frame_size: int, model_id: bytes,
               prime: bytes | None) -> bytes:
    header = FRAME_MAGIC + archive.take(28, "frame header")
    check_sum(header, "frame header", start)
    codec, flags, reserved, frame_number, raw_size, payload_size, raw_checksum = \
        struct.unpack_from("<BBHIIIQ", header, 4)
    where = f"frame {number} at offset {start}"
    if flags != 0 or reserved != 0:
        raise Damaged(f"{where}: reserved header bits are set")
    if frame_number != number:
        raise Damaged(f"{where}: numbered {frame_number}")
    if not 1 <= raw_size <= frame_size:
        raise Damaged(f"{where}: raw size {raw_size} outside 1..{frame_size}")
    if payload_size > max_payload_size(raw_size):
        raise Damaged(f"{where}: payload size {payload_size} is impossible for {raw_size} "
                      "raw bytes")
    payload = archive.take(payload_size, f"{where}: payload")
    try:
        raw = decode_payload(codec, payload, raw_size, model_id, prime)
    except Damaged as error:
        raise Damaged(f"{where}: {error}") from None
    if len(raw) != raw_size:
        raise Damaged(f"{where}: payload decodes to {len(raw)} bytes, not {raw_size}")
    if xxh64(raw) != raw_checksum:
        raise Damaged(f"{where}: checksum mismatch of the decoded bytes")
    return raw


def read_index_and_trailer(archive: Archive, start: int, entries, content) -> None:
    (count,) = struct.unpack("<I", archive.take(4, "seek index"))
    if count != len(entries):
        raise Damaged(f"seek index at offset {start}: {count} entries for {len(entries)} "
                      "frames")
    body = archive.take(24 * count + 4, "seek index")
    check_sum(INDEX_MAGIC + struct.pack("<I", count) + body, "seek index", start)
    for i, expected in enumerate(entries):
        if struct.unpack_from("<QQII", body, 24 * i) != expected:
            raise Damaged(f"seek index entry {i} disagrees with frame {i}")
    trailer_offset = archive.offset
    trailer = archive.take(32, "trailer")
    if trailer[28:] != TRAILER_MAGIC:
        raise Damaged(f"trailer at offset {trailer_offset}: bad magic number")
    check_sum(trailer[:28], "trailer", trailer_offset)
    index_offset, raw_size, content_checksum = struct.unpack_from("<QQQ", trailer)
    if index_offset != start:
        raise Damaged(f"trailer: index offset {index_offset}, the index is at {start}")
    if archive.offset != len(archive.data):
        raise Damaged(f"{len(archive.data) - archive.offset} bytes after the trailer")
    if raw_size != len(content):
        raise Damaged(f"frames hold {len(content)} raw bytes, trailer says {raw_size}")
    if xxh64(bytes(content)) != content_checksum:
        raise Damaged("whole-content checksum mismatch")


# --- Frame codecs (FORMAT.md "Frame codecs") ---------------------------------------------------

def decode_payload(codec: int, payload: bytes, raw_size: int, model_id: bytes = bytes(32),
                   prime: bytes | None = None) -> bytes:
    if codec == 0:  # stored
        return payload
    if codec == 1:  # zstd: one frame, nothing after it, at most raw_size bytes out
        try:
            return zstandard.ZstdDecompressor(max_window_size=1 << 27).decompress(
                payload, max_output_size=raw_size, allow_extra_data=False)
        except zstandard.ZstdError as error:
            raise Damaged(f"zstd payload is corrupt: {error}") from None
    if codec == 3:  # lzma: raw LZMA2 with the dictionary size the frame implies
        dict_size = max(4096, 1 << (raw_size - 1).bit_length())
        decoder = lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=[
            {"id": lzma.FILTER_LZMA2, "dict_size": dict_size}])
        try:
            raw = decoder.decompress(payload, max_length=raw_size + 1)
        except lzma.LZMAError as error:
            raise Damaged(f"lzma payload is corrupt: {error}") from None
        if not decoder.eof or decoder.unused_data:
            raise Damaged("lzma payload does not end with its end-of-stream marker")
        return raw
    if codec == 5:
        return decode_cm(payload, raw_size, model_id, prime)
    name = CODEC_NAMES.get(codec, f"codec-{codec}")
    raise Damaged(f"{name} payload: unsupported codec id {codec} (this decoder implements "
                  "stored, zstd, lzma and cm)")


# --- CM payload header (FORMAT.md "CM payload") ------------------------------------------------

def read_leb128(data: bytes, offset: int) -> tuple[int, int]:
    """(value, offset after it); at most 10 bytes, value below 2^64."""
    value = 0
    for index in range(10):
        if offset + index >= len(data):
            raise Damaged("cm payload header is truncated")
        byte = data[offset + index]
        value |= (byte & 0x7F) << (7 * index)
        if byte < 0x80:
            if value >= 1 << 64:
                raise Damaged("LEB128 value is not below 2^64")
            return value, offset + index + 1
    raise Damaged("LEB128 value longer than 10 bytes")


NUMERIC, PRIMED = 0x01, 0x02  # the cm payload's flags (format 1.3)


def decode_cm(payload: bytes, n: int, model_id: bytes = bytes(32),
              prime: bytes | None = None) -> bytes:
    if len(payload) < 5:
        raise Damaged("cm payload header is truncated")
    revision, flags, table_bits, stride = struct.unpack_from("<BBBH", payload)
    if revision != 1:
        raise Damaged(f"cm payload of revision {revision}; this decoder knows revision 1")
    if flags & ~(NUMERIC | PRIMED):
        raise Damaged(f"cm payload has unknown flags {flags:#04x}")
    if flags == NUMERIC | PRIMED:
        raise Damaged("cm payload is both primed and numeric")
    largest = min(22, max(10, (n - 1).bit_length()))  # ceil(log2 n)
    if not 10 <= table_bits <= largest:
        raise Damaged(f"cm payload table_bits {table_bits} is outside 10..{largest}")
    if stride > 1024:
        raise Damaged(f"cm payload stride {stride} exceeds 1024")
    offset = 5
    fields = None
    if flags & NUMERIC:
        order, fields, offset = read_numeric_descriptor(payload, offset)
    lanes, offset = read_leb128(payload, offset)
    if not 1 <= lanes <= max(1, n):
        raise Damaged(f"cm payload has {lanes} lanes for {n} bytes")
    if flags & PRIMED and lanes != 1:
        raise Damaged(f"primed cm payload has {lanes} lanes, not 1")
    if lanes > len(payload) - offset:
        raise Damaged("cm payload header is truncated")
    lengths = []
    for _ in range(lanes):
        length, offset = read_leb128(payload, offset)
        lengths.append(length)
    if offset + sum(lengths) != len(payload):
        raise Damaged("cm stream lengths do not add up to the payload")
    streams = []
    for length in lengths:
        streams.append(payload[offset:offset + length])
        offset += length
    if flags & PRIMED:  # "Primed frames"
        if model_id == bytes(32):
            raise Damaged("primed cm frame in an archive whose model_id is zero")
        if prime is None:
            raise Damaged(f"primed cm frame: give the profile {model_id.hex()} (--profile)")
        return CmFrame(n, table_bits, stride, streams, prime).decode()
    frame = CmFrame(n, table_bits, stride, streams).decode()
    return frame if fields is None else undo_numeric(frame, order, fields)


# --- Numeric transform (FORMAT.md "CM payload", "Numeric descriptor") --------------------------

def read_numeric_descriptor(payload: bytes, offset: int):
    """(order, [(width, big_endian, delta, zigzag)], offset after it)."""
    if offset + 2 > len(payload):
        raise Damaged("cm numeric descriptor is truncated")
    order, count = payload[offset], payload[offset + 1]
    if order > 1:
        raise Damaged(f"cm numeric descriptor has order {order}")
    if count == 0:
        raise Damaged("cm numeric descriptor has no fields")
    if offset + 2 + 2 * count > len(payload):
        raise Damaged("cm numeric descriptor is truncated")
    fields = []
    for f in range(count):
        width, mode = payload[offset + 2 + 2 * f], payload[offset + 3 + 2 * f]
        if width not in (1, 2, 4, 8):
            raise Damaged(f"cm numeric field {f} has width {width}")
        if mode & 0xF0:
            raise Damaged(f"cm numeric field {f} has reserved mode bits {mode:#04x}")
        delta = (mode >> 1) & 3
        if delta == 3:
            raise Damaged(f"cm numeric field {f} has delta order 3")
        fields.append((width, bool(mode & 1), delta, bool(mode & 8)))
    return order, fields, offset + 2 + 2 * count


def undo_numeric(data: bytes, order: int, fields) -> bytes:
    """The frame, from the bytes the model decoded."""
    n = len(data)
    R = sum(width for width, _, _, _ in fields)
    m = n // R
    if m == 0:
        return data
    if order == 0:  # interleaved: c[0][0] c[0][1] ... then the tail
        records = [data[i * R:(i + 1) * R] for i in range(m)]
    else:  # planes: byte j of every record, for j = 0..R-1, then the tail
        records = [bytes(data[j * m + i] for j in range(R)) for i in range(m)]
    out = bytearray(data[m * R:])  # the tail, after the records
    out[0:0] = bytes(m * R)
    o = 0
    for width, big_endian, delta, zigzag in fields:
        B = 8 * width
        mask = (1 << B) - 1
        v = [int.from_bytes(records[i][o:o + width], "big") for i in range(m)]  # MSB first
        if zigzag:
            v = [(x >> 1) ^ (mask if x & 1 else 0) for x in v]
        for _ in range(delta):  # the running sum, mod 2^B
            total = 0
            for i in range(m):
                total = (total + v[i]) & mask
                v[i] = total
        byteorder = "big" if big_endian else "little"
        for i in range(m):
            out[i * R + o:i * R + o + width] = v[i].to_bytes(width, byteorder)
        o += width
    return bytes(out)


# --- Profiles (FORMAT.md "Profiles") -----------------------------------------------------------

MAX_PRIME_SIZE = 4 << 20
PROFILE_KEYS = {"format", "table_bits", "stride", "layout"}


def read_profile(data: bytes) -> tuple[bytes, bytes]:
    """(priming bytes, profile id) of a profile file's bytes."""
    if len(data) > 8 + 65536 + MAX_PRIME_SIZE:
        raise Damaged("profile: file too large")
    if len(data) < 8:
        raise Damaged("profile: truncated")
    (size,) = struct.unpack_from("<Q", data)
    if size > 65536 or 8 + size > len(data):
        raise Damaged(f"profile: header of {size} bytes")
    try:
        header = json.loads(data[8:8 + size].decode("utf-8"))
    except (ValueError, RecursionError):  # RecursionError: nested too deeply for json
        raise Damaged("profile: unreadable header") from None
    p = len(data) - 8 - size
    metadata = header.pop("__metadata__", None) if isinstance(header, dict) else None
    if not isinstance(metadata, dict) or metadata.get("vortex.format") != "vortex-profile" \
            or metadata.get("vortex.version") != "1":
        raise Damaged("profile: not a version-1 Vortex profile")
    tensor = header.get("prime")
    if list(header) != ["prime"] or not isinstance(tensor, dict) or \
            tensor.get("dtype") != "U8" or tensor.get("shape") != [p] or \
            tensor.get("data_offsets") != [0, p] or not 1 <= p <= MAX_PRIME_SIZE:
        raise Damaged("profile: it must hold one tensor, 'prime', of 1..4 MiB filling the file")
    try:
        settings = json.loads(metadata["vortex.profile"])
    except (KeyError, TypeError, ValueError, RecursionError):
        raise Damaged("profile: no readable vortex.profile") from None
    if not isinstance(settings, dict) or set(settings) != PROFILE_KEYS:
        raise Damaged("profile: vortex.profile must hold format, table_bits, stride, layout")
    name, table_bits, stride, layout = (settings[k] for k in ("format", "table_bits",
                                                               "stride", "layout"))
    def printable(text) -> bool:  # printable ASCII, 0x20..0x7E
        return isinstance(text, str) and all(" " <= c <= "~" for c in text)
    if not (printable(name) and 1 <= len(name) <= 64
            and type(table_bits) is int and 10 <= table_bits <= 18
            and type(stride) is int and 0 <= stride <= 1024
            and (layout is None or printable(layout) and 1 <= len(layout) <= 256)):
        raise Damaged("profile: vortex.profile has a value out of range")
    prime = data[8 + size:]
    canonical = json.dumps(settings, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    profile_id = hashlib.sha256(b"vortex-profile\x001\x00" + canonical.encode("ascii") +
                                b"\x00" + prime).digest()
    return prime, profile_id


# --- CM model (FORMAT.md "CM model") -----------------------------------------------------------

M64 = (1 << 64) - 1
M32 = (1 << 32) - 1


def H(x: int, salt: int) -> int:  # "Hash"
    x = ((x + salt * 0x9E3779B97F4A7C15) * 0xBF58476D1CE4E5B9) & M64
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) & M64
    return x ^ (x >> 29)


class BitDecoder:  # "Binary arithmetic coder"
    def __init__(self, stream: bytes) -> None:
        self.bits = int.from_bytes(stream, "big") if stream else 0
        self.left = 8 * len(stream)  # bits not yet read; past them, zeros
        self.low, self.high, self.value = 0, M32, 0
        for _ in range(32):
            self.value = (self.value << 1) | self.next_bit()

    def next_bit(self) -> int:
        if self.left == 0:
            return 0
        self.left -= 1
        return (self.bits >> self.left) & 1

    def decode(self, p1: int) -> int:
        c0 = 65536 - p1
        low, high = self.low, self.high
        span = high - low + 1
        offset = (self.value - low + 1) & M64
        bit = 1 if c0 * span <= ((offset << 16) & M64) - 1 else 0
        c_low, c_high = (c0, 65536) if bit else (0, c0)
        high = (low - 1 + ((span * c_high) >> 16)) & M32
        low = (low + ((span * c_low) >> 16)) & M32
        value = self.value
        while True:
            if low >= 0x80000000 or high < 0x80000000:
                low = (low << 1) & M32
                high = ((high << 1) | 1) & M32
                value = ((value << 1) | self.next_bit()) & M32
            elif low >= 0x40000000 and high < 0xC0000000:
                low = (low << 1) & 0x7FFFFFFF
                high = ((high << 1) | 0x80000001) & M32
                value = (((value - 0x40000000) << 1) | self.next_bit()) & M32
            else:
                break
        self.low, self.high, self.value = low, high, value
        return bit


def counter_p(v: int) -> int:  # "Counters"
    return (v >> 16) ^ 0x8000


def counter_updated(v: int, bit: int, limit: int) -> int:
    n = v & 0xFFFF
    p = (v >> 16) ^ 0x8000
    rate = 65536 // (2 * n + 3)
    p += ((bit * 65535 - p) * rate) >> 15
    if n < limit:
        n += 1
    return ((p ^ 0x8000) << 16) | n


SQUASH_POINTS = (22, 36, 60, 98, 162, 267, 439, 720, 1179, 1921, 3108, 4971, 7812, 11955,
                 17625, 24743, 32768, 40793, 47911, 53581, 57724, 60565, 62428, 63615, 64357,
                 64816, 65097, 65269, 65374, 65438, 65476, 65500, 65514)


def squash(x: int) -> int:  # "Squash and stretch"
    x = min(max(x, -2047), 2047) + 2048
    i, w = x >> 7, x & 127
    return (SQUASH_POINTS[i] * (128 - w) + SQUASH_POINTS[i + 1] * w + 64) >> 7


def make_stretch() -> list[int]:
    table, next_ = [0] * 4096, 0
    for x in range(-2047, 2048):
        q = squash(x) >> 4
        while next_ <= q:
            table[next_] = x
            next_ += 1
    while next_ < 4096:
        table[next_] = 2047
        next_ += 1
    return table


STRETCH = make_stretch()
SQUASHED = {x: squash(x) for x in range(-2047, 2048)}  # a cache of squash, same values


def stretch(p: int) -> int:
    return STRETCH[p >> 4]


class ContextTable:
    """2^bits buckets, each a list [tag, run byte, run count, node 0..14]; a bucket never
    written is all zero (kept in a dict so that only used buckets cost memory)."""

    def __init__(self, bits: int) -> None:
        self.mask = (1 << bits) - 1
        self.buckets: dict[int, list[int]] = {}

    def bucket(self, index: int) -> list[int]:
        found = self.buckets.get(index)
        if found is None:
            found = self.buckets[index] = [0] * 18
        return found

    def find(self, h: int) -> int:
        tag = ((h >> 48) | 1) & 0xFFFF
        i = (h >> 20) & self.mask
        a, b = self.bucket(i), self.bucket(i ^ 1)
        if a[0] == tag:
            return i
        if b[0] == tag:
            return i ^ 1
        victim = i if (a[3] & 0xFFFF) <= (b[3] & 0xFFFF) else i ^ 1
        self.buckets[victim] = [tag] + [0] * 17
        return victim


class Mixer:  # "Mixers"
    def __init__(self, sets: int, inputs: int, initial: int, shift: int) -> None:
        self.n = inputs
        self.w = [initial] * (sets * inputs)
        self.shift = shift
        self.base = 0
        self.p = 32768

    def mix(self, x: list[int], chosen: int) -> int:
        self.base = base = chosen * self.n
        total = sum(map(operator.mul, x, self.w[base:base + self.n]))
        dot = min(max(total >> 12, -2047), 2047)
        self.p = SQUASHED[dot]
        return dot

    def update(self, x: list[int], bit: int) -> None:
        err = ((bit << 16) - self.p) >> self.shift
        if -8 < err < 8:
            return
        base, end = self.base, self.base + self.n
        w = [w + ((((xi * err) >> 14) + 1) >> 1) for w, xi in zip(self.w[base:end], x, strict=True)]
        if min(w) < -16384 or max(w) > 16384:  # seldom: clamp
            w = [min(max(v, -16384), 16384) for v in w]
        self.w[base:end] = w


class Apm:  # "APMs"
    def __init__(self, contexts: int) -> None:
        self.t = list(SQUASH_POINTS) * contexts
        self.chosen = 0

    def estimate(self, v: int, context: int) -> int:
        v = min(max(v, -2047), 2047) + 2048
        a, w = context * 33 + (v >> 7), v & 127
        self.chosen = a + (w >> 6)
        return (self.t[a] * (128 - w) + self.t[a + 1] * w) >> 7

    def update(self, bit: int) -> None:
        e = self.t[self.chosen]
        self.t[self.chosen] = max(1, e + (((65535 if bit else 0) - e) >> 6))


class Lane:
    def __init__(self, start: int, length: int) -> None:
        self.start, self.length = start, length
        self.history = self.older = self.word = 0
        self.pointer = [0, 0]  # the two match models
        self.match_length = [0, 0]


ORDER = (6, 16)
MIXER_SETS = (608, 256, 2048, 1024, 4096)


class CmFrame:
    """One cm frame's model and decoders ("State at the start of a frame")."""

    def __init__(self, n: int, table_bits: int, stride: int, streams: list[bytes],
                 prime: bytes = b"") -> None:
        # A primed frame ("Primed frames") is coded as one lane of the priming bytes and the
        # frame's n bytes, the priming bytes learnt but not coded.
        self.prime = prime
        n += len(prime)
        self.n, self.stride = n, stride
        self.frame = bytearray(n)
        lanes = len(streams)
        self.T = max(1, -(-n // lanes))
        self.lanes = []
        for k in range(lanes):
            start = min(n, k * self.T)
            self.lanes.append(Lane(start, min(n, start + self.T) - start))
        self.decoders = [BitDecoder(s) for s in streams]
        self.tables = [ContextTable(table_bits) for _ in range(18)]
        self.match_bits = min(table_bits + 4, 24)
        self.match_tables: list[dict[int, int]] = [{}, {}]
        self.O, self.R, self.Q = [0] * 2048, [0] * 4608, [0] * 256
        self.indirect = [0] * 256
        self.mixers = [Mixer(sets, 40, 512, 4) for sets in MIXER_SETS]
        self.final = Mixer(8, 5, 4096 // 5, 5)
        self.A0, self.A1, self.AM = Apm(256), Apm(65536), Apm(1032)

    def decode(self) -> bytes:  # "Lanes and order of coding"
        p = len(self.prime)
        for t in range(p):  # "Primed frames": learn each bit of P as if it had been decoded
            lane = self.lanes[0]
            self.begin_byte(lane, t)
            byte = self.prime[t]
            for j in range(8):
                self.predict()
                self.update((byte >> (7 - j)) & 1)
            self.frame[t] = byte
            self.end_byte(byte)
        for t in range(p, self.lanes[0].length if self.lanes else 0):
            for k, lane in enumerate(self.lanes):
                if t >= lane.length:
                    break
                self.begin_byte(lane, t)
                for _ in range(8):
                    bit = self.decoders[k].decode(self.predict())
                    self.update(bit)
                byte = self.c0 & 0xFF
                self.frame[lane.start + t] = byte
                self.end_byte(byte)
        return bytes(self.frame[p:])

    def known(self, p: int) -> bool:
        o = p % self.T
        return o < self.t or (o == self.t and p < self.lane.start)

    def back(self, d: int) -> int:
        return self.frame[self.pos - d] if d <= self.t else 0

    def begin_byte(self, lane: Lane, t: int) -> None:  # "Start of a byte"
        self.lane, self.t = lane, t
        pos = self.pos = lane.start + t
        h, back, s = lane.history, self.back, self.stride
        c1 = self.c1 = h & 0xFF
        col2, col4, col8 = pos & 1, pos & 3, pos & 7
        if s > 0:
            v9 = back(s) | back(2 * s) << 8
            v10 = back(s) | c1 << 8 | back(s + 1) << 16
        else:
            v9 = back(3) | back(6) << 8 | (pos % 3) << 16
            v10 = back(8) | c1 << 8 | col8 << 16
        values = (c1, h & 0xFFFF, h & 0xFFFFFF, h & 0xFFFF00,
                  back(8) | back(16) << 8 | col8 << 16, h, lane.word << 8 | c1,
                  h & 0xFF00FF00, (h & 0xFFFF0000) | col4, v9, v10,
                  back(4) | back(8) << 8 | col4 << 16, c1 | self.indirect[c1] << 8,
                  back(2) | back(4) << 8 | col2 << 16, c1 | col8 << 8,
                  back(4) | c1 << 8 | col4 << 16, h & 0xFF00, h & 0xFF0000)
        self.ctx = [H(v, i + 1) for i, v in enumerate(values)]
        self.first = [table.find(c) for table, c in zip(self.tables, self.ctx, strict=True)]
        self.bucket = list(self.first)  # indices; `nodes`: those buckets, for this nibble
        self.nodes = [table.bucket(i) for table, i in zip(self.tables, self.bucket, strict=True)]
        self.seen = 0
        self.running, self.run_byte, self.run_base = [], [], []
        for i in range(18):
            b = self.tables[i].bucket(self.first[i])
            self.seen += b[2] != 0
            self.running.append(b[2] != 0)
            self.run_byte.append(b[1])
            self.run_base.append((i * 128 + min(b[2], 127)) * 2)
        self.expected, self.mbucket = [], []
        for m in range(2):
            length = lane.match_length[m]
            self.expected.append(self.frame[lane.pointer[m]] if length > 0 else -1)
            self.mbucket.append(length if length < 16
                                else min(31, 12 + length.bit_length() - 1))
        self.longest = 1 if lane.match_length[1] > lane.match_length[0] else 0
        self.column = pos % s if s > 0 else t & 3
        self.o2 = H(h & 0xFFFF, 5) >> 52
        self.c0, self.j = 1, 0

    def expects(self, m: int) -> bool:
        e = self.expected[m]
        return e >= 0 and (e | 256) >> (8 - self.j) == self.c0

    def midx(self, m: int) -> int:
        return self.mbucket[m] * 2 + ((self.expected[m] >> (7 - self.j)) & 1)

    def predict(self) -> int:  # "Each bit: predict()"
        c0, j = self.c0, self.j
        k = c0 - 1 if j < 4 else ((c0 & ((1 << (j - 4)) - 1)) | (1 << (j - 4))) - 1
        self.node = k
        x = [STRETCH[counter_p(b[3 + k]) >> 4] for b in self.nodes]
        self.run_at = []
        for i in range(18):
            if self.running[i]:
                r = (self.run_byte[i] >> (7 - j)) & 1
                self.run_at.append((i, r))
                x.append(stretch(counter_p(self.R[self.run_base[i] + r])))
            else:
                x.append(0)
        x.append(stretch(counter_p(self.O[j * 256 + c0])))
        for m in range(2):
            x.append(stretch(counter_p(self.Q[m * 128 + self.midx(m)])) if self.expects(m)
                     else 0)
        x.append(256)
        self.x = x
        sets = (self.seen * 32 + self.mbucket[self.longest], c0, self.c1 * 8 + j,
                (min(self.column, 127) * 8 + j) & 1023, (self.o2 ^ (c0 << 4)) & 4095)
        self.dots = [mixer.mix(x, chosen) for mixer, chosen in zip(self.mixers, sets, strict=True)]
        dot_f = self.final.mix(self.dots, j)
        a0 = self.A0.estimate(dot_f, c0)
        a1 = self.A1.estimate(dot_f, c0 | self.c1 << 8)
        am_context = (self.midx(self.longest) * 8 + j if self.expects(self.longest)
                      else 1024 + j)
        am = self.AM.estimate(dot_f, am_context)
        return min(max((self.final.p + a0 + a1 + am + 2) >> 2, 1), 65535)

    def update(self, bit: int) -> None:  # "Each bit: update(bit)"
        for mixer in self.mixers:
            mixer.update(self.x, bit)
        self.final.update(self.dots, bit)
        for apm in (self.A0, self.A1, self.AM):
            apm.update(bit)
        at = 3 + self.node
        for b in self.nodes:
            b[at] = counter_updated(b[at], bit, 60)
        for i, r in self.run_at:
            at = self.run_base[i] + r
            self.R[at] = counter_updated(self.R[at], bit, 255)
            if bit != r:
                self.running[i] = False
        at = self.j * 256 + self.c0
        self.O[at] = counter_updated(self.O[at], bit, 255)
        for m in range(2):
            if self.expects(m):
                at = m * 128 + self.midx(m)
                self.Q[at] = counter_updated(self.Q[at], bit, 1023)
        self.c0 = self.c0 * 2 + bit
        self.j += 1
        if self.j == 4:
            for i in range(18):
                self.ctx[i] = H(self.ctx[i], self.c0)
                self.bucket[i] = self.tables[i].find(self.ctx[i])
                self.nodes[i] = self.tables[i].bucket(self.bucket[i])

    def end_byte(self, byte: int) -> None:  # "End of a byte"
        lane, pos, t = self.lane, self.pos, self.t
        self.indirect[self.c1] = ((self.indirect[self.c1] << 8) | byte) & 0xFFFF
        lane.older = ((lane.older << 8) | (lane.history >> 56)) & M64
        lane.history = ((lane.history << 8) | byte) & M64
        shift = 64 - self.match_bits
        slots = (H(lane.history & 0xFFFFFFFFFFFF, 99) >> shift,
                 H(lane.history ^ H(lane.older, 98), 100) >> shift)
        for i in range(18):
            b = self.tables[i].bucket(self.first[i])
            if b[2] != 0 and b[1] == byte:
                b[2] = min(b[2] + 1, 255)
            else:
                b[1], b[2] = byte, 1
        letter = 65 <= byte <= 90 or 97 <= byte <= 122 or byte >= 128
        lane.word = ((lane.word ^ (byte | 32)) * 0x2F0F1) & M32 if letter else 0
        frame = self.frame
        for m in range(2):
            if lane.match_length[m] > 0:
                p = lane.pointer[m]
                if frame[p] == byte and p + 1 < self.n and self.known(p + 1):
                    lane.match_length[m] = min(lane.match_length[m] + 1, 65535)
                    lane.pointer[m] = p + 1
                else:
                    lane.match_length[m] = 0
            if t + 1 < ORDER[m]:
                continue
            table = self.match_tables[m]
            entry = table.get(slots[m], 0)
            if lane.match_length[m] == 0 and entry != 0:
                next_ = entry - 1
                if next_ < self.n and self.known(next_):
                    before = next_ - 1
                    reach = min(32, before % self.T + 1, t + 1)
                    length = 0
                    while length < reach and frame[before - length] == frame[pos - length]:
                        length += 1
                    if length >= ORDER[m]:
                        lane.match_length[m], lane.pointer[m] = length, next_
            table[slots[m]] = pos + 2


# --- Command line ------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    args = argv[1:]
    profile_path = None
    if len(args) == 4 and args[0] == "--profile":
        profile_path, args = args[1], args[2:]
    if len(args) != 2:
        print(f"usage: {argv[0]} [--profile PROFILE] ARCHIVE OUTPUT", file=sys.stderr)
        return 2
    path, output = args
    try:
        profile = None
        if profile_path is not None:
            with open(profile_path, "rb") as handle:
                profile = handle.read(8 + 65536 + MAX_PRIME_SIZE + 1)
        with open(path, "rb") as handle:
            data = handle.read()
        content = decode_archive(data, profile)
        with open(output, "wb") as handle:
            handle.write(content)
    except Damaged as error:
        print(f"educational_decoder: {path}: {error}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"educational_decoder: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
