"""The byte model: a small compressive transformer over the bytes of a lane.

Read top to bottom: `ModelConfig`, the quantization-aware training modules, `ByteModel`.
Its integer twin, which codes archives, is `vortexfmt.neural.integer.IntegerByteModel`; this
float model exists to be trained and then exported (`ByteModel.export`) to integers.

Per position t of a lane the model sees the lane's previous byte plus three context
features (see `vortexfmt.neural.features`): the match model's predicted byte and match
length, and the byte one record back. Each layer attends to the last `window` positions
of the lane and to `memory` compressed slots, each the mean of `compression` (4)
consecutive older positions' keys and values: the compressive-transformer idea, bounded so
that a step costs the same at every position. Every activation is int8-valued at scale
2^act_shift, every weight int8-valued at a power-of-two scale, so the exported model
computes exactly what this one approximates in training.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from vortexfmt.neural.features import MATCH_LENGTH_BUCKETS, NONE

ACT_MAX = 127


@dataclass(frozen=True)
class ModelConfig:
    d_model: int = 48
    n_layers: int = 2
    n_heads: int = 4
    d_ff: int = 128
    window: int = 32
    memory: int = 16
    compression: int = 4
    act_shift: int = 4  # activations are integers at scale 2^act_shift
    attn_resolution: int = 8  # attention lookup-table units per nat
    out_resolution: int = 16  # output lookup-table units per nat

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def score_shift(self) -> int:
        """Attention scores q.k are divided by 2^score_shift ~ sqrt(head_dim)."""
        return int(math.log2(self.head_dim)) // 2

    def to_dict(self) -> dict:
        return asdict(self)

    def validate(self) -> None:
        if self.d_model % self.n_heads:
            raise ValueError("d_model must be a multiple of n_heads")
        # A compressed memory slot is a sum shifted right by log2(compression): the mean
        # (within the activation range) only when compression is a power of two.
        for name in ("attn_resolution", "out_resolution", "compression"):
            value = getattr(self, name)
            if value < 1 or value & (value - 1):
                raise ValueError(f"{name} must be a power of two")


#: Named sizes for `vortex train --config`.
CONFIGS = {
    "tiny": ModelConfig(d_model=16, n_layers=1, n_heads=2, d_ff=32, window=8, memory=4),
    "small": ModelConfig(),
    "medium": ModelConfig(d_model=96, n_layers=3, n_heads=6, d_ff=256),
    "large": ModelConfig(d_model=256, n_layers=6, n_heads=8, d_ff=768, window=64, memory=32),
}


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity in the backward pass."""
    return x + (torch.floor(x + 0.5) - x).detach()


def quantize(x: torch.Tensor, shift: int) -> torch.Tensor:
    """Fake-quantize to int8 values at scale 2^shift (straight-through gradient)."""
    scale = float(1 << shift) if shift >= 0 else 1.0 / (1 << -shift)
    return ste_round(x * scale).clamp(-ACT_MAX, ACT_MAX) / scale


