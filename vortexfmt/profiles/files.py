"""Profile files: a cm warm start as a safetensors file, torch-free and bounded.

A profile is what a small cm frame needs to start warm (FORMAT.md "Profiles"): priming
bytes of the format it was trained on, which the cm model learns before each frame it
codes, and the cm settings a writer uses with them. On disk it is a safetensors file
(never pickle) of one tensor, ``prime`` (uint8, the priming bytes), whose metadata holds
``vortex.format = "vortex-profile"``, ``vortex.version = "1"``, ``vortex.profile`` (the
settings as JSON: ``format``, ``table_bits``, ``stride``, ``layout``) and ``vortex.id``
(the id in hex, a hint for finding the file; the id is always recomputed).

The safetensors layout is simple enough to write and read here with the standard library
(8-byte little-endian header length, the JSON header, the tensor bytes): the default
install needs no `safetensors` package (nor torch), and the reader checks every size
against the limits below before it reads or allocates anything, so a hostile file cannot
make it read more than MAX_PROFILE_FILE_SIZE bytes.

The profile id is the SHA-256 of its canonical bytes:

    "vortex-profile" 00 "1" 00 <settings as JSON, keys sorted, separators "," and ":"> 00
    <the priming bytes>

so it does not depend on how the file is laid out.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from vortexfmt.errors import VortexError
from vortexfmt.spec import cm as cm_layout
from vortexfmt.spec import profile as file_layout

FORMAT_NAME = "vortex-profile"
FORMAT_VERSION = "1"
SUFFIX = ".vxprofile"
PRIME_TENSOR = "prime"

#: The most priming bytes a profile may hold (the format's bound): each frame coded with
#: the profile first learns all of them (about as long as coding them).
MAX_PRIME_SIZE = cm_layout.MAX_PRIME_SIZE
#: The most bytes of the safetensors JSON header a reader accepts.
MAX_HEADER_SIZE = file_layout.MAX_HEADER_SIZE
#: The largest profile file: a reader refuses a larger one before reading it.
MAX_PROFILE_FILE_SIZE = file_layout.PREFIX_SIZE + MAX_HEADER_SIZE + MAX_PRIME_SIZE
#: Longest `format` name and `layout` string.
MAX_NAME_LENGTH = 64
MAX_LAYOUT_LENGTH = 256
#: The largest `table_bits` a profile may ask for (the writer still caps it per frame by
#: FORMAT.md's max_table_bits(raw_size)).
MAX_PROFILE_TABLE_BITS = 18


class ProfileError(VortexError):
    """A file is not a usable profile (the message names it and says why)."""


@dataclass(frozen=True)
class ProfileSettings:
    """What a writer uses with the priming bytes: the format's name (for people), the cm
    table size (log2 of buckets) and record length, and the numeric layout (None: none)."""

    format: str
    table_bits: int
    stride: int
    layout: str | None = None

    def to_dict(self) -> dict:
        return {"format": self.format, "table_bits": self.table_bits, "stride": self.stride,
                "layout": self.layout}

    def check(self) -> None:
        """Raise ValueError unless every field is within its bounds."""
        check_format_name(self.format)
        for name, value, low, high in (
                ("table_bits", self.table_bits, cm_layout.MIN_TABLE_BITS,
                 MAX_PROFILE_TABLE_BITS),
                ("stride", self.stride, 0, cm_layout.MAX_STRIDE)):
            if isinstance(value, bool) or not isinstance(value, int) or \
                    not low <= value <= high:
                raise ValueError(f"{name} must be an integer in {low}..{high}, got {value!r}")
        if self.layout is not None and (not isinstance(self.layout, str) or
                                        not 0 < len(self.layout) <= MAX_LAYOUT_LENGTH
                                        or not is_printable_ascii(self.layout)):
            raise ValueError(f"layout must be None or 1..{MAX_LAYOUT_LENGTH} printable ASCII "
                             "characters")


def check_format_name(name) -> None:
    """Raise ValueError unless `name` can name a profile's format (FORMAT.md "Profiles")."""
    if not isinstance(name, str) or not 0 < len(name) <= MAX_NAME_LENGTH \
            or not is_printable_ascii(name):
        raise ValueError(f"format name must be 1..{MAX_NAME_LENGTH} printable ASCII characters")


