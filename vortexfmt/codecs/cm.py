"""The context-mixing codec (codec id 5, "cm"; FORMAT.md "CM payload").

Each bit of the frame is predicted by context models that learn as the frame is decoded
(hashed byte contexts, a match model, record contexts) mixed by online-learnt weights, and
arithmetic-coded with torchac's coder; `csrc/cm/` is the whole model and coder, compiled at install,
in integer arithmetic. It needs no trained model, so archives that use it record none.

Before the model codes a frame, the encoder may rewrite it with a numeric transform
(vortexfmt.codecs.numeric: records of fields, differenced, zigzag-mapped, most significant
byte first), chosen by measuring (vortexfmt.codecs.numeric_search) and recorded in the
payload; the decoder undoes it. The frame as it is is always one of the candidates.

With a profile (vortexfmt.profiles), frames are *primed*: the model first learns the
profile's priming bytes, so that a small frame starts warm; such a payload is flagged
(FLAG_PRIMED) and the archive records the profile's id, which a reader needs to decode it.
A primed frame gets no numeric transform.
"""

from __future__ import annotations

import io
import threading

from construct import ConstructError, StreamError

from vortexfmt import native, spec
from vortexfmt.codecs import numeric
from vortexfmt.codecs.record_layout import RecordLayout, parse_layout
from vortexfmt.codecs.stats import EncodeStats
from vortexfmt.errors import CodingCancelled, ModelMismatchError, VortexFormatError
from vortexfmt.spec import CodecId
from vortexfmt.spec import cm as layout

#: Context tables: 2^table_bits buckets of 64 bytes each, for each of the model's eighteen
#: contexts (and two match tables of 2^(table_bits + 4) positions). A frame gets about one
#: bucket per 8 raw bytes (a context seen again reuses its buckets) within these limits:
#: frames of 1 MiB and more take the largest, 2^18 x 64 B x 18 = 288 MiB (and 32 MiB of
#: match tables). Measured on whole corpus files (one frame each): 2^20 buckets gained
#: 0.07% for four times the memory; on the files of 0.3-0.6 MB, 2^16 buckets instead of
#: 2^18 cost 0.05% at most and run faster (fewer lookups miss the caches, fewer pages to
#: clear).
DEFAULT_MAX_TABLE_BITS = 18
MIN_TABLE_BITS = layout.MIN_TABLE_BITS
#: The record length the encoder looks for is at least this: the model's column contexts
#: already see 2, 4 and 8 bytes back (measured on 1 MB of the corpus: -1.5% on
#: net_http.pcap, -1.2% on hep_hzz_events.rec, +0.3% at most elsewhere).
SHORTEST_STRIDE = 9


