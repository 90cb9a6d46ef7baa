"""The compiled kernels: CPython extension modules that `pip install` builds from `csrc/`
(setup.py), never compiled at run time.

- `_cm_kernel`: the cm codec itself, model and coder (it has no Python reference).
- `_step_kernel`, `_mixing_kernel`: the model codecs' step and mixing, each a faster copy
  of a torch reference computing the same integers (`neural.integer`, `neural.mixing`).
- `_stream_coder`: the model codecs' arithmetic coder (torchac's streams, bit for bit).

None of them links to torch: a process that codes cm, lzma and zstd frames never imports it.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from vortexfmt.errors import VortexError

#: Kernels that are a faster copy of a torch reference: VORTEX_NATIVE=0 turns them off.
_HAVE_REFERENCE = {"step", "mixing"}


class KernelUnavailableError(VortexError):
    """A compiled kernel is missing from this installation (a source tree that was not
    built: `pip install .` builds them)."""


def kernel(name: str) -> ModuleType | None:
    """The compiled kernel `name` ("cm", "step", "mixing", "stream_coder"), or None for a
    kernel with a torch reference when VORTEX_NATIVE=0 (callers then run the reference)."""
    if name in _HAVE_REFERENCE and os.environ.get("VORTEX_NATIVE", "1") == "0":
        return None
    module = f"vortexfmt._{name}" if name == "stream_coder" else f"vortexfmt._{name}_kernel"
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise KernelUnavailableError(
            f"the compiled module {module} is missing or cannot be loaded ({error}); "
            "reinstall vortexfmt (pip install builds it)") from None


def cm_kernel() -> ModuleType:
    return kernel("cm")


def step_kernel() -> ModuleType | None:
    return kernel("step")


def mixing_kernel() -> ModuleType | None:
    return kernel("mixing")


def stream_coder() -> ModuleType:
    return kernel("stream_coder")