class QuantLinear(nn.Module):
    """Linear layer with int8 weights at a power-of-two scale chosen from their range."""

    def __init__(self, in_features: int, out_features: int, act_shift: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features)
                                   / math.sqrt(in_features))
        self.bias = nn.Parameter(torch.zeros(out_features))
        self.act_shift = act_shift

    def weight_shift(self) -> int:
        largest = float(self.weight.detach().abs().max().clamp(min=1e-8))
        return max(0, min(15, math.floor(math.log2(ACT_MAX / largest))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shift = self.weight_shift()
        weight = quantize(self.weight, shift)
        scale = float(1 << (shift + self.act_shift))
        bias = ste_round(self.bias * scale) / scale
        return F.linear(x, weight, bias)

    def export(self) -> dict[str, torch.Tensor]:
        shift = self.weight_shift()
        weight = torch.floor(self.weight.detach() * (1 << shift) + 0.5).clamp(-ACT_MAX, ACT_MAX)
        bias = torch.floor(self.bias.detach() * (1 << (shift + self.act_shift)) + 0.5)
        return {"weight": weight.to(torch.int8), "bias": bias.to(torch.int32),
                "shift": torch.tensor([shift], dtype=torch.int32)}


def context_slots(length: int, window: int, memory: int, compression: int):
    """Which keys position t attends to, for every t of a lane of `length`.

    Returns (window_valid (T, W), memory_index (T, M), memory_valid (T, M)). Window slot w
    holds position t-W+1+w; memory slot m holds compressed block jmax(t)-M+1+m, where
    jmax(t) = floor((t - W - (C-1)) / C) is the newest block entirely older than the window.
    """
    t = torch.arange(length).unsqueeze(1)
    window_valid = (t - window + 1 + torch.arange(window)) >= 0
    newest = torch.div(t - window - (compression - 1), compression, rounding_mode="floor")
    memory_index = newest - memory + 1 + torch.arange(memory)
    memory_valid = memory_index >= 0
    return window_valid, memory_index.clamp(min=0), memory_valid


def gather_context(keys: torch.Tensor, config: ModelConfig, slots) -> torch.Tensor:
    """(B, T, D) per-position keys or values -> (B, T, W+M, D) what each position sees."""
    window_valid, memory_index, _ = slots
    batch, length, dim = keys.shape
    padded = F.pad(keys, (0, 0, config.window - 1, 0))
    windows = padded.unfold(1, config.window, 1).transpose(2, 3)  # (B, T, W, D)
    blocks = length // config.compression
    compressed = keys[:, :blocks * config.compression].reshape(
        batch, blocks, config.compression, dim).mean(dim=2)
    if blocks == 0:
        compressed = keys.new_zeros(batch, 1, dim)
    memory = compressed[:, memory_index.clamp(max=max(blocks - 1, 0))]  # (B, T, M, D)
    return torch.cat([windows, memory], dim=2)


class Block(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        a = config.act_shift
        self.qkv = QuantLinear(config.d_model, 3 * config.d_model, a)
        self.proj = QuantLinear(config.d_model, config.d_model, a)
        self.fc1 = QuantLinear(config.d_model, config.d_ff, a)
        self.fc2 = QuantLinear(config.d_ff, config.d_model, a)
        self.position_bias = nn.Parameter(torch.zeros(config.n_heads,
                                                      config.window + config.memory))

    def forward(self, h: torch.Tensor, slots) -> torch.Tensor:
        c = self.config
        a = c.act_shift
        batch, length, _ = h.shape
        q, k, v = quantize(self.qkv(h), a).split(c.d_model, dim=-1)
        keys = gather_context(k, c, slots).view(batch, length, -1, c.n_heads, c.head_dim)
        values = gather_context(v, c, slots).view(batch, length, -1, c.n_heads, c.head_dim)
        q = q.view(batch, length, c.n_heads, c.head_dim)
        scores = torch.einsum("bthd,btshd->bths", q, keys) / (1 << c.score_shift)
        resolution = c.attn_resolution
        # One bias per head and slot; a slot always lies at the same distance from t.
        scores = scores + ste_round(self.position_bias * resolution) / resolution
        window_valid, _, memory_valid = slots
        mask = torch.cat([window_valid, memory_valid], dim=1).to(h.device)  # (T, S)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        attended = torch.einsum("bths,btshd->bthd", weights, values).reshape(batch, length, -1)
        h = quantize(h + quantize(self.proj(quantize(attended, a)), a), a)
        hidden = quantize(F.relu(self.fc1(h)), a)
        return quantize(h + quantize(self.fc2(hidden), a), a)


class ByteModel(nn.Module):
    """Float (quantization-aware) byte model, for training. Inputs are (B, T) int64 feature
    tensors; output is (B, T, 256) logits in nats."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        config.validate()
        self.config = config
        d = config.d_model
        self.embed_previous = nn.Embedding(NONE + 1, d)
        self.embed_match = nn.Embedding(NONE + 1, d)
        self.embed_match_length = nn.Embedding(MATCH_LENGTH_BUCKETS, d)
        self.embed_record = nn.Embedding(NONE + 1, d)
        for embedding in self._embeddings():
            nn.init.normal_(embedding.weight, std=0.5)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.head = QuantLinear(d, 256, config.act_shift)

    def _embeddings(self):
        return (self.embed_previous, self.embed_match, self.embed_match_length,
                self.embed_record)

    def forward(self, previous, match, match_length, record) -> torch.Tensor:
        a = self.config.act_shift
        h = sum(quantize(embedding.weight, a)[index] for embedding, index in
                zip(self._embeddings(), (previous, match, match_length, record), strict=True))
        h = quantize(h, a)
        slots = context_slots(previous.shape[1], self.config.window, self.config.memory,
                              self.config.compression)
        for block in self.blocks:
            h = block(h, slots)
        return self.head(h)

    def export(self) -> dict[str, torch.Tensor]:
        """Integer tensors of the model, as stored in a model file."""
        a = self.config.act_shift
        tensors: dict[str, torch.Tensor] = {}
        names = ("previous", "match", "match_length", "record")
        for name, embedding in zip(names, self._embeddings(), strict=True):
            table = torch.floor(embedding.weight.detach() * (1 << a) + 0.5)
            tensors[f"embed.{name}"] = table.clamp(-ACT_MAX, ACT_MAX).to(torch.int8)
        for index, block in enumerate(self.blocks):
            for layer in ("qkv", "proj", "fc1", "fc2"):
                for key, value in getattr(block, layer).export().items():
                    tensors[f"blocks.{index}.{layer}.{key}"] = value
            bias = torch.floor(block.position_bias.detach() * self.config.attn_resolution + 0.5)
            tensors[f"blocks.{index}.position_bias"] = bias.to(torch.int32)
        for key, value in self.head.export().items():
            tensors[f"head.{key}"] = value
        return tensors
