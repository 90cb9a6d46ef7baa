"""Measure packing one file frame by frame on a dask.distributed LocalCluster of 1 and 2
worker processes (one thread each), and the per-frame costs behind it: the CPU time to
encode a frame, the scheduler's cost per task, and this process's serial assembly.

    python scripts/dask_speedup.py ../shared/corpus/log_pg_wal.bin --codec cm --frame-size 256K

Prints one JSON object. Wall times are the best of `--repeat` runs; on a shared machine
they carry its load (printed as the load average before and after).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time

import xxhash


def _size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20}
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def _noop(x):
    return x


def _warm() -> None:
    """Load the cm kernel in a worker before anything is timed."""
    from vortexfmt import native

    native.cm_kernel()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    parser.add_argument("--codec", default="cm")
    parser.add_argument("--frame-size", default="256K")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    frame_size = _size(args.frame_size)

    from distributed import Client, LocalCluster, get_task_stream

    from vortexfmt import dask as vdask
    from vortexfmt.codecs.auto import FrameEncoder
    from vortexfmt.container.writer import ArchiveWriter

    data = open(args.file, "rb").read()
    frames = [data[i:i + frame_size] for i in range(0, len(data), frame_size)]
    report = {"file": os.path.basename(args.file), "bytes": len(data), "codec": args.codec,
              "frame_size": frame_size, "frames": len(frames),
              "load_before": os.getloadavg()[0]}

    # CPU time per frame, encoded here on one thread (what a worker spends)
    encoder = FrameEncoder(args.codec, frame_size=frame_size)
    cpu, payloads = [], []
    for frame in frames:
        start = time.thread_time()
        payloads.append(encoder.encode(frame))
        cpu.append(time.thread_time() - start)
    report["frame_cpu_s"] = {"mean": statistics.mean(cpu), "min": min(cpu), "max": max(cpu)}
    report["payload_bytes"] = sum(len(p) for _, p in payloads)

    # Serial assembly: what this process does per frame once the payloads are here
    class Ready:
        """Payloads already here, handed over as the workers' would be."""

        def __init__(self, values):
            self.values = iter(values)

        def next(self):
            return next(self.values)

        def cancel(self):
            pass

    start = time.perf_counter()
    results = Ready([(codec_id, payload, xxhash.xxh64_intdigest(frame))
                     for (codec_id, payload), frame in zip(payloads, frames, strict=True)])
    sink = io.BytesIO()
    with ArchiveWriter(sink, frame_size=frame_size,
                       encoder=vdask._EncodedFrames(encoder, results, args.file)) as writer:
        writer.write(data)
    report["assembly_s"] = time.perf_counter() - start

    # Local single-process baselines (the CLI, one and two threads)
    for threads in (1, 2):
        best = None
        for _ in range(args.repeat):
            start = time.perf_counter()
            subprocess.run([sys.executable, "-m", "vortexfmt.cli.main", "pack", "-q", "-f",
                            "--codec", args.codec, "--frame-size", str(frame_size), "-T",
                            str(threads), args.file, "-o", "/tmp/dask_speedup.local.vtx"],
                           check=True)
            elapsed = time.perf_counter() - start
            best = elapsed if best is None else min(best, elapsed)
        report[f"cli_T{threads}_s"] = best
    local = open("/tmp/dask_speedup.local.vtx", "rb").read()

    for workers in [int(n) for n in args.workers.split(",")]:
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(_warm)
            start = time.perf_counter()
            client.gather(client.map(_noop, range(500), pure=False))
            report[f"w{workers}_task_overhead_ms"] = (time.perf_counter() - start) * 2
            best = None
            for _ in range(args.repeat):
                start = time.perf_counter()
                with get_task_stream(client) as stream:
                    vdask.pack_files([args.file], ["/tmp/dask_speedup.dask.vtx"], client,
                                     split="frames", codec=args.codec,
                                     frame_size=frame_size)
                elapsed = time.perf_counter() - start
                if best is None or elapsed < best:
                    best = elapsed
                    spans = [(s["start"], s["stop"]) for task in stream.data
                             for s in task["startstops"] if s["action"] == "compute"]
                    computes = [stop - start for start, stop in spans]
                    # tasks running at once, on average, from the first start to the last end
                    concurrency = sum(computes) / (max(e for _, e in spans) -
                                                   min(b for b, _ in spans))
            report[f"w{workers}_wall_s"] = best
            report[f"w{workers}_task_compute_s_mean"] = statistics.mean(computes)
            report[f"w{workers}_concurrency"] = concurrency
            same = open("/tmp/dask_speedup.dask.vtx", "rb").read() == local
            report[f"w{workers}_same_as_cli"] = same
    if "w1_wall_s" in report and "w2_wall_s" in report:
        report["speedup_1_to_2"] = report["w1_wall_s"] / report["w2_wall_s"]
    report["load_after"] = os.getloadavg()[0]
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
