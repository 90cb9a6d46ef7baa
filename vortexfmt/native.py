"""C++ extensions built on first use (like torchac's backend), with their build logs kept
off standard output, where they would corrupt `vortex unpack -o -`. A build that takes a
while (about 25 s each, once per machine) is announced on standard error, so that a first
`vortex pack` does not look hung; set `announce_builds = False` to keep quiet.

The cm kernel uses nothing of torch's: on Linux it is loaded without importing torch
(_TORCH_FREE), which a process that codes only cm, lzma and zstd frames then never does."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
_PACKAGE = Path(__file__).parent
#: Kernel name -> its C++ source; each computes what a torch reference computes.
_SOURCES = {
    "mixing": _PACKAGE / "coding" / "mixing_kernel.cpp",  # reference: coding.mixing
    "step": _PACKAGE / "model" / "step_kernel.cpp",  # reference: model.integer.StepRunner
    "cm": _PACKAGE / "coding" / "cm_kernel.cpp",  # the cm codec itself: no torch reference
}
#: Kernels that are the implementation, not a faster copy of a torch reference:
#: VORTEX_NATIVE=0 does not turn them off.
_REQUIRED = {"cm"}
#: Kernels that call nothing of torch's. On Linux they are linked without torch's libraries
#: and built into a directory named by the digest of what they are built from, so that a
#: process loads them from there without importing torch (1.2 s here): `vortex pack` and
#: `vortex unpack` of cm, lzma and zstd frames never do.
_TORCH_FREE = {"cm"}
# (tuples: cpp_extension.load appends torch's libraries to the lists it is given)
_CFLAGS = ("-O3", "-fopenmp")
_LDFLAGS = ("-fopenmp",)
# --as-needed leaves out the libraries nothing is taken from; the C++ runtime comes first,
# or the linker takes the few of its functions that libc10 also exports from libc10
_TORCH_FREE_LDFLAGS = ("-Wl,--as-needed", "-lstdc++", "-lm")
_built: dict[str, object | None] = {}
_build_lock = threading.Lock()  # frames coded on several threads may ask at once
#: Whether a slow load says what it is doing (`vortex -q` turns it off).
announce_builds = True
ANNOUNCE_AFTER_S = 2.0  # a load from the build cache takes well under this


def quietly(load: Callable[[], T], notice: str | None = None) -> T:
    """Run `load` with file descriptors 1 and 2 captured; show the log only on failure.
    If `notice` is given and the load takes over ANNOUNCE_AFTER_S, print it on the real
    standard error (a build is under way)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    timer = None
    if notice and announce_builds:
        message = f"vortex: {notice}\n".encode()
        timer = threading.Timer(ANNOUNCE_AFTER_S, os.write, (saved[1], message))
        timer.daemon = True
    with tempfile.TemporaryFile() as log:
        try:
            os.dup2(log.fileno(), 1)
            os.dup2(log.fileno(), 2)
            if timer is not None:
                timer.start()
            return load()
        except BaseException:
            os.dup2(saved[1], 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            if timer is not None:  # before its descriptor closes
                timer.cancel()
                if timer.is_alive():
                    timer.join()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)


def kernel(name: str):
    """The compiled CPU kernels `name` ("mixing", "step", "cm"), or None when they cannot
    be built (no C++ compiler) or `VORTEX_NATIVE=0`: callers then run their torch reference,
    which computes the same integers, several times slower. The cm codec has no reference:
    VORTEX_NATIVE does not apply to it, and without a compiler it is unavailable."""
    if os.environ.get("VORTEX_NATIVE", "1") == "0" and name not in _REQUIRED:
        return None
    if name in _built:
        return _built[name]
    with _build_lock:
        if name not in _built:
            _built[name] = _build(name)
    return _built[name]


def _build(name: str):
    """Build (or load from the build cache) kernel `name`; None when it cannot be built."""
    try:
        if name in _TORCH_FREE and sys.platform.startswith("linux"):
            return _build_torch_free(name)
        return _load_with_torch(name, _LDFLAGS)
    except Exception as error:  # no compiler, no ninja: fall back to the reference
        fallback = ("the cm codec is unavailable" if name in _REQUIRED
                    else "using the slower torch reference")
        print(f"vortex: C++ {name} kernel unavailable ({error.__class__.__name__}: {error}); "
              f"{fallback}", file=sys.stderr)
        return None


