#!/usr/bin/env bash
# Pack and unpack speed of a multi-frame input at several thread counts (README
# "Where this stands against the goals", Speed):
#   bash scripts/bench_threads.sh [THREADS...]     (default: 1 2)
# Input: the ten corpus files concatenated (17.1 MB, five 4 MiB frames). Checks that every
# thread count writes the same archive and that every unpack gives the input back.
# About 6 minutes per thread count on 2 CPU cores.
set -euo pipefail
corpus=${CORPUS:-../shared/corpus}
work=${WORK:-build/bench-threads}
mkdir -p "$work"
cat "$corpus"/{log_pg_wal.bin,seis_ref_sts2.bin,bin_numpy_multiarray.so,hep_hzz_events.rec} \
    "$corpus"/{hep_hzz_uncompressed.root,hep_nanoaod_ttbar.col,hep_tau_pt.f32,net_http.pcap} \
    "$corpus"/{seis_balst_2ch.mseed,seis_balst_lhe.i32} > "$work/all"
echo "input: $(stat -c %s "$work/all") bytes"
first=""
for threads in "${@:-1 2}"; do
  for n in $threads; do
    /usr/bin/time -f "pack   -T $n: %e s, peak %M KB" \
      vortex pack -q -f -T "$n" "$work/all" -o "$work/all.T$n.vtx"
    /usr/bin/time -f "unpack -T $n: %e s, peak %M KB" \
      vortex unpack -q -f -T "$n" "$work/all.T$n.vtx" -o "$work/out"
    cmp "$work/out" "$work/all"
    /usr/bin/time -f "unpack -T $n from a pipe: %e s" \
      sh -c "cat '$work/all.T$n.vtx' | vortex unpack - -q -T $n > '$work/out'"
    cmp "$work/out" "$work/all"
    if [ -z "$first" ]; then first="$work/all.T$n.vtx"; else cmp "$first" "$work/all.T$n.vtx"; fi
  done
done
echo "archives identical, round trips exact: $(stat -c %s "$first") bytes packed"
