"""What `pip install vortexfmt` gives: compiled kernels inside the package, no torch.

The C++ kernels are extension modules that `pip install` builds (setup.py): no codec path
compiles anything, looks for a compiler, or uses torch's extension cache, and a process that
codes cm, lzma, zstd and stored frames never imports torch, installed or not. The model
codecs come with the `neural` extra. (scripts/check_wheel.sh, run by CI, installs the wheel
where no compiler is found.)
"""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import HANG_GUARD_S, text

import vortexfmt
from vortexfmt import native

#: What the default install must not pull in.
NOT_IN_THE_DEFAULT_INSTALL = {"torch", "torchac", "ninja", "safetensors"}


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0]
    for separator in "<>=!~[ (":
        name = name.split(separator)[0]
    return name.strip().lower()


def test_the_default_install_needs_no_torch():
    requirements = importlib.metadata.requires("vortexfmt") or []
    default = {_requirement_name(r) for r in requirements if "extra ==" not in r}
    assert default and not default & NOT_IN_THE_DEFAULT_INSTALL, default


def test_the_neural_extra_brings_torch():
    requirements = importlib.metadata.requires("vortexfmt") or []
    neural = {_requirement_name(r) for r in requirements if 'extra == "neural"' in r}
    assert "torch" in neural


def test_the_hdf5_extra_brings_h5py():
    requirements = importlib.metadata.requires("vortexfmt") or []
    hdf5 = {_requirement_name(r) for r in requirements if 'extra == "hdf5"' in r}
    assert hdf5 == {"h5py"}


def test_the_hdf5_plugin_is_built_into_the_package_without_h5py():
    """HDF5's loader opens lib*.so files in the HDF5_PLUGIN_PATH directories and asks each
    for its type (0, a filter) and its filter class; no h5py is needed for that."""
    import ctypes

    from vortexfmt import hdf5

    assert hdf5.PLUGIN_FILE.parent == hdf5.PLUGIN_DIR
    assert hdf5.PLUGIN_FILE.name.startswith("lib") and ".so" in hdf5.PLUGIN_FILE.name
    plugin = ctypes.CDLL(str(hdf5.PLUGIN_FILE))
    assert plugin.H5PLget_plugin_type() == 0
    plugin.H5PLget_plugin_info.restype = ctypes.POINTER(ctypes.c_int * 2)
    assert list(plugin.H5PLget_plugin_info().contents) == [1, hdf5.FILTER_ID]  # version, id


@pytest.mark.parametrize("name", ["cm", "step", "mixing", "stream_coder"])
def test_every_kernel_is_a_compiled_module_of_the_package(name):
    module = native.kernel(name)
    path = Path(module.__file__)
    assert path.suffix in (".so", ".pyd") and path.parent == Path(vortexfmt.__file__).parent


def _run(script: str, **environment) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-c", textwrap.dedent(script)], text=True,
                          capture_output=True, timeout=HANG_GUARD_S, check=False,
                          env={**os.environ, **environment})


def test_coding_the_model_free_codecs_never_imports_torch(tmp_path):
    """Not even where torch is installed; and nothing is written to torch's extension cache."""
    cache = tmp_path / "torch_extensions"
    result = _run("""
        import sys
        import vortexfmt
        data = bytes(range(256)) * 64 + b"the same words again and again " * 300
        for codec in ("auto", "cm", "lzma", "zstd", "stored"):
            blob = vortexfmt.compress(data, codec=codec, frame_size=4096)
            assert vortexfmt.decompress(blob) == data, codec
        print(sorted(m for m in sys.modules if m == "torch" or m.startswith("torch.")))
    """, TORCH_EXTENSIONS_DIR=str(cache))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert not cache.exists()


def test_the_cli_packs_and_unpacks_with_torch_unimportable(tmp_path):
    """As on a machine without the neural extra: torch cannot be imported at all."""
    source = tmp_path / "data.bin"
    source.write_bytes(text(20_000))
    result = _run(f"""
        import sys
        sys.modules["torch"] = None  # any import of torch now raises ImportError
        from vortexfmt.cli.main import main
        for args in (["pack", "-q", {str(source)!r}],
                     ["unpack", "-q", "-f", {str(source) + '.vtx'!r},
                      "-o", {str(tmp_path / 'out')!r}]):
            try:
                main(args)
            except SystemExit as exit:
                assert exit.code in (0, None), (args, exit.code)
    """)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out").read_bytes() == source.read_bytes()


def test_reading_frames_without_a_numeric_transform_never_imports_numpy(tmp_path):
    """numpy's import is most of a small random read's start-up: a reader imports it only
    for a frame that has a numeric transform to undo (and an encoder, which searches)."""
    archive = tmp_path / "data.vtx"
    data = bytes(range(256)) * 300
    archive.write_bytes(vortexfmt.compress(data, codec="cm", frame_size=4096))
    result = _run(f"""
        import sys
        import vortexfmt
        data = bytes(range(256)) * 300
        with vortexfmt.open({str(archive)!r}) as f:
            f.seek(70_000)
            assert f.read(586) == data[70_000:70_586]
        assert vortexfmt.decompress(open({str(archive)!r}, "rb").read()) == data
        print("numpy" in sys.modules)
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
