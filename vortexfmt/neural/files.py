"""Models as files: safetensors tensors plus a JSON config, identified by a SHA-256.

A model file is a safetensors file (never pickle) whose metadata holds
``vortex.format = "vortex-model"``, ``vortex.version = "1"`` and ``vortex.config`` (the
`ModelConfig` as JSON). Its tensors are the integer parameters of `ByteModel.export` and the
lookup tables of `lookup_tables`.

The model id is the SHA-256 of the model's canonical bytes, which do not depend on how the
safetensors file happens to be laid out:

    b"vortex-model\\0" + b"1\\0" + canonical JSON of the config (sorted keys, no spaces)
    then for each tensor in name order:
    name + b"\\0" + dtype name + b"\\0" + shape as decimal numbers joined by "x" + b"\\0"
    + the little-endian bytes of the tensor in C order
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vortexfmt.errors import VortexError
from vortexfmt.neural.network import ModelConfig

FORMAT_NAME = "vortex-model"
FORMAT_VERSION = "1"
SUFFIX = ".safetensors"
ALLOWED_DTYPES = {torch.int8, torch.int32}


@dataclass
class ModelFile:
    """A loaded model: its config, integer tensors, id, and where it came from."""

    config: ModelConfig
    tensors: dict[str, torch.Tensor]
    path: Path | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    _id: bytes | None = None
    _runtimes: dict = field(default_factory=dict)

    @property
    def model_id(self) -> bytes:
        if self._id is None:
            self._id = model_id(self.config, self.tensors)
        return self._id

    @property
    def hex_id(self) -> str:
        return self.model_id.hex()

    def runtime(self, device: str | None = None):
        """The IntegerByteModel on `device` (auto: CUDA when present), built once."""
        from vortexfmt.neural.integer import IntegerByteModel

        device = resolve_device(device)
        if device not in self._runtimes:
            self._runtimes[device] = IntegerByteModel(self.config, self.tensors, device)
        return self._runtimes[device]


def resolve_device(device: str | None) -> str:
    """'auto' or None -> 'cuda' when available, else 'cpu'."""
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise VortexError("--device cuda: no CUDA device is available")
    if device not in ("cpu", "cuda"):
        raise VortexError(f"unknown device {device!r} (auto, cpu or cuda)")
    return device


def canonical_bytes(config: ModelConfig, tensors: dict[str, torch.Tensor]) -> bytes:
    parts = [FORMAT_NAME.encode(), b"\0", FORMAT_VERSION.encode(), b"\0",
             json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":")).encode()]
    for name in sorted(tensors):
        tensor = tensors[name].contiguous().cpu()
        dtype = str(tensor.dtype).removeprefix("torch.")
        shape = "x".join(str(n) for n in tensor.shape)
        parts += [name.encode(), b"\0", dtype.encode(), b"\0", shape.encode(), b"\0",
                  tensor.numpy().astype(tensor.numpy().dtype.newbyteorder("<")).tobytes()]
    return b"".join(parts)


def model_id(config: ModelConfig, tensors: dict[str, torch.Tensor]) -> bytes:
    """SHA-256 of the canonical bytes (32 bytes): what archive headers record."""
    return hashlib.sha256(canonical_bytes(config, tensors)).digest()


def save_model(path: str | os.PathLike, config: ModelConfig, tensors: dict[str, torch.Tensor],
               extra_metadata: dict[str, str] | None = None) -> ModelFile:
    """Write a model file; returns it loaded (with its id)."""
    for name, tensor in tensors.items():
        if tensor.dtype not in ALLOWED_DTYPES:
            raise ValueError(f"tensor {name} has dtype {tensor.dtype}; models hold int8/int32")
    metadata = {"vortex.format": FORMAT_NAME, "vortex.version": FORMAT_VERSION,
                "vortex.config": json.dumps(config.to_dict(), sort_keys=True)}
    metadata.update(extra_metadata or {})
    tensors = {name: tensor.contiguous().cpu() for name, tensor in tensors.items()}
    path = Path(path)
    temporary = path.with_name(path.name + ".part")
    save_file(tensors, str(temporary), metadata=metadata)
    os.replace(temporary, path)
    return ModelFile(config, tensors, path, metadata)


def load_model(path: str | os.PathLike) -> ModelFile:
    """Read and check a model file; raises VortexError if it is not one."""
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    except (OSError, ValueError, RuntimeError) as error:
        raise VortexError(f"{path}: not a readable model file ({error})") from None
    except Exception as error:  # safetensors raises its own SafetensorError
        raise VortexError(f"{path}: not a readable model file ({error})") from None
    if metadata.get("vortex.format") != FORMAT_NAME:
        raise VortexError(f"{path}: not a Vortex model (metadata vortex.format missing)")
    if metadata.get("vortex.version") != FORMAT_VERSION:
        raise VortexError(f"{path}: unsupported model version {metadata.get('vortex.version')}")
    try:
        config = ModelConfig(**json.loads(metadata["vortex.config"]))
        config.validate()
    except (KeyError, TypeError, ValueError) as error:
        raise VortexError(f"{path}: bad model config ({error})") from None
    for name, tensor in tensors.items():
        if tensor.dtype not in ALLOWED_DTYPES:
            raise VortexError(f"{path}: tensor {name} has dtype {tensor.dtype}")
    model = ModelFile(config, tensors, path, metadata)
    try:
        model.runtime("cpu")  # checks shapes and the exactness bounds
    except (KeyError, ValueError, RuntimeError) as error:
        raise VortexError(f"{path}: model refused: {error}") from None
    return model
