"""Frame coding with the byte model and torchac's arithmetic coder (FORMAT.md "Neural
payload"), which `vortexfmt._stream_coder` reproduces bit for bit without torchac.

A frame is cut into lanes (`features.to_lanes`); position t of every lane is one coded
stream, because the coder codes whole arrays (as torchac does) and the decoder only learns
position t of all lanes after decoding stream t. Encoder and decoder both run the model one
position at a time with `StepRunner` (the encoder on features it computes up front), which
the tests hold equal to the full-sequence `IntegerByteModel.run` used in training and
evaluation.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import torch

from vortexfmt import native
from vortexfmt.codecs.stats import EncodeStats
from vortexfmt.codecs.stride import choose_stride
from vortexfmt.errors import VortexFormatError
from vortexfmt.neural import intmath
from vortexfmt.neural.features import (
    FrameContext,
    StepFeatures,
    frame_features,
    lane_count,
    lane_lengths,
    to_lanes,
)
from vortexfmt.neural.integer import IntegerByteModel, StepRunner
from vortexfmt.neural.mixing import ContextMixer
from vortexfmt.spec import neural as layout

DEFAULT_LANE_LENGTH = 512  # lane length of training; writers use default_lane_length
LANES_PER_STEP = 2048
MIN_LANE_LENGTH = 512
MAX_LANE_LENGTH = 8192
SHORTEST_LANE_LENGTH = 128
STREAM_TARGET_BITS = 8 * 224  # ~2 bytes of flush and length on 224 coded bytes: < 1%
SAMPLE_EVERY = 16  # lanes sampled by estimate_payload_size


@dataclass
class FrameAnalysis:
    """What the encoder computes before coding: the record stride and the features."""

    stride: int
    features: tuple[torch.Tensor, ...]


def analyse_frame(raw: bytes, lane_length: int) -> FrameAnalysis:
    stride = choose_stride(raw)
    return FrameAnalysis(stride, frame_features(raw, lane_length, stride))


def estimate_payload_size(model: IntegerByteModel, raw: bytes, analysis: FrameAnalysis,
                          lane_length: int = DEFAULT_LANE_LENGTH,
                          sample_every: int = SAMPLE_EVERY) -> tuple[float, float]:
    """(estimated payload bytes, estimated ideal bits) of `raw`, from the model's exact
    code length on every `sample_every`-th lane: a tenth of the cost of encoding, used by
    `auto` to skip a model codec on frames where a classical codec is clearly better."""
    if not raw:
        return layout.NEURAL_PAYLOAD_HEADER_SIZE, 0.0
    lengths = lane_lengths(len(raw), lane_length)
    picked = torch.arange(0, len(lengths), sample_every)
    features = [f[picked] for f in analysis.features]
    symbols = torch.zeros(len(lengths), lane_length, dtype=torch.int64)
    symbols.view(-1)[:len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    symbols = symbols[picked]
    valid = torch.arange(lane_length).unsqueeze(0) < lengths[picked].unsqueeze(1)
    runner = StepRunner(model)
    state = runner.new_state(len(picked), lane_length)
    steps = layout.step_count(len(raw), lane_length)
    bits = torch.zeros(len(picked), lane_length, dtype=torch.float64)
    for t in range(steps):
        cdf = runner.step(state, *(f[:, t] for f in features)).cpu()
        bits[:, t] = intmath.code_length_bits(cdf, symbols[:, t])
    bits = bits[valid].sum()
    ideal = float(bits) * len(raw) / max(1, int(valid.sum()))
    overhead = steps * 3 + layout.NEURAL_PAYLOAD_HEADER_SIZE  # ~1 flush + ~2 length bytes
    return ideal / 8 + overhead, ideal


class _ModelPredictor:
    """CDFs of the byte model alone (codec 2, "neural")."""

    def __init__(self, model: IntegerByteModel, context: FrameContext) -> None:
        self.runner = StepRunner(model)
        self.state = self.runner.new_state(context.lanes, context.lane_length)

    def cdf(self, t: int, step: StepFeatures) -> torch.Tensor:
        return self.runner.step(self.state, step.previous, step.match, step.match_length,
                                step.record).cpu()

    def learn(self, symbols: torch.Tensor, active: torch.Tensor) -> None:
        pass


class _MixedPredictor(_ModelPredictor):
    """The byte model mixed with the frame's adaptive statistics (codec 4, "mixed")."""

    def __init__(self, model: IntegerByteModel, context: FrameContext) -> None:
        super().__init__(model, context)
        self.mixer = ContextMixer(context, model.config.out_resolution, model.device)

    def cdf(self, t: int, step: StepFeatures) -> torch.Tensor:
        logits = self.runner.step_logits(self.state, step.previous, step.match,
                                         step.match_length, step.record)
        return self.mixer.cdf(t, logits, step.match, step.run_length, step.record).cpu()

    def learn(self, symbols: torch.Tensor, active: torch.Tensor) -> None:
        self.mixer.update(symbols, active)