def _module_name(name: str) -> str:
    """The Python module kernel `name` is built as (and its .so file named after)."""
    return f"vortex_{name}_kernel"


def _load_with_torch(name: str, ldflags: tuple[str, ...], **options):
    """Kernel `name` through torch's cpp_extension, which builds it first if need be."""
    from torch.utils import cpp_extension

    return quietly(lambda: cpp_extension.load(
        name=_module_name(name), sources=[str(_SOURCES[name])],
        # No -march=native: torch caches the build in the home directory, which
        # clusters share between machines of different CPUs (it gained ~10%).
        extra_cflags=list(_CFLAGS), extra_ldflags=list(ldflags),
        extra_include_paths=[str(_PACKAGE)],  # kernel_support.h
        verbose=False, **options),
        f"building the C++ {name} kernel (first use only, ~25 s)")


def _build_torch_free(name: str):
    """Torch-free kernel `name`: loaded without torch from the copy published in its build
    directory, or else built (or found built) through torch and published for next time."""
    directory = torch_free_build_directory(name)
    published = directory / f"{_module_name(name)}.published.so"
    module = _load_published(name, published)
    if module is not None:
        return module
    directory.mkdir(parents=True, exist_ok=True)

    def load():
        return _load_with_torch(name, _LDFLAGS + _TORCH_FREE_LDFLAGS,
                                build_directory=str(directory))

    try:
        module = load()
    except ImportError:
        # Its own file is damaged (a link cut short, a full disk). Whether ninja links it
        # again depends on the timestamps it finds, so remove it: a missing file is linked.
        with contextlib.suppress(OSError):
            (directory / f"{_module_name(name)}.so").unlink()
        _forget_the_build(name)
        try:
            module = load()
        except Exception as error:  # its object file is damaged too
            raise ImportError(f"{error}; delete {directory} to build it again") from error
    if module.__name__ == _module_name(name):  # torch renames one built twice in a
        _publish(Path(module.__file__), published)  # process: later ones could not load it
    return module


def _forget_the_build(name: str) -> None:
    """Make torch run the build of kernel `name` again in this process: it runs ninja only
    the first time a process loads a module, unless its sources or flags have changed."""
    from torch.utils import cpp_extension

    with contextlib.suppress(AttributeError, TypeError):  # another torch: no second build
        cpp_extension.JIT_EXTENSION_VERSIONER.entries.pop(_module_name(name), None)


def torch_free_build_directory(name: str) -> Path:
    """Where torch-free kernel `name` is built: under torch's extension cache
    (`TORCH_EXTENSIONS_DIR`, or ~/.cache/torch_extensions), in a directory named by the
    digest of its sources, its flags and the Python it is built for (a change to any of
    them builds it anew, elsewhere)."""
    digest = hashlib.sha256()
    for part in (_SOURCES[name].read_bytes(), (_PACKAGE / "kernel_support.h").read_bytes(),
                 repr((_CFLAGS, _LDFLAGS, _TORCH_FREE_LDFLAGS)).encode(),
                 sys.implementation.cache_tag.encode(),
                 str(sysconfig.get_config_var("EXT_SUFFIX")).encode(),
                 platform.machine().encode()):
        digest.update(len(part).to_bytes(8, "little"))
        digest.update(part)
    root = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "torch_extensions")
    return Path(root) / "vortex" / f"{name}-{digest.hexdigest()[:16]}"


def _load_published(name: str, path: Path):
    """The module published at `path`, or None: not published yet, or not loadable (then
    the file is removed, and the build publishes it again)."""
    try:
        if not path.is_file():
            return None
        spec = importlib.util.spec_from_file_location(_module_name(name), path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    except Exception:  # unreadable, or linked to torch after all: build it as torch does
        with contextlib.suppress(OSError):
            path.unlink()
        return None


def _publish(built: Path, path: Path) -> None:
    """Copy the kernel built at `built` to `path` whole or not at all: a process that starts
    while it is being written must not load half a file (it would die of a bus error).
    Without it (a read-only cache), later processes load the kernel through torch."""
    part = path.with_name(f"{path.name}.{os.getpid()}.part")  # one build per process
    try:
        shutil.copy(built, part)  # with its mode: readable by whoever may read the build
        os.replace(part, path)
    except OSError:
        with contextlib.suppress(OSError):
            part.unlink()


def mixing_kernel():
    return kernel("mixing")


def step_kernel():
    return kernel("step")


def cm_kernel():
    return kernel("cm")
