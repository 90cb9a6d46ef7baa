"""Quantization-aware training of the byte model (`vortex train`).

Data files are cut into frames and lanes exactly as the neural codec cuts them, and the
context features are computed by the codec's own code, so the model learns from what it
will see when packing. Lanes are split at random (seeded) into training and validation
sets. Checkpoints are safetensors files (weights, Adam moments) plus a JSON sidecar
(step, config, seed): never pickle. The output is a model file for `vortex pack --model`,
chosen by validation loss, and its validation bits per byte are then measured with the
integer-exact model that codes archives.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from vortexfmt.codecs.stride import choose_stride
from vortexfmt.neural import intmath
from vortexfmt.neural.features import frame_features, lane_lengths
from vortexfmt.neural.files import ModelFile, resolve_device, save_model
from vortexfmt.neural.integer import lookup_tables
from vortexfmt.neural.lanes import DEFAULT_LANE_LENGTH
from vortexfmt.neural.network import ByteModel, ModelConfig
from vortexfmt.training_files import expand_inputs  # noqa: F401  (its callers' import)

TRAIN_FRAME_SIZE = 1 << 20


@dataclass
class TrainOptions:
    config: ModelConfig
    steps: int = 1000
    batch_size: int = 16
    lane_length: int = DEFAULT_LANE_LENGTH
    lr: float = 3e-3
    device: str | None = None
    val_fraction: float = 0.05
    seed: int = 0
    checkpoint_every: int = 200
    checkpoint_dir: Path | None = None
    init: ModelFile | None = None
    resume: Path | None = None
    max_bytes_per_file: int | None = None
    log: Callable[[str], None] = print
    quiet: bool = False
    epochs: float | None = None  # overrides steps when given


@dataclass
class TrainResult:
    model: ModelFile
    steps: int
    train_bits_per_byte: float
    val_bits_per_byte_float: float
    val_bits_per_byte_exact: float
    history: list[dict] = field(default_factory=list)


class LaneDataset:
    """Every lane of every training frame with its features, as (lanes, T) tensors."""

    def __init__(self, files: list[Path], lane_length: int, max_bytes_per_file: int | None,
                 progress: Callable[[int], None] | None = None) -> None:
        parts: list[list[torch.Tensor]] = [[] for _ in range(6)]
        self.total_bytes = 0
        for path in files:
            data = path.read_bytes()[:max_bytes_per_file]
            for start in range(0, len(data), TRAIN_FRAME_SIZE):
                frame = data[start:start + TRAIN_FRAME_SIZE]
                features = frame_features(frame, lane_length, choose_stride(frame))
                lengths = lane_lengths(len(frame), lane_length)
                target = torch.zeros(len(lengths) * lane_length, dtype=torch.int64)
                target[:len(frame)] = torch.frombuffer(bytearray(frame), dtype=torch.uint8)
                valid = torch.arange(lane_length).unsqueeze(0) < lengths.unsqueeze(1)
                for store, tensor in zip(parts, (*features, target.view(-1, lane_length),
                                                 valid), strict=True):
                    store.append(tensor)
                self.total_bytes += len(frame)
                if progress is not None:
                    progress(len(frame))
        self.previous, self.match, self.match_length, self.record, self.target, self.valid = (
            torch.cat(p) for p in parts)

    def __len__(self) -> int:
        return self.target.shape[0]

    def batch(self, lanes: torch.Tensor, device: str):
        features = [x[lanes].to(device, torch.int64) for x in (
            self.previous, self.match, self.match_length, self.record)]
        return features, self.target[lanes].to(device), self.valid[lanes].to(device)


def bits_per_byte(model: ByteModel, data: LaneDataset, lanes: torch.Tensor, device: str,
                  batch_size: int = 32) -> float:
    """Float model's cross-entropy on `lanes`, in bits per byte."""
    total, count = 0.0, 0
    model.eval()
    with torch.no_grad():
        for start in range(0, len(lanes), batch_size):
            features, target, valid = data.batch(lanes[start:start + batch_size], device)
            loss = F.cross_entropy(model(*features).transpose(1, 2), target, reduction="none")
            total += float(loss[valid].sum())
            count += int(valid.sum())
    model.train()
    return total / max(count, 1) / math.log(2)


