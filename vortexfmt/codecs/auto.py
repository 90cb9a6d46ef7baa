"""The writer's codec policy: `auto` keeps, per frame, the smallest payload of the candidate
codecs (stored, zstd, lzma and cm), leaving lzma and zstd out where cm is a tenth or more
below zstd -3 (CM_LEAD); any one codec may be asked for instead. FrameEncoder applies it
to each frame."""

from __future__ import annotations

import os
import threading

from vortexfmt.codecs import (
    CODEC_IDS,
    MINOR_VERSION_OF,
    MODEL_CODEC_IDS,
    PRIMED_CM_MINOR_VERSION,
    WRITER_CODEC_CHOICES,
    FrameCodec,
    model_codec,
    model_free_codec,
)
from vortexfmt.errors import CodingCancelled
from vortexfmt.spec import CodecId


class FrameEncoder:
    """Encodes frames with one codec, or with the smallest of several (``auto``)."""

    def __init__(self, codec: str = "auto", model: object | None = None,
                 device: str | None = None, frame_size: int | None = None,
                 threads: int = 1, level: int | None = None,
                 layout: str | None = None) -> None:
        """`level` (1..9, vortexfmt.codecs.levels) picks a preset instead of `codec`, which
        must then be ``auto`` (or left out). `layout` (vortexfmt.codecs.record_layout) says
        what the records are to cm, which then measures that layout's numeric transform
        against coding the bytes as they are; it needs cm among the codecs (LayoutError, a
        ValueError, for a string that cannot be read). `threads`: how many CPUs the
        caller's frames may keep busy. With more than one, cm encodes a frame of
        TWO_THREAD_MIN_RAW_SIZE bytes or more on two threads if it starts while fewer
        frames than `threads` are being encoded (the same payload either way)."""
        if codec not in WRITER_CODEC_CHOICES:
            raise ValueError(f"unknown codec {codec!r}; choose one of "
                             f"{', '.join(WRITER_CODEC_CHOICES)}")
        options: dict = {}
        if level is not None:
            from vortexfmt.codecs.levels import preset

            if codec != "auto":
                raise ValueError(f"give a codec ({codec!r}) or a level ({level!r}), not both")
            codec, options = preset(level)
        self.level = level
        self.auto = codec == "auto"
        names = options.get("candidates", AUTO_CANDIDATES) if self.auto else (codec,)
        profile = _profile_of(model)
        if isinstance(model, (str, os.PathLike)) and profile is None and \
                not any(CODEC_IDS[name] in MODEL_CODEC_IDS for name in names):
            # a model named that no codec here would use: never ignore it in silence (a
            # loaded model object is the caller's to pass to any codec)
            raise ValueError(f"{os.fspath(model)}: not a profile (a .vxprofile file that "
                             f"vortex train wrote), and "
                             f"{'this level' if level is not None else codec} takes no "
                             "neural model (--codec neural or mixed does)")
        if profile is not None:
            # a profile is for cm: auto keeps its classical candidates beside primed cm
            if any(CODEC_IDS[name] in MODEL_CODEC_IDS for name in names):
                raise ValueError(f"a profile ({model}) primes the cm codec; the {codec} "
                                 "codec needs a model file")
            if "cm" not in names:
                raise ValueError(f"a profile ({model}) primes the cm codec, which "
                                 f"{'this level' if level is not None else codec} does "
                                 "not use")
            if layout is not None:
                raise ValueError("a primed frame has no numeric transform: give a layout or "
                                 "a profile, not both")
        if layout is not None:
            from vortexfmt.codecs.record_layout import parse_layout

            if "cm" not in names:
                raise ValueError("a layout is for the cm codec, which "
                                 f"{'level ' + str(level) if level else repr(codec)} does "
                                 "not use")
            options = {**options, "layout": parse_layout(layout)}
        self.codecs = [_codec_for_writing(name, model, device, options, profile)
                       for name in names]
        if self.auto:  # leave out what auto would never try, then what this machine lacks
            if frame_size is not None:
                self.codecs = [c for c in self.codecs
                               if getattr(c, "auto_min_raw_size", 0) <= frame_size]
            self.codecs = [c for c in self.codecs if getattr(c, "usable", lambda: True)()]
        self.model_id = next((c.model_id for c in self.codecs
                              if getattr(c, "model_id", None)), None)
        #: Lowest format minor version the frames may need: 1.1 added the mixed codec, 1.2 cm,
        #: 1.3 primed cm frames.
        self.version_minor = max(MINOR_VERSION_OF.get(c.codec_id, 0) for c in self.codecs)
        if any(getattr(c, "may_transform", lambda size: False)(frame_size)
               for c in self.codecs):  # 1.3: cm frames with a numeric transform
            from vortexfmt.spec.cm import NUMERIC_MINOR_VERSION

            self.version_minor = max(self.version_minor, NUMERIC_MINOR_VERSION)
        if profile is not None:
            self.version_minor = max(self.version_minor, PRIMED_CM_MINOR_VERSION)
        #: Whether encode() may run on several threads at once: the model codecs run torch,
        #: which has threads of its own, and keep state between frames.
        self.thread_safe = all(getattr(c, "thread_safe", False) for c in self.codecs)
        for codec in self.codecs:  # load C++ kernels here, not on a worker thread (their
            prepare = getattr(codec, "prepare", None)  # first build redirects the output)
            if prepare is not None:
                prepare()
        self.threads = threads
        self._encoding = 0  # frames being encoded now (encode() calls under way)
        self._encoding_lock = threading.Lock()
        self._stop = threading.Event()
        self._probe = None  # zstd at PROBE_ZSTD_LEVEL, for auto's CM_LEAD rule
        if self.auto and any(c.codec_id == CodecId.CM for c in self.codecs):
            from vortexfmt.codecs.zstd import ZstdCodec

            self._probe = ZstdCodec(level=PROBE_ZSTD_LEVEL)

    def cancel(self) -> None:
        """Stop the frames being encoded, on any thread, as soon as their codecs can (cm
        within 64 KiB, lzma before its next 256 KiB; a zstd encoding under way finishes,
        none begins), with CodingCancelled; every later encode() raises it at once."""
        self._stop.set()

    def encode(self, raw: bytes) -> tuple[int, bytes]:
        """Return (codec id, payload) for one frame, never larger than FORMAT.md allows."""
        if self._stop.is_set():
            raise CodingCancelled("frame encoding cancelled")
        with self._encoding_lock:
            self._encoding += 1
            # a CPU to spare for this frame, which none of the others' frames has
            spare = self._encoding < self.threads and len(raw) >= TWO_THREAD_MIN_RAW_SIZE
        try:
            return self._encode_frame(raw, codec_threads=2 if spare else 1)
        finally:
            with self._encoding_lock:
                self._encoding -= 1

    def _encode_frame(self, raw: bytes, codec_threads: int) -> tuple[int, bytes]:
        from vortexfmt.spec import max_payload_size

        candidates = [c for c in self.codecs
                      if not (self.auto and len(raw) < getattr(c, "auto_min_raw_size", 0))]
        cm = next((c for c in candidates if c.codec_id == CodecId.CM), None) \
            if self._probe is not None and len(candidates) > 1 else None
        if cm is not None:
            results = self._encode_cm_first(candidates, cm, raw, codec_threads)
        else:
            results = self._encode_in_turn(candidates, raw, codec_threads)
        best: tuple[int, bytes] | None = None
        for codec, payload in results:
            if best is None or len(payload) < len(best[1]):
                best = (codec.codec_id, payload)
        if len(best[1]) > max_payload_size(len(raw)):
            best = (CodecId.STORED, bytes(raw))
        return best

    def close(self) -> None:
        """Nothing to release: every frame is encoded on the thread that asks for it (cm's
        second thread ends with its frame). The writer calls it on any encoder."""

    def _encode_cm_first(self, candidates, cm, raw: bytes,
                         threads: int) -> list[tuple[FrameCodec, bytes]]:
        """auto's payloads, in `candidates`' order: cm's first, then the others', but for
        lzma and zstd where cm leads (CM_LEAD): they would take time and not be kept."""
        cm_payload = self._encode(cm, raw, threads)
        numerator, denominator = CM_LEAD
        leads = denominator * len(cm_payload) <= numerator * len(self._probe.encode(raw))
        others = [c for c in candidates if c is not cm and
                  not (leads and c.codec_id in (CodecId.ZSTD, CodecId.LZMA))]
        done = dict(self._encode_in_turn(others, raw, threads))
        done[cm] = cm_payload
        return [(c, done[c]) for c in candidates if c in done]

    def _encode(self, codec: FrameCodec, raw: bytes, threads: int = 1) -> bytes:
        if threads > 1 and getattr(codec, "encodes_on_two_threads", False):
            return codec.encode(raw, stop=self._stop, threads=2)
        if getattr(codec, "cancellable", False):
            return codec.encode(raw, stop=self._stop)
        if self._stop.is_set():  # lzma and zstd cannot stop once begun: do not begin
            raise CodingCancelled("frame encoding cancelled")
        return codec.encode(raw)

    def _encode_in_turn(self, candidates, raw: bytes,
                        threads: int = 1) -> list[tuple[FrameCodec, bytes]]:
        results: list[tuple[FrameCodec, bytes]] = []
        for codec in candidates:
            if results and hasattr(codec, "encode_if_smaller"):  # model codecs
                smallest = min(len(payload) for _, payload in results)
                payload = codec.encode_if_smaller(raw, smallest)
                if payload is None:
                    continue
            else:
                payload = self._encode(codec, raw, threads)
            results.append((codec, payload))
        return results


