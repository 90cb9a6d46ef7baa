"""Corpus sizes against xz -9e with cm's numeric transforms off (today's coding) and on.

    python scripts/numeric_corpus.py [CORPUS_DIR]    (default ../shared/corpus)

Per file: `xz -9e -k -c FILE | wc -c`, then vortexfmt.compress(FILE) at 4 MiB frames (auto)
with CmCodec(numeric=False) and with the default, each unpacked and compared; prints each
size over xz's, their geometric means, and the encode times (noisy on a shared machine).
"""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import vortexfmt
from vortexfmt.codecs import cm

CORPUS = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/corpus")
_INIT = cm.CmCodec.__init__


def numeric_transforms(on: bool) -> None:
    def init(self, *args, **kwargs):
        kwargs.setdefault("numeric", on)
        _INIT(self, *args, **kwargs)
    cm.CmCodec.__init__ = init


def main() -> int:
    ratios: list[tuple[float, float]] = []
    for path in sorted(CORPUS.iterdir()):
        if path.suffix in (".tsv", ".md"):
            continue
        raw = path.read_bytes()
        xz = len(subprocess.run(["xz", "-9e", "-k", "-c", str(path)], check=True,
                                capture_output=True).stdout)
        sizes, times = [], []
        for on in (False, True):
            numeric_transforms(on)
            start = time.perf_counter()
            blob = vortexfmt.compress(raw, frame_size=4 << 20)
            times.append(time.perf_counter() - start)
            assert vortexfmt.decompress(blob) == raw, path.name
            sizes.append(len(blob))
        ratios.append((sizes[0] / xz, sizes[1] / xz))
        print(f"{path.name:26s} xz {xz:8d}  off {sizes[0]:8d} ({sizes[0] / xz:.4f})  on "
              f"{sizes[1]:8d} ({sizes[1] / xz:.4f})  encode {times[0]:.1f}s -> "
              f"{times[1]:.1f}s", flush=True)
    for label, index in (("off", 0), ("on", 1)):
        mean = math.exp(sum(math.log(r[index]) for r in ratios) / len(ratios))
        print(f"geomean {label}: {mean:.4f} of xz -9e")
    return 0


if __name__ == "__main__":
    sys.exit(main())
