"""Frame coding with the byte model and torchac (FORMAT.md "Neural payload").

A frame is cut into lanes (`features.to_lanes`); position t of every lane is one torchac
stream, because torchac codes whole arrays and the decoder only learns position t of all
lanes after decoding stream t. Encoder and decoder both run the model one position at a time
with `StepRunner` (the encoder on features it computes up front), which the tests hold equal
to the full-sequence `IntegerByteModel.run` used in training and evaluation.
"""

from __future__ import annotations

import io
import math
import os
import sys
import tempfile
from dataclasses import dataclass

import torch

from vortexfmt.coding.features import FrameContext, choose_stride, frame_features, lane_lengths
from vortexfmt.errors import VortexFormatError
from vortexfmt.model import intmath
from vortexfmt.model.integer import IntegerByteModel, StepRunner
from vortexfmt.spec import neural as layout

DEFAULT_LANE_LENGTH = 512
SAMPLE_EVERY = 16  # lanes sampled by estimate_payload_size


def _torchac():
    """Import torchac, which builds its C++ backend with ninja on first import (about 20 s).

    Its build log goes to file descriptor 1, where it would corrupt `vortex unpack -o -`:
    the import runs with descriptors 1 and 2 captured, and the log is shown only if the
    import fails."""
    if "torchac" in sys.modules:
        return sys.modules["torchac"]
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            import torchac
        except BaseException:
            os.dup2(saved[1], 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)
    return torchac


@dataclass
class EncodeStats:
    """What encoding a frame cost, against the model's ideal code length."""

    ideal_bits: float = 0.0
    coded_bytes: int = 0
    overhead_bytes: int = 0  # payload header and stream lengths
    coded_raw_bytes: int = 0  # raw bytes of the frames fully encoded
    estimated_bits: float = 0.0  # ideal bits estimated on sampled lanes (frames skipped)
    estimated_raw_bytes: int = 0


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
    `auto` to skip the neural codec on frames where a classical codec is clearly better."""
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


def encode_frame(model: IntegerByteModel, raw: bytes, lane_length: int = DEFAULT_LANE_LENGTH,
                 stats: EncodeStats | None = None,
                 analysis: FrameAnalysis | None = None) -> bytes:
    """The neural payload of `raw`."""
    torchac = _torchac()
    analysis = analysis or analyse_frame(raw, lane_length)
    stride, features = analysis.stride, analysis.features
    lengths = lane_lengths(len(raw), lane_length)
    lanes = len(lengths)
    symbols = torch.zeros(lanes, lane_length, dtype=torch.int16)
    if raw:
        symbols.view(-1)[:len(raw)] = torch.frombuffer(bytearray(raw), dtype=torch.uint8)
    steps = layout.step_count(len(raw), lane_length)
    # The encoder runs the decoder's own step function, on features it knows up front.
    runner = StepRunner(model)
    state = runner.new_state(lanes, lane_length)
    streams: list[bytes] = []
    for t in range(steps):
        cdf = runner.step(state, *(f[:, t] for f in features)).cpu()
        active = lengths > t
        if not bool(active.all()):
            cdf = cdf[active]
        coded = symbols[active, t]
        streams.append(torchac.encode_int16_normalized_cdf(intmath.to_torchac(cdf), coded))
        if stats is not None:
            stats.ideal_bits += float(intmath.code_length_bits(cdf, coded).sum())
    header = layout.NeuralPayloadHeader.build({"lane_length": lane_length, "stride": stride})
    header += layout.StreamLengths.build({"lengths": [len(s) for s in streams]}, steps=steps)
    if stats is not None:
        stats.coded_bytes += sum(len(s) for s in streams)
        stats.overhead_bytes += len(header)
        stats.coded_raw_bytes += len(raw)
    return header + b"".join(streams)


def decode_frame(model: IntegerByteModel, payload: bytes, raw_size: int) -> bytes:
    """Inverse of encode_frame; raises VortexFormatError on a malformed payload."""
    torchac = _torchac()
    source = io.BytesIO(payload)
    try:
        header = layout.NeuralPayloadHeader.parse_stream(source)
        if not 1 <= header.lane_length <= layout.MAX_LANE_LENGTH or \
                header.stride > layout.MAX_STRIDE:
            raise VortexFormatError(f"bad lane length {header.lane_length} or stride "
                                    f"{header.stride}")
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
    runner = StepRunner(model)
    state = runner.new_state(context.lanes, header.lane_length)
    offset = start
    for t in range(steps):
        step = context.features(t)
        cdf = runner.step(state, step.previous, step.match, step.match_length,
                          step.record).cpu()
        active = lane_sizes > t
        stream = payload[offset:offset + lengths[t]]
        offset += lengths[t]
        if t < int(lane_sizes[-1]):  # every lane is this long
            symbols = torchac.decode_int16_normalized_cdf(intmath.to_torchac(cdf), stream)
        else:
            symbols = torch.zeros(context.lanes, dtype=torch.int16)
            symbols[active] = torchac.decode_int16_normalized_cdf(
                intmath.to_torchac(cdf[active]), stream)
        context.advance(t, symbols.to(torch.int64) & 0xFF)
    return bytes(context.data.view(-1)[:raw_size].to(torch.uint8).numpy()) if raw_size else b""


def ideal_bits_per_byte(stats: EncodeStats, raw_size: int) -> float:
    return stats.ideal_bits / raw_size if raw_size else math.nan