def table_bits_for(raw_size: int, max_bits: int = DEFAULT_MAX_TABLE_BITS) -> int:
    """The table size, as log2 of buckets, a writer uses for a frame of `raw_size` bytes."""
    return max(MIN_TABLE_BITS, min(max_bits, (raw_size // 8).bit_length()))


def _kernel():
    return native.cm_kernel()  # KernelUnavailableError in a source tree that was not built


class CmCodec:
    codec_id = CodecId.CM
    name = "cm"
    #: `auto` tries cm on frames of at least this many bytes: below, setting up its tables
    #: (about a millisecond) costs more than the few bytes it could save over lzma.
    auto_min_raw_size = 256
    #: Frames may be encoded and decoded on several threads at once (the kernel keeps no
    #: state between calls and lets go of the GIL).
    thread_safe = True
    #: encode() and decode() take `stop`, a threading.Event: once it is set, a frame being
    #: coded stops within 64 KiB (about a fifth of a second) with CodingCancelled. On the
    #: main thread, a frame also stops for Ctrl-C (the KeyboardInterrupt is raised).
    cancellable = True
    #: encode() takes `threads=2`, to encode one frame on two threads (the same payload).
    encodes_on_two_threads = True

    @staticmethod
    def prepare() -> None:
        """Load the kernel; raises KernelUnavailableError if it was not built."""
        _kernel()

    def __init__(self, lanes: int = 1, max_table_bits: int = DEFAULT_MAX_TABLE_BITS,
                 layout: str | RecordLayout | None = None, numeric: bool = True,
                 profile=None) -> None:
        """`layout` (a layout string, vortexfmt.codecs.record_layout, or a parsed one) says
        what the frames' records are; without it the encoder guesses, on frames of
        numeric.AUTO_MIN_RAW_SIZE bytes or more. Either way a numeric transform is
        used only where it measures smaller than coding the bytes as they are.
        `numeric=False` never transforms (every payload is then a format 1.2 one).
        Raises LayoutError (a ValueError) for a layout string that cannot be read.

        `profile` (a vortexfmt.profiles Profile): encode primed frames with its priming
        bytes, table size and stride (one lane each, no numeric transform: the priming
        bytes are the format's bytes as they are), and decode primed frames; the codec's
        `model_id` is then the profile's id."""
        if lanes < 1:
            raise ValueError("lanes must be at least 1")
        if profile is not None and lanes != 1:
            raise ValueError("a primed frame has one lane")
        self.lanes = lanes
        self.max_table_bits = max_table_bits
        if profile is not None and layout is not None:
            raise ValueError("a primed frame has no numeric transform: give a layout or a "
                             "profile, not both")
        self.layout = parse_layout(layout) if isinstance(layout, str) else layout
        if self.layout is not None and not numeric:
            raise ValueError("a layout needs numeric transforms (numeric=True)")
        self.numeric = numeric and profile is None
        self.profile = profile
        self.model_id = profile.profile_id if profile is not None else None
        self.stats = EncodeStats()
        self._stats_lock = threading.Lock()
        # the profile's priming bytes learnt once, for one (table_bits, stride): each primed
        # frame starts from a copy (the same payload as learning them again, 2-15 times faster)
        self._primed_model = None
        self._primed_key: tuple[int, int] | None = None
        self._primed_lock = threading.Lock()

    def may_transform(self, frame_size: int | None) -> bool:
        """Whether frames of up to `frame_size` bytes (None: any) may get a numeric
        transform, which needs format 1.3 (FrameEncoder records it in the header)."""
        return self.numeric and (self.layout is not None or frame_size is None
                                 or frame_size >= numeric.AUTO_MIN_RAW_SIZE)

    def encode(self, raw: bytes, stop: threading.Event | None = None,
               threads: int = 1) -> bytes:
        """The payload of a frame: its bytes as they are, or rewritten by the numeric
        transform that measured smaller (numeric_search). `threads=2` runs the model's
        context stage on a thread of its own while this one mixes and codes: the same
        payload, in about two thirds of the time where a core is free (decoding has no
        such choice: each bit is needed before the next one's contexts)."""
        from vortexfmt.codecs.numeric_search import choose_transform  # numpy: encoders only
        from vortexfmt.codecs.stride import choose_stride
        raw = bytes(raw)
        stride = choose_stride(raw, shortest=SHORTEST_STRIDE)
        transform = None
        if self.numeric and _fits_default_memory_limit(len(raw), self.lanes,
                                                       self.max_table_bits):
            transform = choose_transform(raw, self.layout, self._measurer(stop), stride)
        return self.encode_with(raw, transform, stop, threads, stride)

    def encode_with(self, raw: bytes, transform: numeric.Transform | None,
                    stop: threading.Event | None = None, threads: int = 1,
                    stride: int | None = None) -> bytes:
        """The payload of a frame rewritten by `transform` (None: coded as it is), without
        measuring; `stride`: the identity's record length if already known."""
        from vortexfmt.codecs.numeric_search import stride_for  # numpy: encoders only
        from vortexfmt.codecs.stride import choose_stride
        raw = bytes(raw)
        if transform is not None:
            raw = numeric.apply(raw, transform)
            stride = stride_for(transform)
        elif stride is None:
            stride = choose_stride(raw, shortest=SHORTEST_STRIDE)
        lanes = max(1, min(self.lanes, len(raw)))
        if self.profile is not None and transform is None and \
                _primed_fits_default_memory_limit(len(raw), self.profile.settings.table_bits):
            # primed: the profile's settings, within the format's
            settings = self.profile.settings
            table_bits = min(settings.table_bits, layout.max_table_bits(len(raw)))
            stride, flags = settings.stride, layout.FLAG_PRIMED
        else:  # cold: no profile, or a frame too large to prime (coded as without one)
            if self.profile is not None and transform is not None:
                raise ValueError("a primed frame has no numeric transform")
            table_bits = table_bits_for(len(raw), self.max_table_bits)
            flags = layout.NUMERIC_FLAG if transform is not None else 0
        kernel = _kernel()
        try:
            primed_model = self._learnt_priming(table_bits, stride, stop) \
                if flags & layout.FLAG_PRIMED else None
            streams, ideal_bits = kernel.encode(raw, lanes, table_bits, stride, True, stop,
                                                threads, primed_model=primed_model)
        except kernel.Cancelled:
            raise CodingCancelled("cm frame encoding cancelled") from None
        header = layout.CmPayloadHeader.build({
            "revision": layout.CM_REVISION, "flags": flags,
            "table_bits": table_bits, "stride": stride,
            "numeric": numeric.to_descriptor(transform) if transform is not None else None,
            "lanes": lanes})
        header += layout.StreamLengths.build({"lengths": [len(s) for s in streams]},
                                             lanes=lanes)
        with self._stats_lock:
            self.stats.ideal_bits += ideal_bits
            self.stats.coded_bytes += sum(len(s) for s in streams)
            self.stats.overhead_bytes += len(header)
            self.stats.coded_raw_bytes += len(raw)
        return header + b"".join(streams)

    def _learnt_priming(self, table_bits: int, stride: int, stop: threading.Event | None):
        """The kernel's model after learning the profile's priming bytes with these settings:
        kept for the next frame of the same settings (one at a time, so that an archive
        whose frames change settings costs the memory of one model more, not one per
        setting; vortexfmt.limits counts it). Raises the kernel's Cancelled."""
        key = (table_bits, stride)
        with self._primed_lock:  # the other threads wait for the model they would learn too
            if self._primed_key != key:
                self._primed_model = self._primed_key = None  # let go of the old one first
                self._primed_model = _kernel().learn_primed_model(self.profile.prime,
                                                                  table_bits, stride, stop)
                self._primed_key = key
            return self._primed_model

    def _measurer(self, stop: threading.Event | None):
        """measure(data, stride): bytes of `data` coded in one lane, the transform search's
        yardstick (an integer, computed the same on every machine)."""
        kernel = _kernel()

        def measure(data: bytes, stride: int) -> int:
            try:
                streams, _ = kernel.encode(data, 1, table_bits_for(len(data),
                                                                   self.max_table_bits),
                                           stride, False, stop, 1)
            except kernel.Cancelled:
                raise CodingCancelled("cm frame encoding cancelled") from None
            return sum(len(stream) for stream in streams)
        return measure

    def decode(self, payload: bytes, raw_size: int,
               stop: threading.Event | None = None) -> bytes:
        header, streams = parse_payload(payload, raw_size)
        primed = bool(header.flags & layout.FLAG_PRIMED)
        if primed and self.profile is None:
            raise ModelMismatchError("primed cm frame, and no profile to decode it with")
        kernel = _kernel()
        try:
            primed_model = self._learnt_priming(header.table_bits, header.stride, stop) \
                if primed else None
            data = kernel.decode(bytes(payload), streams, raw_size, header.table_bits,
                                 header.stride, stop, primed_model=primed_model)
        except kernel.Cancelled:
            raise CodingCancelled("cm frame decoding cancelled") from None
        except kernel.StreamOverrun as error:
            raise VortexFormatError(f"cm payload: {error}") from None
        return data if header.transform is None else numeric.invert(data, header.transform)


def _fits_default_memory_limit(raw_size: int, lanes: int, max_table_bits: int) -> bool:
    """Whether a frame of `raw_size` bytes with a numeric transform decodes within the
    readers' default memory limit (FORMAT.md "Memory"): the writer transforms no frame that
    a reader would refuse by default (frames above about 85 MiB)."""
    from vortexfmt import limits

    lanes = max(1, min(lanes, raw_size))
    return limits.cm_frame_memory(raw_size, spec.max_payload_size(raw_size),
                                  table_bits_for(raw_size, max_table_bits), lanes,
                                  numeric=True) <= limits.DEFAULT_MEMORY_LIMIT


def _primed_fits_default_memory_limit(raw_size: int, profile_table_bits: int) -> bool:
    """Whether a primed frame of `raw_size` bytes decodes within the readers' default
    memory limit (FORMAT.md "Memory"; the learnt model counts twice): the writer primes no
    frame a reader would refuse by default (above about 170 MiB with tables of 2^18
    buckets), and codes those cold."""
    from vortexfmt import limits

    table_bits = min(profile_table_bits, layout.max_table_bits(raw_size))
    return limits.cm_frame_memory(raw_size, spec.max_payload_size(raw_size), table_bits, 1,
                                  primed=True) <= limits.DEFAULT_MEMORY_LIMIT


def parse_header(payload: bytes, raw_size: int):
    """(header, its size) of a cm payload: the fixed fields, the numeric descriptor and
    `lanes`, checked, without the stream lengths (what a reader needs to know the frame's
    memory, vortexfmt.limits); `header.transform` is the numeric transform to undo, or
    None. Raises VortexFormatError for anything FORMAT.md tells a reader to reject."""
    stream = io.BytesIO(payload)
    try:
        header = layout.CmPayloadHeader.parse_stream(stream)
    except spec.Leb128Error as error:
        raise VortexFormatError(f"cm payload lanes: {str(error).splitlines()[-1]}") from None
    except (ConstructError, StreamError):
        raise VortexFormatError("cm payload header is truncated") from None
    if header.revision != layout.CM_REVISION:
        raise VortexFormatError(f"cm payload of revision {header.revision}; this reader "
                                f"knows revision {layout.CM_REVISION}")
    if header.flags & ~layout.KNOWN_FLAGS:
        raise VortexFormatError(f"cm payload has unknown flags {header.flags:#04x}")
    if header.flags & layout.FLAG_PRIMED and header.flags & layout.NUMERIC_FLAG:
        raise VortexFormatError("cm payload is both primed and numeric; a primed frame has "
                                "no numeric transform")
    header.transform = None if header.numeric is None else \
        numeric.from_descriptor(header.numeric)
    largest = layout.max_table_bits(raw_size)
    if not layout.MIN_TABLE_BITS <= header.table_bits <= largest:
        raise VortexFormatError(f"cm payload table_bits {header.table_bits} is outside "
                                f"{layout.MIN_TABLE_BITS}..{largest} (for {raw_size} bytes)")
    if header.stride > layout.MAX_STRIDE:
        raise VortexFormatError(f"cm payload stride {header.stride} exceeds "
                                f"{layout.MAX_STRIDE}")
    if not 1 <= header.lanes <= max(1, raw_size):
        raise VortexFormatError(f"cm payload has {header.lanes} lanes for {raw_size} "
                                "bytes")
    if header.flags & layout.FLAG_PRIMED and header.lanes != 1:
        raise VortexFormatError(f"primed cm payload has {header.lanes} lanes; a primed "
                                "frame has one")
    size = stream.tell()
    if header.lanes > len(payload) - size:  # every length takes at least one byte
        raise VortexFormatError(f"cm payload header is truncated ({header.lanes} stream "
                                f"lengths in {len(payload) - size} bytes)")
    return header, size


def parse_payload(payload: bytes, raw_size: int):
    """(header, [(offset, length) of each stream]) of a cm payload; raises
    VortexFormatError for anything FORMAT.md tells a reader to reject."""
    header, start = parse_header(payload, raw_size)
    try:
        # LEB128 values may be padded: offsets count the bytes read
        lengths, size = spec.decode_leb128_array(payload, start, header.lanes)
    except spec.Leb128Error as error:
        if "truncated" in str(error):
            raise VortexFormatError("cm payload header is truncated") from None
        raise VortexFormatError(f"cm payload stream lengths: {error}") from None
    if size + sum(lengths) != len(payload):
        raise VortexFormatError(f"cm stream lengths add up to {size + sum(lengths)} bytes, "
                                f"the payload holds {len(payload)}")
    streams, offset = [], size
    for length in lengths:
        streams.append((offset, length))
        offset += length
    return header, streams