def is_printable_ascii(text: str) -> bool:
    """Whether every character is printable ASCII, 0x20..0x7E (FORMAT.md "Profiles": a
    rule any reader can check, unlike Unicode's categories, which change between versions)."""
    return all(" " <= character <= "~" for character in text)


@dataclass
class Profile:
    """A loaded profile: its settings, priming bytes and id (and its file, if any)."""

    settings: ProfileSettings
    prime: bytes
    path: Path | None = None
    _id: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.settings.check()
        if not 0 < len(self.prime) <= MAX_PRIME_SIZE:
            raise ValueError(f"a profile holds 1..{MAX_PRIME_SIZE} priming bytes, "
                             f"not {len(self.prime)}")
        self.prime = bytes(self.prime)

    @property
    def profile_id(self) -> bytes:
        """SHA-256 of the canonical bytes (32 bytes): what archive headers record."""
        if self._id is None:
            self._id = hashlib.sha256(canonical_bytes(self.settings, self.prime)).digest()
        return self._id

    # the names the neural models use, so that an archive's model id reads the same way
    model_id = profile_id

    @property
    def hex_id(self) -> str:
        return self.profile_id.hex()


def canonical_bytes(settings: ProfileSettings, prime: bytes) -> bytes:
    config = json.dumps(settings.to_dict(), sort_keys=True, separators=(",", ":"))
    return b"".join([FORMAT_NAME.encode(), b"\0", FORMAT_VERSION.encode(), b"\0",
                     config.encode(), b"\0", prime])


def profile_bytes(profile: Profile) -> bytes:
    """The safetensors bytes of `profile`."""
    header = {
        "__metadata__": {
            "vortex.format": FORMAT_NAME, "vortex.version": FORMAT_VERSION,
            "vortex.profile": json.dumps(profile.settings.to_dict(), sort_keys=True),
            "vortex.id": profile.hex_id},
        PRIME_TENSOR: {"dtype": "U8", "shape": [len(profile.prime)],
                       "data_offsets": [0, len(profile.prime)]},
    }
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # safetensors pads the header to 8 bytes with spaces
    return file_layout.ProfilePrefix.build({"header_size": len(text)}) + text + profile.prime


def save_profile(path: str | os.PathLike, profile: Profile) -> Profile:
    """Write `profile` to `path` (through a temporary file, renamed); returns it with its
    path. An OSError names `path`, never the temporary file, which the caller never saw."""
    path = Path(path)
    temporary = path.with_name(path.name + ".part")
    try:
        temporary.write_bytes(profile_bytes(profile))
        os.replace(temporary, path)
    except OSError as error:
        if error.filename != str(temporary):
            raise
        raise type(error)(error.errno, error.strerror, str(path)) from error
    finally:
        if temporary.exists():
            temporary.unlink()
    return Profile(profile.settings, profile.prime, path, profile._id)


def read_header(path: str | os.PathLike) -> tuple[dict, int]:
    """(metadata, priming byte count) of a profile file, reading its header only; raises
    ProfileError for anything but a well-formed, bounded profile header."""
    path = Path(path)
    try:
        with _open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            header, prime_size = _parse_header(handle, size, path)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read the profile ({error.strerror or error})") \
            from None
    return header, prime_size


def load_profile(path: str | os.PathLike) -> Profile:
    """Read and check a profile file; raises ProfileError if it is not one. Reads at most
    MAX_PROFILE_FILE_SIZE bytes whatever the file declares, and checks the header and the
    settings before reading the priming bytes (FORMAT.md "Profiles")."""
    path = Path(path)
    try:
        with _open_regular(path) as handle:
            size = os.fstat(handle.fileno()).st_size
            metadata, prime_size = _parse_header(handle, size, path)
            settings = _parse_settings(metadata, path)
            prime = handle.read(prime_size)
    except OSError as error:
        raise ProfileError(f"{path}: cannot read the profile ({error.strerror or error})") \
            from None
    if len(prime) != prime_size:
        raise ProfileError(f"{path}: truncated profile")
    return Profile(settings, prime, path)


