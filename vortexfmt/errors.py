"""The Vortex exception family."""

from __future__ import annotations


class VortexError(Exception):
    """Base class of every error Vortex raises on purpose."""


class VortexFormatError(VortexError, ValueError):
    """An archive is malformed or damaged; the message says what is wrong and where."""


class FrameDamageError(VortexFormatError):
    """One frame cannot be decoded to its recorded checksum.

    Attributes name the frame so callers (the CLI, salvage) can report its raw byte range.
    """

    def __init__(self, message: str, *, frame_number: int, raw_offset: int | None,
                 raw_size: int | None) -> None:
        super().__init__(message)
        self.frame_number = frame_number
        self.raw_offset = raw_offset
        self.raw_size = raw_size


class UnsupportedCodecError(VortexFormatError):
    """A frame uses a codec id this reader does not implement."""


class CodingCancelled(VortexError):
    """A frame stopped being coded because its writer or reader was closing after an error
    or an interrupt: nobody wanted the frame any more."""


class ModelMismatchError(VortexError):
    """The archive was written with a model other than the one offered for decoding."""


class MissingExtraError(VortexError):
    """What was asked needs an optional part of Vortex that is not installed (the model
    codecs need `pip install 'vortexfmt[neural]'`); the message says what to install."""