#: auto leaves lzma and zstd out of a frame where cm's payload is at most 9/10 of what zstd
#: at level PROBE_ZSTD_LEVEL makes of it (a few milliseconds a MiB): for lzma -9e or zstd -19
#: to be kept there, it would have to come below cm, and so below 90% of zstd -3. Measured on
#: the corpus and the seed files in 64 KiB, 1 MiB and whole-file frames (311 frames,
#: 2026-12-06, BENCHMARKS.md): cm was at most 9/10 of zstd -3 on 287 and neither of them was
#: smaller than cm on any of those; they were smaller than cm on 3 frames only, where cm was
#: 0.93-1.19 of zstd -3. Leaving them out takes 13-34% off packing the corpus files where cm
#: leads by 7/10 (the rule's first bound) and about 16% more where it leads by 9/10 (float
#: and sensor samples: hep_tau_pt.f32, seis_balst_2ch.mseed, hep_hzz_events.rec).
CM_LEAD = (9, 10)
PROBE_ZSTD_LEVEL = 3
#: cm encodes frames of at least this many bytes on two threads when a CPU is spare.
TWO_THREAD_MIN_RAW_SIZE = 64 << 10


#: Codecs ``auto`` tries on every frame. On equal sizes the first is kept, so the cheapest
#: to decode comes first. The model codecs (neural, mixed) are not among them: cm packs
#: every corpus file smaller than they do (README "Benchmarks"), and archives written
#: without them need no model file to be unpacked.
AUTO_CANDIDATES = ("stored", "zstd", "lzma", "cm")


def _profile_of(model: object | None):
    """The Profile `model` names (a Profile or a profile file), or None for anything else
    (a neural model, or None)."""
    from vortexfmt.profiles import search

    return search.resolve(model) if search.is_profile(model) else None


def _codec_for_writing(name: str, model: object | None, device: str | None,
                       options: dict | None = None, profile=None) -> FrameCodec:
    if name == "cm" and profile is not None:
        from vortexfmt.profiles.codec import primed_cm_codec

        return primed_cm_codec(profile)
    if name == "cm" and options and "layout" in options:
        from vortexfmt.codecs.cm import CmCodec

        return CmCodec(layout=options["layout"])
    if name == "zstd" and options and "level" in options:
        from vortexfmt.codecs.zstd import ZstdCodec

        return ZstdCodec(level=options["level"])
    if CODEC_IDS[name] in MODEL_CODEC_IDS:
        return model_codec(CODEC_IDS[name], model, device)
    return model_free_codec(CODEC_IDS[name])
