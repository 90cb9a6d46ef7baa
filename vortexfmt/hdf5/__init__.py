"""The Vortex HDF5 filter: HDF5 datasets whose chunks are Vortex chunks coded with cm, for
h5py, netCDF-4 and the HDF5 tools.

The filter is a plugin, a shared library that `pip install` builds into PLUGIN_DIR
(csrc/hdf5/h5z_vortex.cpp) and that HDF5 itself loads: importing this module makes it
available to h5py in this process (it puts PLUGIN_DIR first on h5py's plugin search path,
as `import hdf5plugin` does for its filters). Any other HDF5 program, or a process that
never imports vortexfmt, finds it through the environment:

    export HDF5_PLUGIN_PATH=$(python -m vortexfmt.hdf5)

Writing from h5py:

    import h5py
    import vortexfmt.hdf5
    with h5py.File("data.h5", "w") as f:
        f.create_dataset("x", data=array, chunks=(65536,), **vortexfmt.hdf5.filter_kwargs())

Each chunk is coded on its own (cm's model starts empty for every chunk), so chunks of
64 KiB to 1 MiB compress far better than small ones. FILTER_ID is in 32768..65535, the range
HDF5 leaves to filters not registered with The HDF Group: this one is not registered yet,
so another unregistered filter could use the same number.
"""

from __future__ import annotations

import os
from pathlib import Path

from vortexfmt.codecs.cm import DEFAULT_MAX_TABLE_BITS
from vortexfmt.errors import VortexError
from vortexfmt.native import KernelUnavailableError
from vortexfmt.spec import cm as cm_layout

#: The filter's HDF5 id (0x8000 | "VX"): not registered with The HDF Group.
FILTER_ID = 0xD658
#: The directory that holds the plugin: what HDF5_PLUGIN_PATH names.
PLUGIN_DIR = Path(__file__).resolve().parent / "plugins"
#: The plugin itself (HDF5's loader opens files named lib*.so in its search path).
PLUGIN_FILE = PLUGIN_DIR / "libh5vortex.so"

__all__ = ["FILTER_ID", "PLUGIN_DIR", "PLUGIN_FILE", "filter_kwargs", "register"]


def filter_kwargs(*, stride: int | None = None,
                  max_table_bits: int = DEFAULT_MAX_TABLE_BITS) -> dict:
    """The keyword arguments of h5py's `create_dataset` that compress a dataset with the
    filter: `compression` and `compression_opts` (the filter's cd_values, which the file
    records). Chunking is the caller's choice (`chunks=`).

    `stride` is cm's record length, 0..1024 (0: no record contexts); None leaves it to the
    plugin, which takes the dataset's record: the element size times the chunk's dimensions
    after the first (one row of a chunk), or the element size when that exceeds 1024.
    `max_table_bits` (10..22) bounds the cm tables; a chunk uses smaller ones when it is
    small, and never more than a reader's default memory limit (1 GiB) allows.
    Raises ValueError for values out of range."""
    for name, value in (("stride", stride), ("max_table_bits", max_table_bits)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise ValueError(f"{name} must be an integer, got {value!r}")
    if not cm_layout.MIN_TABLE_BITS <= max_table_bits <= cm_layout.MAX_TABLE_BITS:
        raise ValueError(f"max_table_bits must be {cm_layout.MIN_TABLE_BITS}.."
                         f"{cm_layout.MAX_TABLE_BITS}, got {max_table_bits}")
    if stride is not None and not 0 <= stride <= cm_layout.MAX_STRIDE:
        raise ValueError(f"stride must be 0..{cm_layout.MAX_STRIDE}, got {stride}")
    options = (max_table_bits,) if stride is None else (max_table_bits, stride)
    return {"compression": FILTER_ID, "compression_opts": options}


def register() -> None:
    """Make the filter available to h5py in this process (importing this module already
    did, when h5py is installed). Raises ImportError without h5py, KernelUnavailableError
    where the plugin was not built, and VortexError where HDF5 does not load it (for one,
    when HDF5_PLUGIN_PRELOAD is "::", which turns HDF5's plugins off)."""
    if not PLUGIN_FILE.is_file():
        raise KernelUnavailableError(f"the HDF5 plugin {PLUGIN_FILE} is missing; reinstall "
                                     "vortexfmt (pip install builds it)")
    try:
        from h5py import h5pl, h5z
    except ImportError as error:
        raise ImportError(f"the HDF5 filter needs h5py ({error}); pip install "
                          "'vortexfmt[hdf5]'") from None
    directory = os.fsencode(PLUGIN_DIR)
    if directory not in (h5pl.get(i) for i in range(h5pl.size())):
        h5pl.prepend(directory)
    if not h5z.filter_avail(FILTER_ID):
        raise VortexError(f"HDF5 did not load the Vortex filter from {PLUGIN_DIR} (is "
                          "HDF5_PLUGIN_PRELOAD set to '::'?)")


try:
    import h5py  # noqa: F401
except ImportError:  # nothing to register with: HDF5 programs use HDF5_PLUGIN_PATH
    pass
else:
    register()
