"""Finding models: the built-in default, a models directory, or a path.

`--model` takes a path to a model file, or a model id (its full hex SHA-256, or a prefix
of at least 8 hex digits) found among the built-in models and the models directory:
``$VORTEX_MODELS`` if set, else ``$XDG_DATA_HOME/vortex/models`` (default
``~/.local/share/vortex/models``). Unpacking without `--model` finds the archive's model
by its id there.
"""

from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from vortexfmt.errors import ModelMismatchError, VortexError
from vortexfmt.neural.files import SUFFIX, ModelFile, load_model

BUILTIN_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = BUILTIN_DIR / "default.safetensors"
_HEX_ID = re.compile(r"^[0-9a-fA-F]{8,64}$")


def models_dir() -> Path:
    if os.environ.get("VORTEX_MODELS"):
        return Path(os.environ["VORTEX_MODELS"])
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "vortex" / "models"


@lru_cache(maxsize=16)
def _load_cached(path: str, mtime_ns: int, size: int) -> ModelFile:
    return load_model(path)


def load(path: str | os.PathLike) -> ModelFile:
    """Load a model file, reusing an already loaded copy of an unchanged file."""
    stat = os.stat(path)
    return _load_cached(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def default_model() -> ModelFile:
    if not DEFAULT_MODEL.exists():
        raise VortexError(f"the built-in model is missing ({DEFAULT_MODEL})")
    return load(DEFAULT_MODEL)


def candidates() -> list[Path]:
    """Model files of the built-in and user directories, built-in first."""
    found = []
    for directory in (BUILTIN_DIR, models_dir()):
        if directory.is_dir():
            found += sorted(directory.glob(f"*{SUFFIX}"))
    return found


def find_by_id(hex_prefix: str) -> ModelFile:
    """The model whose id starts with `hex_prefix`; VortexError if none or ambiguous."""
    prefix = hex_prefix.lower()
    matches = {}
    for path in candidates():
        try:
            model = load(path)
        except VortexError:
            continue
        if model.hex_id.startswith(prefix):
            matches[model.hex_id] = model
    if len(matches) == 1:
        return next(iter(matches.values()))
    if not matches:
        raise ModelMismatchError(f"no model with id {hex_prefix} in {BUILTIN_DIR} or "
                                 f"{models_dir()} (set VORTEX_MODELS or pass --model PATH)")
    raise VortexError(f"model id prefix {hex_prefix} is ambiguous")


def resolve(model: object | None) -> ModelFile:
    """A ModelFile from what a user passed: None (the default), a ModelFile, a path, or
    a model id."""
    if model is None:
        return default_model()
    if isinstance(model, ModelFile):
        return model
    text = os.fspath(model)
    if os.path.exists(text):
        return load(text)
    if _HEX_ID.match(text):
        return find_by_id(text)
    raise VortexError(f"--model {text}: no such file, and not a model id")


def for_archive(archive_model_id: bytes, model: object | None) -> ModelFile:
    """The model to decode an archive whose header records `archive_model_id`.

    With no model given, the archive's model is looked up by id. A given model must have
    that id: ModelMismatchError names both otherwise.
    """
    if model is None:
        return find_by_id(archive_model_id.hex())
    chosen = resolve(model)
    if chosen.model_id != archive_model_id:
        raise ModelMismatchError(f"the archive needs model {archive_model_id.hex()}, "
                                 f"but model {chosen.hex_id} was given")
    return chosen
