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

    def decode(self, payload: bytes, raw_size: int) -> bytes:
        return lanes.decode_frame(self.model.runtime(self.device), payload, raw_size)
