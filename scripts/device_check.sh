#!/usr/bin/env bash
# The GPU check of the model codecs, ready for the day a CUDA machine is at hand:
#   bash scripts/device_check.sh            (from the repository root; under 5 minutes)
# It installs vortexfmt with the neural extra (the torch already installed is kept, so a
# CUDA build stays a CUDA build), then, for the neural and mixed codecs on a sample:
#  - packs and unpacks on CUDA, and on the CPU;
#  - cross-decodes: CUDA-packed on the CPU and CPU-packed on CUDA;
#  - checks every archive is byte for byte the same on both devices and every round trip exact;
#  - prints pack and unpack throughput (MB/s) per codec and device.
# Exit status 0 only if every check passed; it says which failed otherwise.
set -euo pipefail
python=${PYTHON:-python3}
"$python" -c "import torch" 2>/dev/null || { echo "device_check: torch is not installed" >&2; exit 2; }
"$python" -m pip install --quiet -e '.[neural]'
"$python" - "$@" <<'PY'
import hashlib
import sys
import time

import torch

import vortexfmt

if not torch.cuda.is_available():
    sys.exit("device_check: no CUDA device visible to torch")
print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; "
      f"vortexfmt {vortexfmt.__version__}")
sample = open("fixtures/seed/logs.bin", "rb").read()[:64 << 10]
failures = []


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


for codec in ("neural", "mixed"):
    archives = {}
    for device in ("cuda", "cpu"):
        blob, seconds = timed(vortexfmt.compress, sample, codec=codec, device=device)
        archives[device] = blob
        print(f"{codec:<6} pack   on {device:<4}: {len(sample) / seconds / 1e6:7.3f} MB/s, "
              f"{8 * len(blob) / len(sample):.4f} bits/byte, "
              f"sha256 {hashlib.sha256(blob).hexdigest()[:16]}")
    if archives["cuda"] != archives["cpu"]:
        failures.append(f"{codec}: CUDA and CPU archives differ")
    for packed_on in ("cuda", "cpu"):
        for unpack_on in ("cuda", "cpu"):
            try:
                raw, seconds = timed(vortexfmt.decompress, archives[packed_on],
                                     device=unpack_on)
            except Exception as error:  # noqa: BLE001 (report every failure, go on)
                failures.append(f"{codec}: packed on {packed_on}, unpack on {unpack_on}: "
                                f"{error.__class__.__name__}: {error}")
                continue
            ok = raw == sample
            if not ok:
                failures.append(f"{codec}: packed on {packed_on}, unpacked on {unpack_on}: "
                                "bytes differ")
            print(f"{codec:<6} unpack on {unpack_on:<4} (packed on {packed_on:<4}): "
                  f"{len(sample) / seconds / 1e6:7.3f} MB/s, {'exact' if ok else 'WRONG'}")
if failures:
    print("device_check FAILED:\n  " + "\n  ".join(failures))
    sys.exit(1)
print("device_check OK: CUDA and CPU archives identical, all four cross-decodings exact")
PY