def default_lane_length(raw_size: int, mixed: bool = False,
                        bits_per_byte: float | None = None) -> int:
    """Lane length for a frame of `raw_size` bytes.

    Long lanes give the model and the frame's statistics more known context (bits per byte
    fall steeply along a lane); many lanes make each step's stream long enough that its
    flush and length bytes (about 2) cost little. So: LANES_PER_STEP lanes, each
    MIN_LANE_LENGTH..MAX_LANE_LENGTH long (a 4 MiB frame: 2048 lanes of 2048 bytes); where
    `bits_per_byte` (an estimate of what the frame compresses to) says a step's stream
    would carry fewer than STREAM_TARGET_BITS, more and shorter lanes (down to
    SHORTEST_LANE_LENGTH); and for a mixed frame never more lanes than it may have."""
    length = min(MAX_LANE_LENGTH, max(MIN_LANE_LENGTH, -(-raw_size // LANES_PER_STEP)))
    if bits_per_byte is not None and bits_per_byte > 0:
        lanes = math.ceil(STREAM_TARGET_BITS / bits_per_byte)
        length = min(length, max(SHORTEST_LANE_LENGTH, -(-raw_size // lanes)))
    if mixed:
        length = max(length, -(-raw_size // layout.MAX_MIXED_LANES))
    return length


def encode_frame(model: IntegerByteModel, raw: bytes, lane_length: int = DEFAULT_LANE_LENGTH,
                 stats: EncodeStats | None = None,
                 stride: int | None = None, mixed: bool = False) -> bytes:
    """The neural payload of `raw` (with `mixed`, the mixed payload, codec 4).

    The encoder runs the decoder's own steps, knowing each step's bytes in advance; `stride`
    is the record stride (`choose_stride` when not given)."""
    coder = native.stream_coder()
    stride = choose_stride(raw) if stride is None else stride
    if mixed and lane_count(len(raw), lane_length) > layout.MAX_MIXED_LANES:
        raise ValueError(f"lane length {lane_length} gives more than "
                         f"{layout.MAX_MIXED_LANES} lanes")
    context = FrameContext(len(raw), lane_length, stride)
    lengths = context.lengths
    symbols = to_lanes(raw, lane_length)
    steps = layout.step_count(len(raw), lane_length)
    predictor = (_MixedPredictor if mixed else _ModelPredictor)(model, context)
    streams: list[bytes] = []
    for t in range(steps):
        cdf = predictor.cdf(t, context.features(t))
        active = lengths > t
        coded = symbols[:, t]
        if not bool(active.all()):
            cdf, coded = cdf[active], coded[active]
        streams.append(coder.encode(intmath.to_torchac(cdf).numpy(),
                                    coded.to(torch.int16).numpy()))
        if stats is not None:
            stats.ideal_bits += float(intmath.code_length_bits(cdf, coded).sum())
        predictor.learn(symbols[:, t], active)
        context.advance(t, symbols[:, t])
    header = layout.NeuralPayloadHeader.build({"lane_length": lane_length, "stride": stride})
    header += layout.StreamLengths.build({"lengths": [len(s) for s in streams]}, steps=steps)
    if stats is not None:
        stats.coded_bytes += sum(len(s) for s in streams)
        stats.overhead_bytes += len(header)
        stats.coded_raw_bytes += len(raw)
    return header + b"".join(streams)


def decode_frame(model: IntegerByteModel, payload: bytes, raw_size: int,
                 mixed: bool = False) -> bytes:
    """Inverse of encode_frame; raises VortexFormatError on a malformed payload."""
    coder = native.stream_coder()
    source = io.BytesIO(payload)
    try:
        header = layout.NeuralPayloadHeader.parse_stream(source)
        if not 1 <= header.lane_length <= layout.MAX_LANE_LENGTH or \
                header.stride > layout.MAX_STRIDE:
            raise VortexFormatError(f"bad lane length {header.lane_length} or stride "
                                    f"{header.stride}")
        if mixed and lane_count(raw_size, header.lane_length) > layout.MAX_MIXED_LANES:
            raise VortexFormatError(f"lane length {header.lane_length} gives more than "
                                    f"{layout.MAX_MIXED_LANES} lanes")
        steps = layout.step_count(raw_size, header.lane_length)
        if steps > len(payload):  # every stream takes at least one length byte
            raise VortexFormatError(f"{steps} streams cannot fit in {len(payload)} bytes")
        lengths = layout.StreamLengths.parse_stream(source, steps=steps).lengths
    except VortexFormatError:
        raise
    except Exception as error:  # construct's StreamError and friends: a truncated header
        raise VortexFormatError(f"neural payload header is malformed: {error}") from None
    start = source.tell()
    if start + sum(lengths) != len(payload):
        raise VortexFormatError(f"stream lengths add up to {sum(lengths)} bytes, "
                                f"{len(payload) - start} follow the header")
    context = FrameContext(raw_size, header.lane_length, header.stride)
    lane_sizes = context.lengths
    predictor = (_MixedPredictor if mixed else _ModelPredictor)(model, context)
    offset = start
    for t in range(steps):
        cdf = predictor.cdf(t, context.features(t))
        active = lane_sizes > t
        stream = payload[offset:offset + lengths[t]]
        offset += lengths[t]
        if t < int(lane_sizes[-1]):  # every lane is this long
            symbols = torch.from_numpy(coder.decode(intmath.to_torchac(cdf).numpy(), stream))
        else:
            symbols = torch.zeros(context.lanes, dtype=torch.int16)
            symbols[active] = torch.from_numpy(
                coder.decode(intmath.to_torchac(cdf[active]).numpy(), stream))
        symbols = symbols.to(torch.int64) & 0xFF
        predictor.learn(symbols, active)
        context.advance(t, symbols)
    return bytes(context.data.view(-1)[:raw_size].to(torch.uint8).numpy()) if raw_size else b""


def ideal_bits_per_byte(stats: EncodeStats, raw_size: int) -> float:
    return stats.ideal_bits / raw_size if raw_size else math.nan
