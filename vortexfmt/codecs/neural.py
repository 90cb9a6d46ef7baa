"""The neural frame codec (codec id 2): the byte model plus torchac, over lanes."""

from __future__ import annotations

from vortexfmt.coding import lanes
from vortexfmt.model.files import ModelFile
from vortexfmt.spec import CodecId


class NeuralCodec:
    codec_id = CodecId.NEURAL
    name = "neural"

    def __init__(self, model: ModelFile, device: str | None = None,
                 lane_length: int = lanes.DEFAULT_LANE_LENGTH) -> None:
        self.model = model
        self.model_id = model.model_id
        self.device = device
        self.lane_length = lane_length
        self.stats = lanes.EncodeStats()

    def encode(self, raw: bytes) -> bytes:
        return lanes.encode_frame(self.model.runtime(self.device), raw, self.lane_length,
                                  self.stats)

    def encode_if_smaller(self, raw: bytes, size: int) -> bytes | None:
        """The payload if it may be smaller than `size` bytes, else None.

        Estimates the payload on a sample of lanes first and encodes only when the estimate
        comes within 3% of `size` or below: encoding costs ten times the estimate."""
        runtime = self.model.runtime(self.device)
        analysis = lanes.analyse_frame(raw, self.lane_length)
        estimate, ideal_bits = lanes.estimate_payload_size(runtime, raw, analysis,
                                                           self.lane_length)
        if estimate > 1.03 * size:
            self.stats.estimated_bits += ideal_bits
            self.stats.estimated_raw_bytes += len(raw)
            return None
        return lanes.encode_frame(runtime, raw, self.lane_length, self.stats, analysis)

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        return lanes.decode_frame(self.model.runtime(self.device), payload, raw_size)
