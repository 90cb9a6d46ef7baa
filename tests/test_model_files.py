"""Models as files: safetensors plus config, identified by the SHA-256 of canonical bytes."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")  # the model codecs need the neural extra: skip without it

import torch

from vortexfmt.errors import VortexError
from vortexfmt.neural import registry
from vortexfmt.neural.files import load_model, model_id, save_model


def test_model_id_is_stable_across_save_and_load(tiny_model, tmp_path):
    saved = save_model(tmp_path / "m.safetensors", tiny_model.config, tiny_model.tensors)
    assert load_model(saved.path).model_id == tiny_model.model_id == saved.model_id


def test_model_id_changes_with_any_weight(tiny_model):
    tensors = dict(tiny_model.tensors)
    tensors["head.bias"] = tensors["head.bias"].clone()
    tensors["head.bias"][0] += 1
    assert model_id(tiny_model.config, tensors) != tiny_model.model_id


def test_model_id_does_not_depend_on_tensor_order(tiny_model):
    reordered = dict(reversed(list(tiny_model.tensors.items())))
    assert model_id(tiny_model.config, reordered) == tiny_model.model_id


def test_a_file_that_is_not_a_model_is_refused(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(VortexError, match="not a readable model file"):
        load_model(path)


def test_float_tensors_are_refused(tiny_model, tmp_path):
    tensors = dict(tiny_model.tensors)
    tensors["head.bias"] = tensors["head.bias"].float()
    with pytest.raises(ValueError, match="int8/int32"):
        save_model(tmp_path / "f.safetensors", tiny_model.config, tensors)


def test_the_builtin_default_model_loads_and_checks_its_bounds():
    model = registry.default_model()
    assert len(model.model_id) == 32
    assert model.runtime("cpu").config == model.config


def test_resolve_accepts_a_path_an_id_prefix_or_a_model(tiny_model, tmp_path, monkeypatch):
    save_model(tmp_path / "x.safetensors", tiny_model.config, tiny_model.tensors)
    monkeypatch.setenv("VORTEX_MODELS", str(tmp_path))
    assert registry.resolve(str(tmp_path / "x.safetensors")).model_id == tiny_model.model_id
    assert registry.resolve(tiny_model.hex_id[:10]).model_id == tiny_model.model_id
    assert registry.resolve(tiny_model) is tiny_model
    with pytest.raises(VortexError):
        registry.resolve("not-a-model")


def test_models_hold_only_integer_tensors(tiny_model):
    assert {t.dtype for t in tiny_model.tensors.values()} <= {torch.int8, torch.int32}