def exact_bits_per_byte(model: ModelFile, data: LaneDataset, lanes: torch.Tensor,
                        device: str, batch_size: int = 64) -> float:
    """Ideal code length of `lanes` under the integer-exact model that packs archives."""
    runtime = model.runtime(device)
    total, count = 0.0, 0
    for start in range(0, len(lanes), batch_size):
        features, target, valid = data.batch(lanes[start:start + batch_size], "cpu")
        state = runtime.new_state(target.shape[0], target.shape[1])
        bits = intmath.code_length_bits(runtime.run(state, features).cpu(), target)
        total += float(bits[valid].sum())
        count += int(valid.sum())
    return total / max(count, 1)


def export_model(model: ByteModel, path: Path, metadata: dict[str, str]) -> ModelFile:
    tensors = model.export()
    tensors.update(lookup_tables(model.config))
    return save_model(path, model.config, tensors, metadata)


def _save_checkpoint(path: Path, model: ByteModel, optimizer: torch.optim.Optimizer,
                     step: int, options: TrainOptions, best: float) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().contiguous()
               for k, v in model.state_dict().items()}
    for index, parameter in enumerate(model.parameters()):
        state = optimizer.state.get(parameter, {})
        for key in ("exp_avg", "exp_avg_sq"):
            if key in state:
                tensors[f"adam.{index}.{key}"] = state[key].detach().cpu().contiguous()
    temporary = path.with_name(path.name + ".part")
    save_file(tensors, str(temporary))
    os.replace(temporary, path)
    adam_steps = [float(optimizer.state.get(p, {}).get("step", 0)) for p in model.parameters()]
    path.with_suffix(".json").write_text(json.dumps({
        "step": step, "config": model.config.to_dict(), "seed": options.seed,
        "best_val_bits_per_byte": best, "adam_steps": adam_steps}, indent=1))


def _load_checkpoint(path: Path, model: ByteModel, optimizer: torch.optim.Optimizer) -> dict:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    meta = json.loads(path.with_suffix(".json").read_text())
    model.load_state_dict({k[len("model."):]: v for k, v in tensors.items()
                           if k.startswith("model.")})
    for index, parameter in enumerate(model.parameters()):
        if f"adam.{index}.exp_avg" in tensors:
            optimizer.state[parameter] = {
                "step": torch.tensor(meta["adam_steps"][index]),
                "exp_avg": tensors[f"adam.{index}.exp_avg"].to(parameter.device),
                "exp_avg_sq": tensors[f"adam.{index}.exp_avg_sq"].to(parameter.device)}
    return meta


