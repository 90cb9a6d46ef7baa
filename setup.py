"""Builds Vortex's C++ kernels as ordinary CPython extension modules at install time (as
python-zstandard and CompressAI do), so that a wheel runs on machines with no compiler and
no codec path ever compiles anything. Everything else is declared in pyproject.toml.

Why setuptools with pybind11 (and not scikit-build-core with CMake): the kernels are a few
single-translation-unit modules with no dependencies beyond the C++ standard library, which
setuptools compiles with the same compiler and flags as CPython itself; pybind11's headers
(a build requirement only) give the same bindings the kernels were written with. CMake
would add a tool to the build and a second description of the same four files.

Each module picks its code path when it loads: the hot loops are compiled twice, for AVX2
and for the baseline x86-64 (GCC's target_clones, see csrc/kernel_support.h), so one wheel
serves every x86-64 CPU, and the integer arithmetic gives the same bytes on both paths.
"""

from __future__ import annotations

import sys

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import setup

_COMPILE_ARGS = ["-O3"] if sys.platform != "win32" else ["/O2"]


def _kernel(name: str, *sources: str) -> Pybind11Extension:
    return Pybind11Extension(name, list(sources), include_dirs=["csrc"], cxx_std=17,
                             extra_compile_args=_COMPILE_ARGS, language="c++")


setup(
    ext_modules=[
        _kernel("vortexfmt._cm_kernel", "csrc/cm/module.cpp"),
        _kernel("vortexfmt._step_kernel", "csrc/neural/step_kernel.cpp"),
        _kernel("vortexfmt._mixing_kernel", "csrc/neural/mixing_kernel.cpp"),
        _kernel("vortexfmt._stream_coder", "csrc/neural/stream_coder.cpp"),
    ],
    cmdclass={"build_ext": build_ext},
)