def _open_regular(path: Path):
    """`path` opened for reading if it is a regular file; ProfileError for anything else (a
    FIFO on the search path would block the reader for ever, a device would never end).
    Opened without blocking, then checked, so that a FIFO never waits for a writer."""
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ProfileError(f"{path}: not a profile (not a regular file)")
        if hasattr(os, "set_blocking"):
            os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def _parse_settings(metadata: dict, path: Path) -> ProfileSettings:
    try:
        fields = json.loads(metadata["vortex.profile"])
        if not isinstance(fields, dict) or set(fields) != {"format", "table_bits", "stride",
                                                           "layout"}:
            raise ValueError("settings must be format, table_bits, stride and layout")
        settings = ProfileSettings(**fields)
        settings.check()
    except RecursionError:
        raise ProfileError(f"{path}: bad profile settings (nested too deeply)") from None
    except (KeyError, TypeError, ValueError) as error:
        raise ProfileError(f"{path}: bad profile settings ({error})") from None
    return settings


def _parse_header(handle, size: int, path: Path) -> tuple[dict, int]:
    """(metadata, priming byte count), the file positioned at the priming bytes."""
    if size > MAX_PROFILE_FILE_SIZE:
        raise ProfileError(f"{path}: {size} bytes, larger than a profile may be "
                           f"({MAX_PROFILE_FILE_SIZE})")
    head = handle.read(file_layout.PREFIX_SIZE)
    if len(head) != file_layout.PREFIX_SIZE:
        raise ProfileError(f"{path}: not a profile (too short)")
    length = file_layout.ProfilePrefix.parse(head).header_size
    if not 2 <= length <= min(MAX_HEADER_SIZE, size - file_layout.PREFIX_SIZE):
        raise ProfileError(f"{path}: not a profile (safetensors header of {length} bytes)")
    try:
        header = json.loads(handle.read(length).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # deep nesting: RecursionError
        raise ProfileError(f"{path}: not a profile (unreadable safetensors header)") from None
    if not isinstance(header, dict):
        raise ProfileError(f"{path}: not a profile (safetensors header is not an object)")
    metadata = header.pop("__metadata__", None)
    if not isinstance(metadata, dict) or metadata.get("vortex.format") != FORMAT_NAME:
        raise ProfileError(f"{path}: not a Vortex profile (metadata vortex.format is not "
                           f"{FORMAT_NAME!r})")
    if metadata.get("vortex.version") != FORMAT_VERSION:
        raise ProfileError(f"{path}: unsupported profile version "
                           f"{metadata.get('vortex.version')!r}")
    tensor = header.get(PRIME_TENSOR)
    if set(header) != {PRIME_TENSOR} or not isinstance(tensor, dict):
        raise ProfileError(f"{path}: a profile holds exactly one tensor, {PRIME_TENSOR!r}")
    shape, offsets = tensor.get("shape"), tensor.get("data_offsets")
    remaining = size - file_layout.PREFIX_SIZE - length
    if tensor.get("dtype") != "U8" or not _int_list(shape, 1) or not _int_list(offsets, 2) \
            or offsets[0] != 0 or offsets[1] != shape[0] or offsets[1] != remaining \
            or not 0 < remaining <= MAX_PRIME_SIZE:
        raise ProfileError(f"{path}: tensor {PRIME_TENSOR!r} must be 1..{MAX_PRIME_SIZE} "
                           "uint8 values filling the rest of the file")
    return metadata, remaining


def _int_list(value, length: int) -> bool:
    return isinstance(value, list) and len(value) == length and \
        all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)


def is_profile_file(path: str | os.PathLike) -> bool:
    """Whether `path` is a file whose header says it is a profile (not a neural model)."""
    try:
        read_header(path)
    except ProfileError:
        return False
    return True
