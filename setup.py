"""Builds Vortex's C++ kernels as ordinary CPython extension modules at install time (as
python-zstandard and CompressAI do), so that a wheel runs on machines with no compiler and
no codec path ever compiles anything. Everything else is declared in pyproject.toml.

Why setuptools with pybind11 (and not scikit-build-core with CMake): the kernels are a few
single-translation-unit modules with no dependencies beyond the C++ standard library, which
setuptools compiles with the same compiler and flags as CPython itself; pybind11's headers
(a build requirement only) give the same bindings the kernels were written with. CMake
would add a tool to the build and a second description of the same four files.

The HDF5 filter plugin (csrc/hdf5/) is built the same way but is no Python module: a plain
shared library that HDF5 loads, named as HDF5's plugin loader requires (lib*.so) and put in
a directory of its own, vortexfmt/hdf5/plugins/, the directory HDF5_PLUGIN_PATH names. It
needs no HDF5 headers or library to build (the file says why), so the wheel builds and
installs where HDF5 is absent.

Each module picks its code path when it loads: the hot loops are compiled twice, for AVX2
and for the baseline x86-64 (GCC's target_clones, see csrc/kernel_support.h), so one wheel
serves every x86-64 CPU, and the integer arithmetic gives the same bytes on both paths.
"""

from __future__ import annotations

import glob
import os
import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

_COMPILE_ARGS = ["-O3"] if sys.platform != "win32" else ["/O2"]
#: The HDF5 plugin: a shared library without ABI tag, for HDF5's loader (not for Python).
_PLUGIN = "vortexfmt.hdf5.plugins.libh5vortex"


#: Every header: a kernel is rebuilt when one changes (its sources include most of them).
_HEADERS = sorted(glob.glob(os.path.join("csrc", "**", "*.h"), recursive=True))


def _kernel(name: str, *sources: str) -> Pybind11Extension:
    return Pybind11Extension(name, list(sources), include_dirs=["csrc"], cxx_std=17,
                             extra_compile_args=_COMPILE_ARGS, language="c++",
                             depends=_HEADERS)


class _BuildExt(build_ext):
    """pybind11's build_ext, which names the HDF5 plugin `libh5vortex.so` (HDF5 opens
    lib*.so* files) and exports from it only what its source marks (no PyInit_)."""

    def get_ext_filename(self, fullname: str) -> str:
        # asked with the full name, and with its last part alone (distutils' build step)
        if fullname in (_PLUGIN, _PLUGIN.rpartition(".")[2]):
            return os.path.join(*fullname.split(".")) + ".so"
        return super().get_ext_filename(fullname)

    def copy_extensions_to_source(self) -> None:  # editable installs: a directory to copy to
        build_py = self.get_finalized_command("build_py")
        os.makedirs(build_py.get_package_dir(_PLUGIN.rpartition(".")[0]), exist_ok=True)
        super().copy_extensions_to_source()

    def get_export_symbols(self, ext):
        return [] if ext.name == _PLUGIN else super().get_export_symbols(ext)


def _plugins() -> list[Pybind11Extension]:
    if sys.platform == "win32":  # HDF5 on Windows loads *.dll plugins: not built there yet
        return []
    linux = sys.platform.startswith("linux")
    return [Pybind11Extension(
        _PLUGIN, ["csrc/hdf5/h5z_vortex.cpp"], include_dirs=["csrc"], cxx_std=17,
        extra_compile_args=_COMPILE_ARGS, language="c++", libraries=["dl"] if linux else [],
        # exports HDF5's entry points only (the file says why)
        extra_link_args=["-Wl,--version-script=csrc/hdf5/exports.map"] if linux else [],
        depends=["csrc/hdf5/exports.map", *_HEADERS])]


setup(
    ext_modules=[
        _kernel("vortexfmt._cm_kernel", "csrc/cm/module.cpp"),
        _kernel("vortexfmt._step_kernel", "csrc/neural/step_kernel.cpp"),
        _kernel("vortexfmt._mixing_kernel", "csrc/neural/mixing_kernel.cpp"),
        _kernel("vortexfmt._stream_coder", "csrc/neural/stream_coder.cpp"),
        *_plugins(),
    ],
    cmdclass={"build_ext": _BuildExt},
)
