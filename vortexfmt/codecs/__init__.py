"""Frame codecs: turn one frame's raw bytes into a payload and back.

A codec is looked up by its FORMAT.md codec id or by name: one module each for stored, zstd,
lzma and cm; `auto` (auto.py) is the writer's policy over them. The model codecs (neural,
mixed) live in the optional `vortexfmt.neural` package, which this module loads by name
only when a frame needs one: without the `neural` extra, such a frame raises
MissingExtraError saying what to install.
"""

from __future__ import annotations

import threading
from typing import Protocol

from vortexfmt import limits, spec
from vortexfmt.errors import (
    CodingCancelled,
    FrameMemoryError,
    MissingExtraError,
    UnsupportedCodecError,
    VortexError,
    VortexFormatError,
)
from vortexfmt.spec import CodecId


class FrameCodec(Protocol):
    """What the container needs from a codec."""

    codec_id: int
    name: str

    def encode(self, raw: bytes) -> bytes:
        """Return the payload for `raw`."""

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        """Return exactly `raw_size` bytes, or raise VortexFormatError."""


CODEC_NAMES = {
    CodecId.STORED: "stored",
    CodecId.ZSTD: "zstd",
    CodecId.NEURAL: "neural",
    CodecId.LZMA: "lzma",
    CodecId.MIXED: "mixed",
    CodecId.CM: "cm",
}
#: Format minor version that introduced each codec (the others are 1.0).
MINOR_VERSION_OF = {CodecId.MIXED: 1, CodecId.CM: 2}
#: Format minor version that introduced primed cm frames (a cm payload flag).
PRIMED_CM_MINOR_VERSION = 3
CODEC_IDS = {name: codec_id for codec_id, name in CODEC_NAMES.items()}

#: Names accepted by the writer's ``codec`` argument and ``vortex pack --codec``.
WRITER_CODEC_CHOICES = ("auto", "cm", "mixed", "neural", "lzma", "zstd", "stored")
MODEL_CODEC_IDS = (CodecId.NEURAL, CodecId.MIXED)  # the codecs that need a model


def codec_name(codec_id: int) -> str:
    """Human name of a codec id (``codec-N`` for ids this version does not know)."""
    return CODEC_NAMES.get(codec_id, f"codec-{codec_id}")


def model_free_codec(codec_id: int) -> FrameCodec:
    """The codec for a codec id that needs no model (stored, zstd, lzma and cm); raises
    UnsupportedCodecError for any other."""
    if codec_id == CodecId.CM:
        from vortexfmt.codecs.cm import CmCodec

        return CmCodec()
    codec = _CLASSIC_CODECS.get(codec_id)
    if codec is None:
        raise UnsupportedCodecError(f"unsupported codec id {codec_id}")
    return codec


def _classic_codecs() -> dict[int, FrameCodec]:
    from vortexfmt.codecs.lzma import LzmaCodec
    from vortexfmt.codecs.stored import StoredCodec
    from vortexfmt.codecs.zstd import ZstdCodec

    return {codec.codec_id: codec for codec in (StoredCodec(), ZstdCodec(), LzmaCodec())}


_CLASSIC_CODECS = _classic_codecs()

#: What a model codec needs that the default install leaves out.
NEURAL_EXTRA_HINT = "pip install 'vortexfmt[neural]'"


def neural_package():
    """The optional `vortexfmt.neural` package (model codecs, model files and registry);
    raises MissingExtraError when its dependencies (torch) are not installed."""
    try:
        import importlib

        return importlib.import_module("vortexfmt.neural")
    except ImportError as error:
        raise MissingExtraError(
            f"the neural and mixed codecs need torch ({error}); install them with "
            f"{NEURAL_EXTRA_HINT}") from None


def model_codec(codec_id: int, model: object | None, device: str | None, *,
                model_id: bytes | None = None) -> FrameCodec:
    """The model codec `codec_id` (neural or mixed) with `model` resolved: for writing when
    `model_id` is None (a path, an id or the built-in model), else for an archive that
    records `model_id`."""
    neural = neural_package()
    if model_id is None:
        resolved = neural.registry.resolve(model)
    else:
        resolved = neural.registry.for_archive(model_id, model)
    return neural.codecs.MODEL_CODECS[codec_id](resolved, device)


