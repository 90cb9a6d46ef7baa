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


class ModelMismatchError(VortexFormatError):
    """The archive was written with a model other than the one offered for decoding."""


class MissingExtraError(VortexError):
    """What was asked needs an optional part of Vortex that is not installed (the model
    codecs need `pip install 'vortexfmt[neural]'`); the message says what to install."""


class FrameMemoryError(VortexFormatError):
    """A frame needs more memory to decode than the reader's memory limit allows
    (vortexfmt.limits); raised before anything is allocated."""

    def __init__(self, message: str, *, needed: int = 0, limit: int = 0) -> None:
        super().__init__(message)
        self.needed = needed
        self.limit = limit


# A frame that cannot be decoded is reported as a FrameDamageError naming it (so that
# salvage goes on with the other frames), of a class that is also the cause's class when
# the cause is one of Vortex's own (ModelMismatchError, MissingExtraError, FrameMemoryError,
# KernelUnavailableError, ...): `except MissingExtraError` still catches it.
_FRAME_ERROR_CLASSES: dict[type, type] = {}


def frame_error_class(cause: type) -> type:
    """FrameDamageError, or its subclass that is also a `cause` (a VortexError class)."""
    if not issubclass(cause, VortexError) or issubclass(cause, FrameDamageError):
        return FrameDamageError
    kind = _FRAME_ERROR_CLASSES.get(cause)
    if kind is None:
        kind = type(f"{cause.__name__}InFrame", (FrameDamageError, cause),
                    {"__module__": __name__,
                     "__doc__": f"A frame that cannot be decoded: {cause.__name__}."})
        _FRAME_ERROR_CLASSES[cause] = kind
    return kind


def frame_error(cause: BaseException | None, message: str, *, frame_number: int,
                raw_offset: int | None, raw_size: int | None) -> FrameDamageError:
    """The FrameDamageError that reports `cause` (raised while decoding a frame) as
    `message`, of the class frame_error_class() gives, with `cause`'s attributes."""
    kind = FrameDamageError if cause is None else frame_error_class(type(cause))
    error = kind(message, frame_number=frame_number, raw_offset=raw_offset,
                 raw_size=raw_size)
    if kind is not FrameDamageError:
        for name, value in vars(cause).items():
            if name not in ("frame_number", "raw_offset", "raw_size"):
                setattr(error, name, value)
    return error
