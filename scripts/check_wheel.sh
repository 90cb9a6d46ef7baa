#!/usr/bin/env bash
# The install a user without a compiler gets: build the wheel here, then install it into a
# fresh virtual environment with no compiler on PATH (nor CC/CXX), pack and unpack a sample
# with cm, and check that torch is neither installed nor imported.
#   bash scripts/check_wheel.sh [WORKDIR]        (run from the repository root)
# Prints the wheel's size, the install time and the first pack's latency.
set -euo pipefail
work=${1:-build/check-wheel}
rm -rf "$work" && mkdir -p "$work/bin"
python=$(command -v python3)
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'; }

start=$EPOCHREALTIME
"$python" -m pip wheel --quiet --no-deps -w "$work/dist" .
echo "wheel built in $(elapsed "$start") s"
wheel=$(ls "$work"/dist/vortexfmt-*.whl)
echo "wheel: $(basename "$wheel"), $(stat -c %s "$wheel") bytes"

"$python" -m venv "$work/venv"
# PATH holds the new environment and a few shell tools, and no compiler at all.
for tool in cmp sh env awk stat cat rm ls; do ln -sf "$(command -v $tool)" "$work/bin/$tool"; done
export PATH="$work/venv/bin:$work/bin" CC=/nonexistent/cc CXX=/nonexistent/c++
if command -v cc gcc c++ g++ clang >/dev/null 2>&1; then echo "a compiler is on PATH"; exit 1; fi

start=$EPOCHREALTIME
pip install --quiet "$wheel"
echo "installed in $(elapsed "$start") s (dependencies from the index)"
if python -c "import torch" 2>/dev/null; then echo "torch was installed"; exit 1; fi

sample=fixtures/seed/logs.bin
start=$EPOCHREALTIME
vortex pack -q -f "$sample" -o "$work/logs.vtx"
echo "first pack of $(stat -c %s "$sample") bytes: $(elapsed "$start") s"
vortex unpack -q -f "$work/logs.vtx" -o "$work/logs.out"
cmp "$sample" "$work/logs.out"
vortex inspect "$work/logs.vtx" --json | python -c \
  "import json, sys; codecs = {f['codec'] for f in json.load(sys.stdin)['frames']}; assert codecs == {'cm'}, codecs"
python -I - "$PWD/fixtures/seed/telemetry.bin" <<'PY'
import sys
import vortexfmt
data = open(sys.argv[1], "rb").read()
for codec in ("cm", "lzma", "zstd", "stored", "auto"):
    assert vortexfmt.decompress(vortexfmt.compress(data, codec=codec)) == data, codec
assert "torch" not in sys.modules
PY
echo "wheel OK: cm, lzma, zstd and stored round trips exact, no compiler, no torch"
