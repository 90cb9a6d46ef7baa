"""Vortex: lossless compression of structured binary data with learned models."""

from vortexfmt.api import compress, decompress, open
from vortexfmt.container.reader import ArchiveReader
from vortexfmt.container.writer import DEFAULT_FRAME_SIZE, ArchiveWriter
from vortexfmt.errors import (
    CodingCancelled,
    FrameDamageError,
    FrameMemoryError,
    MissingExtraError,
    ModelMismatchError,
    UnsupportedCodecError,
    VortexError,
    VortexFormatError,
)

__version__ = "0.8.0"

__all__ = [
    "DEFAULT_FRAME_SIZE", "ArchiveReader", "ArchiveWriter", "CodingCancelled", "FrameDamageError",
    "FrameMemoryError", "MissingExtraError", "ModelMismatchError", "UnsupportedCodecError",
    "VortexError", "VortexFormatError",
    "compress", "decompress", "open",
]