def neural_payload_header(payload: bytes, raw_size: int, mixed: bool):
    """(header, stream lengths, offset of the first stream) of a neural or mixed payload,
    torch-free; raises VortexFormatError for anything FORMAT.md tells a reader to reject
    in them (the streams themselves are the model codec's)."""
    from vortexfmt.spec import neural as layout

    name = "mixed" if mixed else "neural"
    if len(payload) < layout.NEURAL_PAYLOAD_HEADER_SIZE:
        raise VortexFormatError(f"{name} payload header is truncated")
    header = layout.NeuralPayloadHeader.parse(payload)
    if not 1 <= header.lane_length <= layout.MAX_LANE_LENGTH:
        raise VortexFormatError(f"{name} payload lane length {header.lane_length} is outside "
                                f"1..{layout.MAX_LANE_LENGTH}")
    if header.stride > layout.MAX_STRIDE:
        raise VortexFormatError(f"{name} payload stride {header.stride} exceeds "
                                f"{layout.MAX_STRIDE}")
    lanes = limits.neural_lane_count(raw_size, header.lane_length)
    if mixed and lanes > layout.MAX_MIXED_LANES:
        raise VortexFormatError(f"mixed payload lane length {header.lane_length} gives {lanes} "
                                f"lanes, more than {layout.MAX_MIXED_LANES}")
    steps = layout.step_count(raw_size, header.lane_length)
    start = layout.NEURAL_PAYLOAD_HEADER_SIZE
    if steps > len(payload) - start:  # every stream takes at least one length byte
        raise VortexFormatError(f"{name} payload: {steps} streams cannot fit in "
                                f"{len(payload)} bytes")
    try:
        lengths, offset = spec.decode_leb128_array(payload, start, steps)
    except spec.Leb128Error as error:
        raise VortexFormatError(f"{name} payload stream lengths: {error}") from None
    if offset + sum(lengths) != len(payload):
        raise VortexFormatError(f"{name} payload: stream lengths add up to {sum(lengths)} "
                                f"bytes, {len(payload) - offset} follow the header")
    return header, lengths, offset


def frame_need(codec_id: int, payload: bytes, raw_size: int) -> limits.FrameNeed:
    """The memory decoding a frame needs (vortexfmt.limits), from its payload's header;
    raises VortexFormatError for a header a reader must reject, UnsupportedCodecError for
    an unknown codec. Parses nothing but headers: cheap whatever the payload declares."""
    size = len(payload)
    if codec_id == CodecId.CM:
        from vortexfmt.codecs.cm import parse_header
        from vortexfmt.spec.cm import FLAG_PRIMED

        header, _ = parse_header(payload, raw_size)
        primed = bool(header.flags & FLAG_PRIMED)
        return limits.FrameNeed(codec_id, limits.cm_frame_memory(
            raw_size, size, header.table_bits, header.lanes,
            numeric=header.transform is not None, primed=primed),
            f"cm tables of 2^{header.table_bits} buckets" + (
                f", {header.lanes} lanes" if header.lanes > 1 else "") + (
                ", priming bytes" if primed else ""))
    if codec_id in MODEL_CODEC_IDS:
        mixed = codec_id == CodecId.MIXED
        header, _, _ = neural_payload_header(payload, raw_size, mixed)
        lanes = limits.neural_lane_count(raw_size, header.lane_length)
        return limits.FrameNeed(codec_id, limits.neural_frame_memory(
            raw_size, size, header.lane_length, mixed),
            f"{lanes} lanes of {header.lane_length} bytes")
    if codec_id == CodecId.STORED:
        return limits.FrameNeed(codec_id, limits.stored_frame_memory(raw_size, size),
                                f"{raw_size} raw bytes")
    if codec_id == CodecId.ZSTD:
        return limits.FrameNeed(codec_id, limits.zstd_frame_memory(raw_size, size),
                                f"{raw_size} raw bytes and a window of up to 128 MiB")
    if codec_id == CodecId.LZMA:
        return limits.FrameNeed(codec_id, limits.lzma_frame_memory(raw_size, size),
                                f"{raw_size} raw bytes and their dictionary")
    raise UnsupportedCodecError(f"unsupported codec id {codec_id}")


