#!/usr/bin/env bash
# Reproduces vortexfmt/neural/models/default.safetensors, the built-in model:
#   bash scripts/train_default_model.sh
# Data: the corpus files MANIFEST.tsv marks train+bench (never the bench-only ones), the four
# generated seed datasets at full scale (seed 1; the committed fixtures use seed 0), and two
# generic binaries of the machine. At most 2 MiB of each file. About 42 minutes on 2 CPU cores.
set -euo pipefail
corpus=${CORPUS:-../shared/corpus}
work=${WORK:-build/default-model}
mkdir -p "$work"
python fixtures/generate.py --out "$work/generated" --scale full --seed 1
vortex train \
  "$corpus/bin_numpy_multiarray.so" "$corpus/hep_hzz_events.rec" "$corpus/hep_tau_pt.f32" \
  "$corpus/log_pg_wal.bin" "$corpus/net_http.pcap" "$corpus/seis_balst_lhe.i32" \
  "$work/generated" /usr/bin/git /usr/bin/perl \
  --config small --steps "${STEPS:-4000}" --batch-size 16 --context 512 --lr 3e-3 \
  --max-bytes-per-file 2M --val-fraction 0.05 --seed 0 --checkpoint-every 250 \
  -o "$work/default.safetensors"
cp "$work/default.safetensors" vortexfmt/neural/models/default.safetensors
