"""`python -m vortexfmt.hdf5`: prints the directory of the HDF5 plugin, for
HDF5_PLUGIN_PATH (export HDF5_PLUGIN_PATH=$(python -m vortexfmt.hdf5))."""

from vortexfmt.hdf5 import PLUGIN_DIR

print(PLUGIN_DIR)