def check_frame_memory(codec_id: int, payload: bytes, raw_size: int,
                       memory_limit: int) -> limits.FrameNeed:
    """frame_need(), raising FrameMemoryError when it exceeds `memory_limit`."""
    need = frame_need(codec_id, payload, raw_size)
    if need.memory > memory_limit:
        raise FrameMemoryError(
            f"{codec_name(codec_id)} frame needs {limits.format_bytes(need.memory)} to decode "
            f"({need.reason}), over the memory limit of {limits.format_bytes(memory_limit)} "
            "(--memory-limit raises it)", needed=need.memory, limit=memory_limit)
    return need


class FrameDecoders:
    """Decodes frames of one archive, finding its model only when a frame needs one.

    Every frame is first checked against `memory_limit` (bytes; None: the default,
    vortexfmt.limits.DEFAULT_MEMORY_LIMIT) from its payload's header, before its codec is
    loaded or allocates anything: FrameMemoryError when it needs more."""

    def __init__(self, model_id: bytes, model: object | None = None,
                 device: str | None = None, memory_limit: int | None = None,
                 archive_path: str | None = None) -> None:
        """`model`: what the caller offers for the archive's model id (a neural model, or
        a profile for primed cm frames); `archive_path`: the archive's file, whose
        directory is searched for its profile (vortexfmt.profiles.search)."""
        self.model_id = model_id
        self.model = model
        self.device = device
        self.archive_path = archive_path
        self.memory_limit = limits.check_memory_limit(memory_limit)
        self._model_codecs: dict[int, FrameCodec] = {}
        self._primed_codec: FrameCodec | None = None
        self._primed_lock = threading.Lock()
        self._stop = threading.Event()

    def cancel(self) -> None:
        """Stop the frames being decoded, on any thread, as soon as their codecs can (cm:
        within 64 KiB), with CodingCancelled; every later decode() raises it at once."""
        self._stop.set()

    @staticmethod
    def prepare(codec_id: int) -> bool:
        """Ready the decoder of `codec_id` on this thread (a C++ kernel is loaded here: its
        first build redirects the process's output), and say whether frames of it may
        then be decoded on other threads, several at once. False for the model codecs
        (torch has threads of its own) and for codecs that cannot run here: decoding
        raises their error on the thread that asks for the frame."""
        if codec_id in MODEL_CODEC_IDS:
            return False
        try:
            codec = model_free_codec(codec_id)
            prepare = getattr(codec, "prepare", None)
            if prepare is not None:
                prepare()
        except VortexError:
            return False
        return True

    def decode(self, codec_id: int, payload: bytes, raw_size: int) -> bytes:
        if self._stop.is_set():
            raise CodingCancelled("frame decoding cancelled")
        check_frame_memory(codec_id, payload, raw_size, self.memory_limit)
        if codec_id == CodecId.CM and _primed(payload, raw_size):
            codec = self._primed_cm()
            return codec.decode(payload, raw_size, stop=self._stop)
        if codec_id not in MODEL_CODEC_IDS:
            codec = model_free_codec(codec_id)
            if getattr(codec, "cancellable", False):
                return codec.decode(payload, raw_size, stop=self._stop)
            return codec.decode(payload, raw_size)
        if codec_id not in self._model_codecs:
            if self.model_id == bytes(len(self.model_id)):
                raise VortexFormatError(f"{codec_name(codec_id)} frame in an archive that "
                                        "records no model")
            self._model_codecs[codec_id] = model_codec(codec_id, self.model, self.device,
                                                       model_id=self.model_id)
        return self._model_codecs[codec_id].decode(payload, raw_size)

    def _primed_cm(self) -> FrameCodec:
        """The cm codec with the archive's profile, found once (on any thread)."""
        with self._primed_lock:
            if self._primed_codec is None:
                if self.model_id == bytes(len(self.model_id)):
                    raise VortexFormatError("primed cm frame in an archive that records no "
                                            "profile")
                from vortexfmt.codecs.cm import CmCodec
                from vortexfmt.profiles import search

                profile = search.for_archive(self.model_id, self.model, self.archive_path)
                self._primed_codec = CmCodec(profile=profile)
            return self._primed_codec


def _primed(payload: bytes, raw_size: int) -> bool:
    """Whether a cm payload is primed (VortexFormatError for a header to reject)."""
    from vortexfmt.codecs.cm import parse_header
    from vortexfmt.spec.cm import FLAG_PRIMED

    header, _ = parse_header(payload, raw_size)
    return bool(header.flags & FLAG_PRIMED)
