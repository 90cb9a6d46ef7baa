"""Shared helpers for the container test suite."""

from __future__ import annotations

import builtins
import hashlib
import importlib.util
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from vortexfmt.cli.main import main as cli_main

import vortexfmt.api

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"

#: Codec names a writer accepts that need no model.
CODECS = ("stored", "zstd", "lzma", "auto")


def _load_make_vectors():
    spec = importlib.util.spec_from_file_location("make_vectors", FIXTURES / "make_vectors.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("make_vectors", module)
    spec.loader.exec_module(module)
    return module


#: fixtures/make_vectors.py, imported: its VECTORS, BAD and ArchiveEditor.
make_vectors = _load_make_vectors()
ArchiveEditor = make_vectors.ArchiveEditor


# --- Content -----------------------------------------------------------------------------------

def noise(size: int, seed: int = 0) -> bytes:
    """Deterministic incompressible bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.blake2b(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def text(size: int) -> bytes:
    return make_vectors.text(size)


#: Frame size used by the round-trip tables below.
FRAME = 256


def sample_inputs(frame_size: int = FRAME) -> dict[str, bytes]:
    """The inputs every round trip is tried on, by name."""
    return {
        "empty": b"",
        "one-byte": b"\x7f",
        "one-frame": noise(frame_size, 1),
        "frame-minus-one": noise(frame_size - 1, 2),
        "frame-plus-one": noise(frame_size + 1, 3),
        "many-frames": text(frame_size * 9 + 17),
        "random": noise(5000, 4),
        "repetitive": b"abc" * 2000,
        "zeros": bytes(3 * frame_size),
    }


SAMPLES = sample_inputs()


# --- Streams -----------------------------------------------------------------------------------

class NonSeekable(io.RawIOBase):
    """A read-only pipe-like stream: no seek, no tell, short reads."""

    def __init__(self, data: bytes, chunk: int = 97) -> None:
        self._data = io.BytesIO(data)
        self._chunk = chunk

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._data.read(min(len(buffer), self._chunk))
        buffer[:len(data)] = data
        return len(data)


class WriteOnly(io.RawIOBase):
    """A write-only sink that refuses seek and tell, like a pipe."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.data += data
        return len(data)

    def seekable(self) -> bool:
        return False

    def tell(self) -> int:
        raise OSError("not seekable")

    def seek(self, *args) -> int:
        raise OSError("not seekable")


# --- CLI ---------------------------------------------------------------------------------------

def _runner() -> CliRunner:
    try:
        return CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        return CliRunner()


@pytest.fixture
def cli():
    """Run `vortex ARGS...` in-process: cli(args, input=bytes) -> click Result."""
    runner = _runner()

    def invoke(*args, input: bytes | None = None):
        return runner.invoke(cli_main, [str(arg) for arg in args], input=input,
                             catch_exceptions=False)

    return invoke


@pytest.fixture
def opened_files(monkeypatch) -> list:
    """Files that vortexfmt.open() opens by path, recorded as it opens them."""
    files = []
    real_open = builtins.open

    def recording_open(*args, **kwargs):
        files.append(real_open(*args, **kwargs))
        return files[-1]

    monkeypatch.setattr(vortexfmt.api.builtins, "open", recording_open)
    return files


def calls_to(monkeypatch, owner, name: str) -> list:
    """The objects whose method `owner.name` is called from now on (it still runs)."""
    called = []
    original = getattr(owner, name)

    def recording(self, *args, **kwargs):
        called.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(owner, name, recording)
    return called


def vortex_command() -> list[str]:
    """The installed `vortex` script beside this interpreter, or the module."""
    script = Path(sys.executable).parent / "vortex"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [sys.executable, "-m", "vortexfmt.cli.main"]


#: How long a test's `vortex` process may run before it is taken for hung: a guard against a
#: hang, not a measure of speed, so it is far beyond what any test's command needs even on
#: a loaded machine.
HANG_GUARD_S = 900


def run_vortex(*args, input: bytes | None = None, cwd=None, timeout: float = HANG_GUARD_S):
    """Run `vortex ARGS...` as a real process; return the CompletedProcess (bytes)."""
    return subprocess.run(vortex_command() + [str(arg) for arg in args], input=input,
                          capture_output=True, cwd=cwd, timeout=timeout, check=False)


def leftovers(directory: Path) -> list[str]:
    """Temporary output files the CLI should never leave behind."""
    return sorted(path.name for path in Path(directory).iterdir()
                  if path.name.startswith(".vortex-"))


GOLDEN = Path(__file__).resolve().parent / "golden"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def have_torch() -> bool:
    """Whether the `neural` extra (torch) is installed: the model codecs' tests need it and
    skip without it (CI runs the suite with and without it)."""
    return importlib.util.find_spec("torch") is not None


#: Marks a test of the model codecs: it runs only where the `neural` extra is installed.
needs_torch = pytest.mark.skipif(not have_torch(), reason="needs the neural extra (torch)")


@pytest.fixture(scope="session")
def torchac(tmp_path_factory):
    """torchac, the reference that the stream coders are held equal to (a test-only
    dependency: it compiles its C++ backend when imported, here in a directory of the
    test session's own). Skips where torch or torchac is not installed."""
    pytest.importorskip("torch")
    if importlib.util.find_spec("torchac") is None:
        pytest.skip("torchac (the reference coder) is not installed")
    os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(tmp_path_factory.mktemp("torchac")))
    import torchac

    return torchac


@pytest.fixture(scope="session")
def tiny_model():
    """The committed tiny model of the golden vectors (fast enough for every test)."""
    pytest.importorskip("torch")
    from vortexfmt.neural.files import load_model

    return load_model(GOLDEN / "tiny.safetensors")


def corpus_file(name: str) -> Path:
    """A file of ../shared/corpus; skips the test where the corpus is absent (a user's
    clone has none)."""
    path = CORPUS / name
    if not path.is_file():
        pytest.skip(f"corpus file {name} not available")
    return path
