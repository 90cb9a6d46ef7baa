"""Golden vectors: a fixed model and input, with the hashes of every CDF and of the coded
bytes committed, so that any drift in the arithmetic fails CI on any machine."""

from __future__ import annotations

import importlib.util
import json

import pytest

pytest.importorskip("torch")  # the model codecs need the neural extra: skip without it
from conftest import GOLDEN

from vortexfmt.neural.lanes import decode_frame


def _make_golden():
    spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_golden_cdfs_and_payload_are_unchanged(tiny_model):
    expected = json.loads((GOLDEN / "golden.json").read_text())
    assert _make_golden().compute(tiny_model) == expected


def test_golden_payload_decodes_to_its_input(tiny_model):
    make_golden = _make_golden()
    from vortexfmt.neural.lanes import encode_frame

    data = make_golden.INPUT.read_bytes()[:make_golden.INPUT_BYTES]
    runtime = tiny_model.runtime("cpu")
    payload = encode_frame(runtime, data, make_golden.LANE_LENGTH)
    assert decode_frame(runtime, payload, len(data)) == data
    mixed = encode_frame(runtime, data, make_golden.LANE_LENGTH, mixed=True)
    assert decode_frame(runtime, mixed, len(data), mixed=True) == data
