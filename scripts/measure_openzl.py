"""OpenZL (pip install openzl) against xz -9e on the corpus's numeric files: OpenZL's generic
compressor, and its numeric graph (vortexfmt.bench_openzl) for the file's element type:
from the suffix (.f32, .i32), or, for files without one, both 4-byte guesses (int32 and
float32), marked as guesses. Every result is decompressed and compared.

    python scripts/measure_openzl.py [CORPUS_DIR]
"""

from __future__ import annotations

import lzma
import sys
from pathlib import Path

from vortexfmt.bench_openzl import DTYPE_OF_SUFFIX, NotWholeValues, openzl_codecs

FILES = ["hep_tau_pt.f32", "seis_balst_lhe.i32", "seis_ref_sts2.bin", "seis_balst_2ch.mseed",
         "hep_hzz_events.rec", "hep_nanoaod_ttbar.col"]


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[2] / "shared" / "corpus"
    for name in FILES:
        data = (corpus / name).read_bytes()
        xz = len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME))
        row = [f"{name} {len(data)} B: xz-9e {xz} ({8 * xz / len(data):.4f} bits/byte)"]
        dtype = DTYPE_OF_SUFFIX.get(Path(name).suffix)
        codecs: dict = {}
        for element in [dtype] if dtype else ["int32", "float32"]:
            found, skipped = openzl_codecs(element)
            if skipped:
                sys.exit(f"openzl is not installed: {next(iter(skipped.values()))}")
            codecs.update(found)
        for label, (compress, decompress) in codecs.items():
            try:
                blob = compress(data)
            except NotWholeValues as error:
                row.append(f"{label}: skipped ({error})")
                continue
            assert decompress(blob) == data, label
            guess = " (guessed type)" if label != "openzl" and not dtype else ""
            row.append(f"{label}{guess} {len(blob)} ({8 * len(blob) / len(data):.4f} "
                       f"bits/byte, {len(blob) / xz:.3f} x xz)")
        print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
