"""The model codecs: the byte model alone (codec id 2, "neural") and the byte model mixed
with the frame's adaptive context statistics (codec id 4, "mixed"), both over lanes with
torchac's arithmetic coder (`vortexfmt._stream_coder`, built at install)."""

from __future__ import annotations

import zstandard

from vortexfmt import limits
from vortexfmt.neural import lanes
from vortexfmt.neural.files import ModelFile
from vortexfmt.spec import CodecId

#: Under ``auto``, the mixed codec is tried when the model alone is estimated within this
#: factor of the best classical payload: mixing gained up to 29% over the model alone on
#: the corpus (most often 1-15%), and encoding costs about 14 times the estimate (a 4 MB
#: frame of hep_tau_pt.f32: 5.9 s against ~80 s).
MIXED_TRY_FACTOR = 1.25


class NeuralCodec:
    codec_id = CodecId.NEURAL
    name = "neural"
    mixed = False
    try_factor = 1.03  # auto encodes when the estimate is within this factor of the best

    def __init__(self, model: ModelFile, device: str | None = None,
                 lane_length: int | None = None) -> None:
        self.model = model
        self.model_id = model.model_id
        self.device = device
        self.lane_length = lane_length
        self.stats = lanes.EncodeStats()

    def _lane_length(self, raw: bytes, classical_size: int | None = None) -> int:
        """The lane length for `raw`, sized from what the best classical codec made of it
        (or zstd -9 when no size is given), so that each step's stream is long enough."""
        if self.lane_length:
            length = self.lane_length
        else:
            if classical_size is None:
                classical_size = len(zstandard.ZstdCompressor(level=9).compress(raw))
            length = lanes.default_lane_length(len(raw), self.mixed,
                                               8 * classical_size / max(1, len(raw)))
        # what a writer produces must decode within every reader's default memory limit
        fitting = limits.model_lane_length_within(len(raw), length, self.mixed)
        if fitting is None or (self.lane_length and fitting != length):
            raise ValueError(
                f"a {self.name} frame of {len(raw)} bytes in lanes of {length} bytes would need "
                f"more than {limits.format_bytes(limits.DEFAULT_MEMORY_LIMIT)} to decode; "
                f"frames of at most {limits.largest_model_frame(self.mixed)} bytes fit")
        return fitting

    def encode(self, raw: bytes) -> bytes:
        return lanes.encode_frame(self.model.runtime(self.device), raw, self._lane_length(raw),
                                  self.stats, mixed=self.mixed)

    def encode_if_smaller(self, raw: bytes, size: int) -> bytes | None:
        """The payload if it may be smaller than `size` bytes, else None.

        Estimates the model's payload on a sample of lanes first and encodes only when the
        estimate comes within `try_factor` of `size`: encoding costs far more than the
        estimate."""
        runtime = self.model.runtime(self.device)
        lane_length = self._lane_length(raw, size)
        analysis = lanes.analyse_frame(raw, lane_length)
        estimate, ideal_bits = lanes.estimate_payload_size(runtime, raw, analysis, lane_length)
        if estimate > self.try_factor * size:
            self.stats.estimated_bits += ideal_bits
            self.stats.estimated_raw_bytes += len(raw)
            return None
        return lanes.encode_frame(runtime, raw, lane_length, self.stats, analysis.stride,
                                  mixed=self.mixed)

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        return lanes.decode_frame(self.model.runtime(self.device), payload, raw_size,
                                  mixed=self.mixed)


class MixedCodec(NeuralCodec):
    codec_id = CodecId.MIXED
    name = "mixed"
    mixed = True
    try_factor = MIXED_TRY_FACTOR


#: The model codecs by codec id.
MODEL_CODECS = {codec.codec_id: codec for codec in (NeuralCodec, MixedCodec)}
