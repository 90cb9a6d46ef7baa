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


def encode_frame(model: IntegerByteModel, raw: bytes, lane_length: int = DEFAULT_LANE_LENGTH,
                 stats: EncodeStats | None = None) -> bytes:
    """The neural payload of `raw`."""
    torchac = _torchac()
    stride = choose_stride(raw)
    features = frame_features(raw, lane_length, stride)
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
            index = coded.to(torch.int64).unsqueeze(1)
            freq = cdf.gather(1, index + 1) - cdf.gather(1, index)
            stats.ideal_bits += float((intmath.CDF_PRECISION
                                       - torch.log2(freq.to(torch.float64))).sum())
    header = layout.NeuralPayloadHeader.build({"lane_length": lane_length, "stride": stride})
    header += layout.StreamLengths.build({"lengths": [len(s) for s in streams]}, steps=steps)
    if stats is not None:
        stats.coded_bytes += sum(len(s) for s in streams)
        stats.overhead_bytes += len(header)
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