def train(files: list[Path], output: Path, options: TrainOptions) -> TrainResult:
    """Train, write the best model to `output`, and measure it exactly."""
    from tqdm import tqdm

    device = resolve_device(options.device)
    torch.manual_seed(options.seed)
    generator = torch.Generator().manual_seed(options.seed)
    show = not options.quiet
    with tqdm(total=sum(min(p.stat().st_size, options.max_bytes_per_file or 1 << 62)
                        for p in files), desc="features", unit="B", unit_scale=True,
              disable=not show, leave=False) as bar:
        data = LaneDataset(files, options.lane_length, options.max_bytes_per_file, bar.update)
    order = torch.randperm(len(data), generator=generator)
    val_count = max(1, int(len(data) * options.val_fraction)) if len(data) > 1 else 0
    val_lanes, train_lanes = order[:val_count], order[val_count:]
    if len(train_lanes) == 0:
        train_lanes = order
    if options.epochs is not None:
        options.steps = max(1, math.ceil(options.epochs * len(train_lanes) / options.batch_size))
    config = options.init.config if options.init is not None else options.config
    model = ByteModel(config).to(device)
    if options.init is not None:
        _initialise_from(model, options.init)
    optimizer = torch.optim.AdamW(model.parameters(), lr=options.lr, weight_decay=0.01)
    start_step, best = 0, math.inf
    if options.resume is not None:
        meta = _load_checkpoint(options.resume, model, optimizer)
        start_step, best = meta["step"], meta.get("best_val_bits_per_byte", math.inf)
    checkpoint_dir = options.checkpoint_dir or output.parent
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = checkpoint_dir / (output.stem + ".checkpoint.safetensors")
    best_path = checkpoint_dir / (output.stem + ".best.safetensors")
    history: list[dict] = []
    metadata = {"vortex.trained_on": ",".join(p.name for p in files)[:4000],
                "vortex.lane_length": str(options.lane_length)}
    train_bpb = math.nan
    val_bpb = best
    started = time.time()
    with tqdm(total=options.steps, initial=start_step, desc="train", disable=not show) as bar:
        for step in range(start_step, options.steps):
            lr = options.lr * 0.5 * (1 + math.cos(math.pi * step / max(1, options.steps)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            pick = train_lanes[torch.randint(len(train_lanes), (options.batch_size,),
                                             generator=generator)]
            features, target, valid = data.batch(pick, device)
            loss = F.cross_entropy(model(*features).transpose(1, 2), target, reduction="none")
            loss = loss[valid].mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            step_bpb = loss.item() / math.log(2)
            train_bpb = step_bpb if step == start_step else 0.98 * train_bpb + 0.02 * step_bpb
            bar.update(1)
            bar.set_postfix(loss=f"{train_bpb:.3f}", val=f"{val_bpb:.3f}")
            done = step + 1
            if done % options.checkpoint_every == 0 or done == options.steps:
                val_bpb = bits_per_byte(model, data, val_lanes, device) if val_count \
                    else train_bpb
                history.append({"step": done, "train_bits_per_byte": train_bpb,
                                "val_bits_per_byte": val_bpb,
                                "seconds": time.time() - started})
                if val_bpb < best:
                    best = val_bpb
                    export_model(model, best_path, metadata)
                _save_checkpoint(checkpoint, model, optimizer, done, options, best)
                if show:
                    bar.write(f"step {done}: train {train_bpb:.4f} bits/byte, "
                              f"validation {val_bpb:.4f} bits/byte")
    if not best_path.exists():
        export_model(model, best_path, metadata)
    os.replace(best_path, output)
    from vortexfmt.neural.files import load_model

    final = load_model(output)
    exact = exact_bits_per_byte(final, data, val_lanes if val_count else train_lanes[:64],
                                device)
    return TrainResult(final, options.steps, train_bpb, best, exact, history)


def _initialise_from(model: ByteModel, init: ModelFile) -> None:
    """Start fine-tuning from an exported (integer) model: dequantize its tensors."""
    a = model.config.act_shift
    t = init.tensors
    with torch.no_grad():
        for name in ("previous", "match", "match_length", "record"):
            getattr(model, f"embed_{name}").weight.copy_(t[f"embed.{name}"].float() / (1 << a))
        layers = [(f"blocks.{i}.{n}", getattr(block, n)) for i, block in
                  enumerate(model.blocks) for n in ("qkv", "proj", "fc1", "fc2")]
        for prefix, layer in [*layers, ("head", model.head)]:
            shift = int(t[f"{prefix}.shift"][0])
            layer.weight.copy_(t[f"{prefix}.weight"].float() / (1 << shift))
            layer.bias.copy_(t[f"{prefix}.bias"].float() / (1 << (shift + a)))
        for i, block in enumerate(model.blocks):
            block.position_bias.copy_(t[f"blocks.{i}.position_bias"].float()
                                      / model.config.attn_resolution)
