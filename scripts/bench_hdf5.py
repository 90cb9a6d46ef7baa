"""The HDF5 filter against HDF5's gzip: a raw numeric file as a 1-D dataset, written and read
back through h5py with each filter and chunk size; prints bytes stored and MB/s of raw data.

    python scripts/bench_hdf5.py FILE DTYPE [CHUNK_KIB ...]
    python scripts/bench_hdf5.py ../shared/corpus/seis_balst_lhe.i32 '<i4' 64 256 1024

Stored bytes are the chunks' (h5py's get_chunk_info), without the file's metadata; chunks
larger than the data are padded with zeros by HDF5, as in any such file. Every read is
compared with the data.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

import vortexfmt.hdf5 as vortex_hdf5

FILTERS = {
    "gzip 9": {"compression": "gzip", "compression_opts": 9},
    "shuffle+gzip 9": {"compression": "gzip", "compression_opts": 9, "shuffle": True},
    "vortex": vortex_hdf5.filter_kwargs(),
}


def measure(data: np.ndarray, chunk_elements: int, options: dict, path: Path):
    start = time.perf_counter()
    with h5py.File(path, "w") as f:
        f.create_dataset("x", data=data, chunks=(chunk_elements,), maxshape=(None,),
                         **options)
    written = time.perf_counter() - start
    start = time.perf_counter()
    with h5py.File(path) as f:
        back = f["x"][...]
    read = time.perf_counter() - start
    if not np.array_equal(back, data):
        raise SystemExit(f"{path}: the data read back differs")
    with h5py.File(path) as f:
        chunks = f["x"].id
        stored = sum(chunks.get_chunk_info(i).size for i in range(chunks.get_num_chunks()))
    return stored, written, read


def main(file: str, dtype: str, *chunk_kib: str) -> None:
    data = np.fromfile(file, dtype=np.dtype(dtype))
    megabytes = data.nbytes / 1e6
    print(f"{Path(file).name}: {data.nbytes} bytes, {len(data)} x {np.dtype(dtype).str}")
    print(f"{'chunk':>8} {'filter':>15} {'stored':>9} {'ratio':>6} {'write MB/s':>10} "
          f"{'read MB/s':>9}")
    with tempfile.TemporaryDirectory() as directory:
        for kib in map(int, chunk_kib or ("64", "256", "1024")):
            elements = kib * 1024 // data.itemsize
            for name, options in FILTERS.items():
                stored, written, read = measure(data, elements, options,
                                                Path(directory) / "bench.h5")
                print(f"{kib:>5} KiB {name:>15} {stored:>9} {data.nbytes / stored:>6.3f} "
                      f"{megabytes / written:>10.2f} {megabytes / read:>9.2f}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
