"""`vortex train`: a few steps lower the loss and write a model that packs exactly."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")  # the model codecs need the neural extra: skip without it

from conftest import HANG_GUARD_S, run_vortex

import vortexfmt
from vortexfmt.neural.files import load_model
from vortexfmt.neural.network import CONFIGS
from vortexfmt.neural.train import TrainOptions, train

DATA = b"".join(b"record %05d: temperature=%03d status=OK\n" % (i, (i * 7) % 300)
                for i in range(600))


@pytest.fixture()
def data_file(tmp_path):
    path = tmp_path / "records.txt"
    path.write_bytes(DATA)
    return path


def options(tmp_path, steps: int, **changes) -> TrainOptions:
    base = dict(config=CONFIGS["tiny"], steps=steps, batch_size=4, lane_length=128, lr=1e-2,
                checkpoint_every=steps, quiet=True, val_fraction=0.2,
                checkpoint_dir=tmp_path / "checkpoints")
    base.update(changes)
    return TrainOptions(**base)


def test_training_lowers_the_loss_and_writes_a_model_that_packs_exactly(data_file, tmp_path):
    result = train([data_file], tmp_path / "m.safetensors", options(tmp_path, 30))
    first, last = result.history[0], result.history[-1]
    assert result.train_bits_per_byte < 7.5  # from ~8 bits/byte at random initialisation
    assert last["val_bits_per_byte"] <= first["val_bits_per_byte"]
    assert abs(result.val_bits_per_byte_exact - result.val_bits_per_byte_float) < 0.5
    model = load_model(tmp_path / "m.safetensors")
    blob = vortexfmt.compress(DATA, codec="neural", model=model, frame_size=8192)
    assert vortexfmt.decompress(blob, model=model) == DATA


def test_resume_continues_from_the_checkpoint(data_file, tmp_path):
    train([data_file], tmp_path / "a.safetensors", options(tmp_path, 10))
    checkpoint = tmp_path / "checkpoints" / "a.checkpoint.safetensors"
    assert checkpoint.exists()
    meta = json.loads(checkpoint.with_suffix(".json").read_text())
    assert meta["step"] == 10
    resumed = train([data_file], tmp_path / "a.safetensors",
                    options(tmp_path, 20, resume=checkpoint, checkpoint_every=5))
    assert [h["step"] for h in resumed.history] == [15, 20]
    assert json.loads(checkpoint.with_suffix(".json").read_text())["step"] == 20


def test_init_fine_tunes_an_existing_model(data_file, tmp_path, tiny_model):
    result = train([data_file], tmp_path / "f.safetensors", options(tmp_path, 5,
                                                                    init=tiny_model))
    assert result.model.config == tiny_model.config


def test_cli_train_writes_a_usable_model(data_file, tmp_path):
    model = tmp_path / "cli.safetensors"
    result = run_vortex("train", "--neural", data_file, "-o", model, "--config", "tiny",
                        "--steps", "4", "--batch-size", "2", "--context", "128", "-q",
                        timeout=HANG_GUARD_S)
    assert result.returncode == 0, result.stderr
    assert load_model(model).config == CONFIGS["tiny"]
