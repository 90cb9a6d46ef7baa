"""Benchmarks: vortex against the classical codecs people use today, and OpenZL where it is
installed, on the same files.

Every codec is timed on a whole file in memory (pack and unpack, MB/s of raw data) and its
size reported as bits per byte (8 * packed / raw). Every vortex result is unpacked and
compared with the original before it is reported.
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import zstandard

MB = 1e6


@dataclass
class CodecResult:
    codec: str
    packed_bytes: int
    bits_per_byte: float
    ratio: float
    pack_mb_s: float
    unpack_mb_s: float
    extra: dict = field(default_factory=dict)


@dataclass
class FileResult:
    file: str
    size: int
    results: list[CodecResult]
    skipped: dict[str, str] = field(default_factory=dict)


def _classic_codecs() -> tuple[dict[str, tuple[Callable, Callable]], dict[str, str]]:
    """name -> (compress, decompress), and the codecs skipped with the reason."""
    codecs = {
        "gzip-6": (lambda d: gzip.compress(d, 6, mtime=0), gzip.decompress),
        "gzip-9": (lambda d: gzip.compress(d, 9, mtime=0), gzip.decompress),
        "zstd-3": (zstandard.ZstdCompressor(level=3).compress,
                   zstandard.ZstdDecompressor().decompress),
        "zstd-19": (zstandard.ZstdCompressor(level=19).compress,
                    zstandard.ZstdDecompressor().decompress),
        "xz-9e": (lambda d: lzma.compress(d, preset=9 | lzma.PRESET_EXTREME), lzma.decompress),
        "bzip2-9": (lambda d: bz2.compress(d, 9), bz2.decompress),
    }
    skipped = {}
    try:
        import brotli

        codecs["brotli-11"] = (lambda d: brotli.compress(d, quality=11), brotli.decompress)
    except ImportError:
        skipped["brotli-11"] = "the brotli package is not installed (pip install brotli)"
    return codecs, skipped


def _timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - start


def _result(name: str, size: int, packed: int, pack_s: float, unpack_s: float,
            **extra) -> CodecResult:
    return CodecResult(name, packed, 8 * packed / size if size else 0.0,
                       size / packed if packed else 0.0,
                       size / MB / pack_s if pack_s else 0.0,
                       size / MB / unpack_s if unpack_s else 0.0, extra)


WARM_UP_BYTES = 4096


def bench_vortex(data: bytes, *, model=None, device=None, frame_size: int | None = None,
                 codec: str = "auto", threads: int = 1) -> CodecResult:
    """Pack and unpack with vortex (`threads` frames at once); raises AssertionError if the
    round trip differs."""
    from vortexfmt.api import decompress
    from vortexfmt.codecs import codec_name
    from vortexfmt.container.writer import DEFAULT_FRAME_SIZE, ArchiveWriter
    from vortexfmt.profiles.search import is_profile

    if codec not in ("neural", "mixed") and not is_profile(model):
        model = None  # a neural model given for bench's model codecs: not for this one
    # Untimed, a first round trip of a few bytes: kernels and torch load and models are
    # read once a process, which is not the codec's speed.
    warm_up = io.BytesIO()
    with ArchiveWriter(warm_up, codec=codec, model=model, device=device) as writer:
        writer.write(data[:WARM_UP_BYTES])
    decompress(warm_up.getvalue(), model=model, device=device)
    sink = io.BytesIO()
    start = time.perf_counter()
    with ArchiveWriter(sink, codec=codec, frame_size=frame_size or DEFAULT_FRAME_SIZE,
                       model=model, device=device, threads=threads) as writer:
        writer.write(data)
    pack_s = time.perf_counter() - start
    blob = sink.getvalue()
    restored, unpack_s = _timed(lambda: decompress(blob, model=model, device=device,
                                                   threads=threads))
    if restored != data:
        raise AssertionError("vortex round trip differs from the original")
    extra = {"frames": {codec_name(c): n for c, n in sorted(writer.codec_counts.items())},
             "threads": writer.threads}
    cm = next((c for c in writer.encoder.codecs if c.name == "cm"), None)
    if cm is not None and cm.stats.coded_raw_bytes:
        stats = cm.stats
        extra["cm_ideal_bits_per_byte"] = stats.ideal_bits / stats.coded_raw_bytes
        coded = 8 * (stats.coded_bytes + stats.overhead_bytes)
        extra["cm_coding_overhead_percent"] = 100 * (coded / max(stats.ideal_bits, 1) - 1)
    neural = next((c for c in writer.encoder.codecs if hasattr(c, "model")), None)
    if neural is not None and data:
        stats = neural.stats
        # Ideal code length over the whole file: exact on the frames the model codec
        # encoded, estimated (the model alone, every 16th lane) where auto skipped it.
        extra["model_ideal_bits_per_byte"] = (stats.ideal_bits + stats.estimated_bits) \
            / len(data)
        extra["estimated_share"] = stats.estimated_raw_bytes / len(data)
        if stats.coded_raw_bytes:
            coded = 8 * (stats.coded_bytes + stats.overhead_bytes)
            extra["neural_coded_bits_per_byte"] = coded / stats.coded_raw_bytes
            extra["coding_overhead_percent"] = 100 * (coded / stats.ideal_bits - 1)
        extra["model_id"] = neural.model.hex_id
    return _result(f"vortex-{codec}", len(data), len(blob), pack_s, unpack_s, **extra)


def bench_file(path: Path, *, model=None, device=None, frame_size=None,
               vortex_codecs=("auto",), classic: bool = True, threads: int = 1,
               openzl_dtype: str | None = "auto") -> FileResult:
    """Every codec on the file at `path`. With `classic`, the classical codecs and OpenZL
    (vortexfmt.bench_openzl; skipped when not installed): its generic column, and its
    numeric column for the element type `openzl_dtype` ("auto": from the file's suffix;
    None: none)."""
    data = path.read_bytes()
    results = [bench_vortex(data, model=model, device=device, frame_size=frame_size,
                            codec=codec, threads=threads) for codec in vortex_codecs]
    skipped: dict[str, str] = {}
    if classic:
        from vortexfmt.bench_openzl import DTYPE_OF_SUFFIX, NotWholeValues, openzl_codecs

        codecs, skipped = _classic_codecs()
        if openzl_dtype == "auto":
            openzl_dtype = DTYPE_OF_SUFFIX.get(path.suffix.lower())
        peers, peers_skipped = openzl_codecs(openzl_dtype)
        codecs.update(peers)
        skipped.update(peers_skipped)
        for name, (compress, decompress) in codecs.items():
            try:
                packed, pack_s = _timed(compress, data)
            except NotWholeValues as error:
                skipped[name] = str(error)
                continue
            restored, unpack_s = _timed(decompress, packed)
            assert restored == data, name
            results.append(_result(name, len(data), len(packed), pack_s, unpack_s))
    return FileResult(str(path), len(data), results, skipped)


def to_json(results: list[FileResult]) -> list[dict]:
    return [asdict(result) for result in results]


def format_table(results: list[FileResult]) -> str:
    lines = []
    for result in results:
        lines.append(f"{result.file} ({result.size} bytes)")
        lines.append(f"  {'codec':<14} {'bits/byte':>9} {'ratio':>7} {'pack MB/s':>10} "
                     f"{'unpack MB/s':>11}  notes")
        for row in result.results:
            notes = ""
            if "cm_ideal_bits_per_byte" in row.extra:
                notes = (f"cm ideal {row.extra['cm_ideal_bits_per_byte']:.4f}, coding "
                         f"overhead {row.extra['cm_coding_overhead_percent']:.3f}%; ")
            if "model_ideal_bits_per_byte" in row.extra:
                notes += f"model ideal {row.extra['model_ideal_bits_per_byte']:.4f}"
                if row.extra["estimated_share"]:
                    notes += f" ({100 * row.extra['estimated_share']:.0f}% sampled)"
                if "coding_overhead_percent" in row.extra:
                    notes += f", coding overhead {row.extra['coding_overhead_percent']:.2f}%"
                notes += "; "
            if "frames" in row.extra:
                notes += "frames " + ", ".join(f"{k} {v}" for k, v in row.extra["frames"]
                                               .items())
            if "threads" in row.extra:
                notes += f"; threads {row.extra['threads']}"
            lines.append(f"  {row.codec:<14} {row.bits_per_byte:>9.4f} {row.ratio:>7.3f} "
                         f"{row.pack_mb_s:>10.3f} {row.unpack_mb_s:>11.3f}  {notes}")
        for name, reason in result.skipped.items():
            lines.append(f"  {name:<14} skipped: {reason}")
    return "\n".join(lines)


def plot(results: list[FileResult], path: str) -> None:
    """Bits per byte against unpack speed, one panel per file, one point per codec."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = len(results)
    columns = min(3, count)
    rows = -(-count // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    for axis, result in zip(axes.flat, results, strict=False):
        for row in result.results:
            marker = "*" if row.codec.startswith("vortex") else "o"
            axis.scatter(row.unpack_mb_s, row.bits_per_byte, marker=marker,
                         s=120 if marker == "*" else 40)
            axis.annotate(row.codec, (row.unpack_mb_s, row.bits_per_byte), fontsize=8,
                          xytext=(3, 3), textcoords="offset points")
        axis.set_xscale("log")
        axis.set_xlabel("unpack MB/s (log)")
        axis.set_ylabel("bits per byte (lower is better)")
        axis.set_title(Path(result.file).name, fontsize=10)
        axis.grid(True, alpha=0.3)
    for axis in list(axes.flat)[count:]:
        axis.set_visible(False)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
