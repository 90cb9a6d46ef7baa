"""Compression levels: `vortex pack -1 .. -9` (and `--level N`, `level=` of FrameEncoder and
ArchiveWriter) name codec presets, from fast to strongest.

Each level maps to (codec name, codec options). Costs, roughly, per MiB of input on one core:

====== ============================== =================================================
level  preset                         cost
====== ============================== =================================================
1      zstd level 3                   fastest (hundreds of MB/s); weakest ratio
2      zstd level 9                   tens of MB/s
3      zstd level 19                  a few MB/s (the zstd that ``auto`` tries)
4      lzma preset 9e                 about 1-3 MB/s; usually smaller than zstd -19
5      auto over stored, zstd, lzma   runs zstd -19 and lzma -9e on every frame, keeps the
                                      smaller; no cm: archives unpack fast
6-9    auto (stored, zstd, lzma, cm)  the default: cm is two to ten times slower than lzma
                                      and zstd together, and packs smallest (they are left
                                      out where cm leads zstd -3 by a tenth: CM_LEAD);
                                      6-8 equal 9 (no cheaper cm preset was measured)
====== ============================== =================================================
"""

from __future__ import annotations

#: level -> (codec name, codec options). Options: ``level`` for zstd, ``candidates`` (the
#: codecs tried per frame) for auto.
LEVELS: dict[int, tuple[str, dict]] = {
    1: ("zstd", {"level": 3}),
    2: ("zstd", {"level": 9}),
    3: ("zstd", {"level": 19}),
    4: ("lzma", {}),
    5: ("auto", {"candidates": ("stored", "zstd", "lzma")}),
    6: ("auto", {}),
    7: ("auto", {}),
    8: ("auto", {}),
    9: ("auto", {}),
}

#: The level the writer uses when none is given: exactly codec ``auto``.
DEFAULT_LEVEL = 9
MIN_LEVEL, MAX_LEVEL = min(LEVELS), max(LEVELS)


def preset(level: int) -> tuple[str, dict]:
    """(codec name, options) of `level`; ValueError for a level outside 1..9."""
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise ValueError(f"compression level must be an integer in {MIN_LEVEL}..{MAX_LEVEL}, "
                         f"got {level!r}")
    codec, options = LEVELS[level]
    return codec, dict(options)
