"""Regenerate the golden vectors of the model codecs (neural, mixed) and of the cm codec:
python tests/golden/make_golden.py

The vectors pin the integer arithmetic: any change in how a model computes its CDFs, or
in how frames are coded or mixed, changes these hashes and fails CI on every machine. Regenerate
them only for a deliberate, versioned change of a payload format.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
MODEL = HERE / "tiny.safetensors"
INPUT = ROOT / "fixtures" / "seed" / "logs.bin"
INPUT_BYTES = 6000
LANE_LENGTH = 64
VECTORS = HERE / "golden.json"
CM_VECTORS = HERE / "cm.json"
CM_INPUT_BYTES = 20000
CM_LANES = (1, 3)


def make_model(path: Path) -> None:
    """A tiny model, briefly trained on the committed seed files so that it compresses."""
    from vortexfmt.neural.network import CONFIGS
    from vortexfmt.neural.train import TrainOptions, train

    seeds = sorted((ROOT / "fixtures" / "seed").iterdir())
    options = TrainOptions(config=CONFIGS["tiny"], steps=150, batch_size=8, lr=1e-2,
                           seed=1234, checkpoint_every=150, quiet=True,
                           checkpoint_dir=Path("/tmp/vortex-golden-checkpoints"))
    train(seeds, path, options)


def compute(model_file) -> dict:
    """What the golden vectors record, computed with the current code."""
    import torch

    from vortexfmt.codecs.stride import choose_stride
    from vortexfmt.neural.features import frame_features
    from vortexfmt.neural.lanes import encode_frame

    data = INPUT.read_bytes()[:INPUT_BYTES]
    runtime = model_file.runtime("cpu")
    features = frame_features(data, LANE_LENGTH, choose_stride(data))
    cdfs = runtime.run(runtime.new_state(features[0].shape[0], LANE_LENGTH), features)
    payload = encode_frame(runtime, data, LANE_LENGTH)
    mixed = encode_frame(runtime, data, LANE_LENGTH, mixed=True)
    return {
        "model_id": model_file.hex_id,
        "input": f"{INPUT.relative_to(ROOT)}[:{INPUT_BYTES}]",
        "lane_length": LANE_LENGTH,
        "cdf_sha256": hashlib.sha256(cdfs.to(torch.int32).numpy().astype("<i4").tobytes())
        .hexdigest(),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_size": len(payload),
        "mixed_payload_sha256": hashlib.sha256(mixed).hexdigest(),
        "mixed_payload_size": len(mixed),
    }


def compute_cm() -> dict:
    """What the cm golden vectors record: the payload of the first bytes of each seed file,
    in one lane and in three."""
    from vortexfmt.codecs.cm import CmCodec

    out = {}
    for seed_file in sorted((ROOT / "fixtures" / "seed").iterdir()):
        data = seed_file.read_bytes()[:CM_INPUT_BYTES]
        for lanes in CM_LANES:
            payload = CmCodec(lanes=lanes).encode(data)
            out[f"{seed_file.relative_to(ROOT)}[:{CM_INPUT_BYTES}] lanes={lanes}"] = {
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
                "payload_size": len(payload),
            }
    return out


def main() -> int:
    from vortexfmt.neural.files import load_model

    if "--model" in sys.argv or not MODEL.exists():
        make_model(MODEL)
    VECTORS.write_text(json.dumps(compute(load_model(MODEL)), indent=2) + "\n")
    print(VECTORS.read_text())
    CM_VECTORS.write_text(json.dumps(compute_cm(), indent=2) + "\n")
    print(CM_VECTORS.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
