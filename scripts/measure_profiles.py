"""Profiles against the goal of issue 16: a 64 KiB-frame cm archive of a file, primed with a
profile trained on other data of its format, within 5% of the same file in 4 MiB cold
frames.

Every corpus file MANIFEST.tsv marks train+bench is the only file of its format, so each
is cut in two: the profile is trained (`train_profile`, as `vortex train` does) on its
first half, and its second half is packed with codec cm three ways: 4 MiB frames (one
frame, cold), 64 KiB frames cold, 64 KiB frames primed. Prints one line per file: sizes,
the profile's size and settings, and the time per 64 KiB frame to pack and unpack (one
thread; timings on a shared machine vary).

    python scripts/measure_profiles.py [CORPUS_DIR] [FILE...]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import vortexfmt
from vortexfmt.profiles import save_profile
from vortexfmt.profiles.train import train_profile

FILES = ["seis_balst_lhe.i32", "hep_hzz_events.rec", "log_pg_wal.bin", "net_http.pcap",
         "hep_tau_pt.f32", "bin_numpy_multiarray.so"]
FRAME = 64 << 10


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def main() -> None:
    corpus = Path(sys.argv[1]) if len(sys.argv) > 1 else \
        Path(__file__).resolve().parents[2] / "shared" / "corpus"
    names = sys.argv[2:] or FILES
    work = Path(tempfile.mkdtemp())
    for name in names:
        data = (corpus / name).read_bytes()
        half = len(data) // 2
        train_file = work / ("train-" + name)
        train_file.write_bytes(data[:half])
        test = data[half:]
        result, train_s = timed(train_profile, [train_file], name.rsplit(".", 1)[-1])
        profile_file = save_profile(work / (name + ".vxprofile"), result.profile).path
        big = vortexfmt.compress(test, codec="cm", frame_size=4 << 20)
        cold, cold_pack = timed(vortexfmt.compress, test, codec="cm", frame_size=FRAME)
        warm, warm_pack = timed(vortexfmt.compress, test, codec="cm", frame_size=FRAME,
                                model=profile_file)
        back, warm_unpack = timed(vortexfmt.decompress, warm, model=profile_file)
        back_cold, cold_unpack = timed(vortexfmt.decompress, cold)
        assert back == test and back_cold == test
        frames = -(-len(test) // FRAME)
        settings = result.profile.settings
        print(f"{name}: second half {len(test)} B | 4 MiB cold {len(big)} | 64 KiB cold "
              f"{len(cold)} ({100 * (len(cold) / len(big) - 1):+.1f}%) | 64 KiB primed "
              f"{len(warm)} ({100 * (len(warm) / len(big) - 1):+.1f}%) | profile "
              f"{profile_file.stat().st_size} B ({len(result.profile.prime)} priming bytes, "
              f"table_bits {settings.table_bits}, stride {settings.stride}; trained in "
              f"{train_s:.1f} s) | ms per 64 KiB frame, pack/unpack: cold "
              f"{1e3 * cold_pack / frames:.0f}/{1e3 * cold_unpack / frames:.0f}, primed "
              f"{1e3 * warm_pack / frames:.0f}/{1e3 * warm_unpack / frames:.0f}", flush=True)


if __name__ == "__main__":
    main()
