"""Integer-exact inference of the byte model: what codes and decodes archives.

`IntegerByteModel.run` computes the CDFs of a block of consecutive positions [t0, t1) for
a batch of lanes, carrying each layer's recent keys/values and compressed memory in a
`LaneState`. The encoder runs long blocks, the decoder one position at a time; both go
through this one function, and since every operation is exact integer arithmetic (see
`vortexfmt.neural.intmath` for why), the CDFs agree bit for bit whatever the block size,
the lanes batched together, the thread count or the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from vortexfmt import native
from vortexfmt.neural import intmath
from vortexfmt.neural.network import ModelConfig, context_slots

ATTN_LUT_SIZE = 128
ATTN_LUT_BITS = 8
OUT_LUT_BITS = 12
MASKED = -float(1 << 30)


def lookup_tables(config: ModelConfig) -> dict[str, torch.Tensor]:
    """The exp() tables of a model; stored in its file, never recomputed by a reader."""
    out_size = 12 * config.out_resolution  # exp(-12) * 2^12 < 0.5: the rest rounds to 0
    return {
        "lut.attention": intmath.exp_table(config.attn_resolution, ATTN_LUT_SIZE, ATTN_LUT_BITS),
        "lut.output": intmath.exp_table(config.out_resolution, out_size, OUT_LUT_BITS),
    }


@dataclass
class LaneState:
    """Per layer: keys/values of the last window-1 positions and the compressed memory of
    a batch of lanes, plus the next position to run."""

    recent_keys: list[torch.Tensor]
    recent_values: list[torch.Tensor]
    memory_keys: list[torch.Tensor]
    memory_values: list[torch.Tensor]
    position: int = 0


class IntegerByteModel:
    """The exported model, computing with integers only. Built from a model file's tensors
    by `vortexfmt.neural.files`; refuses tensors that break the 2^24 bound."""

    def __init__(self, config: ModelConfig, tensors: dict[str, torch.Tensor],
                 device: str | torch.device = "cpu") -> None:
        config.validate()
        if config.window < config.compression:
            raise ValueError("window must be at least the compression ratio")
        self.config = config
        self.device = torch.device(device)
        self.shifts = {name[:-len(".shift")]: int(tensor.reshape(-1)[0])
                       for name, tensor in tensors.items() if name.endswith(".shift")}
        self._check_bounds(tensors)
        self.t: dict[str, torch.Tensor] = {}
        for name, tensor in tensors.items():
            if name.endswith(".shift"):
                continue
            if name.startswith("lut."):
                self.t[name] = tensor.to(self.device, torch.int32)
            else:
                value = tensor.to(self.device, torch.float32)
                self.t[name] = value.t().contiguous() if name.endswith(".weight") else value
        self.t["lut.attention"] = self.t["lut.attention"].to(torch.float32)

    # Exactness ----------------------------------------------------------------------------

    def _check_bounds(self, tensors: dict[str, torch.Tensor]) -> None:
        c = self.config
        a = intmath.ACT_MAX
        for name, shift in self.shifts.items():
            weight, bias = tensors[f"{name}.weight"], tensors[f"{name}.bias"]
            total_shift = self.layer_shift(name)
            if not 0 <= total_shift <= 23:
                raise ValueError(f"{name}: shift {shift} out of range")
            intmath.check_matmul_bound(name, weight.shape[1], a, int(weight.abs().max()),
                                       int(bias.abs().max()) + intmath.rounding(total_shift))
        intmath.check_matmul_bound("attention scores", c.head_dim, a, a,
                                   1 << max(0, self._score_shift()))
        slots = c.window + c.memory  # 2 * sum(w * v) + sum(w) is what gets divided
        intmath.check_matmul_bound("attention read-out", 2 * slots, a, 1 << ATTN_LUT_BITS,
                                   slots << ATTN_LUT_BITS)
        for layer in range(c.n_layers):  # added to scores below 2^23: sums stay exact
            bias = tensors[f"blocks.{layer}.position_bias"]
            if int(bias.abs().max()) >= 1 << 22:
                raise ValueError(f"blocks.{layer}.position_bias out of range")
        attention, output = tensors["lut.attention"], tensors["lut.output"]
        if int(attention.max()) > 1 << ATTN_LUT_BITS or int(output.max()) > 1 << OUT_LUT_BITS \
                or int(attention[-1]) != 0 or int(attention.min()) < 0 or \
                int(output.min()) < 0 or attention.numel() != ATTN_LUT_SIZE or \
                int(attention[0]) <= 0 or int(output[0]) <= 0:  # the best score weighs > 0
            raise ValueError("lookup tables break their declared precision")
        if int(output.max()) * (intmath.CDF_TOTAL - intmath.SYMBOLS) >= 1 << 31:
            raise ValueError("output table too large for int32 CDF arithmetic")
        if self._score_shift() < 0:
            raise ValueError("attention resolution too fine for the activation scale")

    def _score_shift(self) -> int:
        c = self.config
        return 2 * c.act_shift + c.score_shift - (c.attn_resolution.bit_length() - 1)

    def layer_shift(self, name: str) -> int:
        """The right shift that requantises linear layer `name`'s sums: its stored shift,
        plus, for the head, whose output is in lookup-table units rather than activation
        units, the difference of the two scales."""
        if name != "head":
            return self.shifts[name]
        c = self.config
        return self.shifts[name] + c.act_shift - (c.out_resolution.bit_length() - 1)

    # Inference ----------------------------------------------------------------------------

    def new_state(self, lanes: int, length: int) -> LaneState:
        c = self.config
        blocks = max(1, length // c.compression)

        def zeros(size: int) -> list[torch.Tensor]:
            return [torch.zeros(lanes, size, c.d_model, device=self.device)
                    for _ in range(c.n_layers)]

        return LaneState(zeros(c.window - 1), zeros(c.window - 1), zeros(blocks), zeros(blocks))

    def run(self, state: LaneState, features) -> torch.Tensor:
        """CDFs (lanes, n, 257) int32 for the next n positions of every lane, given their
        features: four (lanes, n) int64 tensors (previous, match, match_length, record)."""
        h = self.embed(*features)
        t0 = state.position
        t1 = t0 + h.shape[1]
        slots = [s[t0:t1].to(self.device) for s in context_slots(
            t1, self.config.window, self.config.memory, self.config.compression)]
        for layer in range(self.config.n_layers):
            h = self._block(layer, h, state, t0, t1, slots)
        state.position = t1
        return self.head_cdf(h)

    # Pieces shared with StepRunner: the same arithmetic whatever the layout of the state.

    def embed(self, previous, match, match_length, record) -> torch.Tensor:
        """Sum of the four feature embeddings, clamped: (...,) int features -> (..., D)."""
        t = self.t
        previous, match, match_length, record = (
            f.to(self.device, torch.int64) for f in (previous, match, match_length, record))
        return intmath.clamp_act(t["embed.previous"][previous] + t["embed.match"][match]
                                 + t["embed.match_length"][match_length]
                                 + t["embed.record"][record])

    def head_logits(self, h: torch.Tensor) -> torch.Tensor:
        """Integer-valued logits (..., 256), in 1/out_resolution nat, from the last layer."""
        return self._linear("head", h)

    def head_cdf(self, h: torch.Tensor) -> torch.Tensor:
        """CDFs (..., 257) int32 from the last layer's activations."""
        return intmath.cdf_from_logits(self.head_logits(h), self.t["lut.output"])

    def block_output(self, prefix: str, h: torch.Tensor, attended: torch.Tensor) -> torch.Tensor:
        """A block's tail after attention: projection, residual, ReLU MLP, residual."""
        h = intmath.clamp_act(h + intmath.clamp_act(self._linear(f"{prefix}.proj", attended)))
        hidden = intmath.clamp_act(self._linear(f"{prefix}.fc1", h).clamp_(min=0))
        return intmath.clamp_act(h + intmath.clamp_act(self._linear(f"{prefix}.fc2", hidden)))

    def _linear(self, name: str, x: torch.Tensor) -> torch.Tensor:
        return intmath.linear(x, self.t[f"{name}.weight"], self.t[f"{name}.bias"],
                              self.layer_shift(name))

    def _block(self, layer: int, h: torch.Tensor, state: LaneState, t0: int, t1: int,
               slots) -> torch.Tensor:
        c = self.config
        prefix = f"blocks.{layer}"
        lanes, count = h.shape[0], t1 - t0
        q, k, v = intmath.clamp_act(self._linear(f"{prefix}.qkv", h)).split(c.d_model, dim=-1)
        window_valid, memory_index, memory_valid = slots
        keys = self._context(state.recent_keys, state.memory_keys, layer, k, t0, memory_index)
        values = self._context(state.recent_values, state.memory_values, layer, v, t0,
                               memory_index)
        shape = (lanes, count, -1, c.n_heads, c.head_dim)
        keys, values = keys.view(shape).transpose(2, 3), values.view(shape).transpose(2, 3)
        q = q.reshape(lanes, count, c.n_heads, 1, c.head_dim)
        scores = torch.matmul(q, keys.transpose(-1, -2)).squeeze(-2)  # (lanes, n, H, S)
        scores = intmath.round_shift(scores, self._score_shift()) + \
            self.t[f"{prefix}.position_bias"]
        valid = torch.cat([window_valid, memory_valid], dim=1).unsqueeze(1)  # (n, 1, S)
        scores = scores.masked_fill_(~valid, MASKED)
        attended = intmath.lut_softmax_average(scores, values, self.t["lut.attention"])
        return self.block_output(prefix, h, attended.reshape(lanes, count, c.d_model))

    def _context(self, recent: list[torch.Tensor], memory: list[torch.Tensor], layer: int,
                 new: torch.Tensor, t0: int, memory_index: torch.Tensor) -> torch.Tensor:
        """(lanes, n, W+M, D): the window and memory slots each new position attends to.

        Updates the state: the last W-1 positions, and every block of C positions that
        the new ones complete, compressed to the rounded mean of its C vectors."""
        c = self.config
        w, ratio = c.window, c.compression
        span = torch.cat([recent[layer], new], dim=1)  # positions t0-W+1 .. t1-1
        t1 = t0 + new.shape[1]
        first, last = t0 // ratio, t1 // ratio  # blocks whose last position is in [t0, t1)
        if last > first:
            start = first * ratio - (t0 - w + 1)
            block = span[:, start:start + (last - first) * ratio]
            block = block.reshape(block.shape[0], last - first, ratio, -1).sum(dim=2)
            memory[layer][:, first:last] = intmath.round_shift(block, ratio.bit_length() - 1)
        recent[layer] = span[:, -(w - 1):] if w > 1 else span[:, :0]
        windows = span.unfold(1, w, 1).transpose(2, 3)
        remembered = memory[layer][:, memory_index.clamp(max=memory[layer].shape[1] - 1)]
        return torch.cat([windows, remembered], dim=2)


@dataclass
class StepState:
    """Per layer, head-major (lanes, heads, slots, head_dim): keys/values of the last
    `window` positions in a ring (position p in slot p mod window) and the last compressed
    blocks in another (block j in slot j mod `memory_ring`); plus the next position. The
    CPU kernel keeps them as int8 (lanes, heads, head_dim, slots) instead."""

    ring_keys: list[torch.Tensor]
    ring_values: list[torch.Tensor]
    memory_keys: list[torch.Tensor]
    memory_values: list[torch.Tensor]
    position: int = 0


class StepRunner:
    """One position at a time, for the decoder: the same arithmetic as
    `IntegerByteModel.run`, laid out so that a step reads each key and value once.

    On the CPU the whole step and the CDFs run in a C++ kernel (`step_kernel.cpp`) that
    keeps keys and values as int8 (activations are within +-127) and weights as int16, and
    computes the same integers as the torch code below, which runs on other devices and with
    VORTEX_NATIVE=0."""

    def __init__(self, model: IntegerByteModel) -> None:
        self.model = model
        c = model.config
        self.kernel = native.step_kernel() if model.device.type == "cpu" else None
        # Blocks complete up to window/C blocks before they are attended to, and the last
        # `memory` of those are attended: the ring holds both.
        self.memory_ring = c.memory + c.window // c.compression + 1
        # Bias of ring slot s at step t: slot s holds the position at distance (t-s) mod W,
        # which `run` keeps in window slot W-1-distance.
        self._ring_bias = []
        for layer in range(c.n_layers):
            bias = model.t[f"blocks.{layer}.position_bias"]
            per_phase = []
            for phase in range(c.window):
                distance = (phase - torch.arange(c.window)) % c.window
                per_phase.append(bias[:, c.window - 1 - distance.to(bias.device)])
            # Memory ring slot s holds block newest - age, age = (newest - s) mod R, which
            # `run` keeps in memory slot M-1-age when age < M; older blocks are masked.
            ring = self.memory_ring
            memory_per_phase = []
            for phase in range(ring):
                age = ((phase - torch.arange(ring)) % ring).to(bias.device)
                slot_bias = bias[:, c.window + c.memory - 1 - age.clamp(max=c.memory - 1)]
                memory_per_phase.append(slot_bias.masked_fill(age >= c.memory, MASKED))
            self._ring_bias.append((torch.stack(per_phase), torch.stack(memory_per_phase)))
        if self.kernel is not None:
            self._kernel_operands()

    def _kernel_operands(self) -> None:
        """The C++ step's operands: int32 embeddings, biases (with the rounding constant
        of `intmath.linear` added) and tables, int16 (outputs, inputs) weights."""
        model = self.model
        c = model.config
        self._kernel_bias = [(ring.to(torch.int32), memory.to(torch.int32))
                             for ring, memory in self._ring_bias]
        self._kernel_lut = model.t["lut.attention"].to(torch.int32)
        self._kernel_embed = [model.t[f"embed.{name}"].to(torch.int32).contiguous() for name
                              in ("previous", "match", "match_length", "record")]
        self._kernel_weights, self._kernel_biases, self._kernel_shifts = [], [], []
        names = [f"blocks.{layer}.{part}" for layer in range(c.n_layers)
                 for part in ("qkv", "proj", "fc1", "fc2")] + ["head"]
        for name in names:
            shift = model.layer_shift(name)
            self._kernel_weights.append(model.t[f"{name}.weight"].t().to(torch.int16)
                                        .contiguous())
            self._kernel_biases.append((model.t[f"{name}.bias"] + intmath.rounding(shift))
                                       .to(torch.int32))
            self._kernel_shifts.append(shift)
        # The kernel takes numpy arrays: views of the tensors above, made once (a view keeps
        # its tensor alive).
        self._kernel_arrays = {
            "embed": [t.numpy() for t in self._kernel_embed],
            "weights": [t.numpy() for t in self._kernel_weights],
            "biases": [t.contiguous().numpy() for t in self._kernel_biases],
            "ring_bias": [[phase.numpy() for phase in ring.contiguous()]
                          for ring, _ in self._kernel_bias],
            "memory_bias": [[phase.numpy() for phase in memory.contiguous()]
                            for _, memory in self._kernel_bias],
            "lut": self._kernel_lut.contiguous().numpy(),
            "output_lut": model.t["lut.output"].to(torch.int32).contiguous().numpy(),
        }

    def new_state(self, lanes: int, length: int) -> StepState:
        c = self.model.config

        def zeros(size: int) -> list[torch.Tensor]:
            if self.kernel is not None:  # the kernel's layout: int8, dimension-major
                return [torch.zeros(lanes, c.n_heads, c.head_dim, size, dtype=torch.int8)
                        for _ in range(c.n_layers)]
            return [torch.zeros(lanes, c.n_heads, size, c.head_dim, device=self.model.device)
                    for _ in range(c.n_layers)]

        return StepState(zeros(c.window), zeros(c.window), zeros(self.memory_ring),
                         zeros(self.memory_ring))

    def step(self, state: StepState, previous, match, match_length, record) -> torch.Tensor:
        """CDFs (lanes, 257) int32 of the next position, from its four (lanes,) features."""
        logits = self.step_logits(state, previous, match, match_length, record)
        if self.kernel is not None:
            return torch.from_numpy(self.kernel.cdf_from_logits(
                logits.contiguous().numpy(), self._kernel_arrays["output_lut"]))
        return intmath.cdf_from_logits(logits, self.model.t["lut.output"])

    def step_logits(self, state: StepState, previous, match, match_length,
                    record) -> torch.Tensor:
        """Integer logits (lanes, 256) of the next position (what `step` turns into CDFs)."""
        if self.kernel is not None:
            return self._kernel_step(state, previous, match, match_length, record)
        h = self.model.embed(previous, match, match_length, record)
        for layer in range(self.model.config.n_layers):
            h = self._block(layer, h, state)
        state.position += 1
        return self.model.head_logits(h)

    def _block(self, layer: int, h: torch.Tensor, state: StepState) -> torch.Tensor:
        model = self.model
        c = model.config
        prefix = f"blocks.{layer}"
        lanes = h.shape[0]
        position = state.position
        q, k, v = intmath.clamp_act(model._linear(f"{prefix}.qkv", h)).split(c.d_model, dim=-1)
        slot = position % c.window
        ring_keys, ring_values = state.ring_keys[layer], state.ring_values[layer]
        ring_keys[:, :, slot] = k.view(lanes, c.n_heads, c.head_dim)
        ring_values[:, :, slot] = v.view(lanes, c.n_heads, c.head_dim)
        if position % c.compression == c.compression - 1:  # a block of C positions is done
            slots = [(position - i) % c.window for i in range(c.compression)]
            block = position // c.compression
            for ring, memory in ((ring_keys, state.memory_keys[layer]),
                                 (ring_values, state.memory_values[layer])):
                total = ring[:, :, slots].sum(dim=2)
                memory[:, :, block % self.memory_ring] = intmath.round_shift(
                    total, c.compression.bit_length() - 1)
        ring_bias, memory_bias = self._ring_bias[layer]
        q = q.view(lanes, c.n_heads, c.head_dim, 1)
        scores = intmath.round_shift(torch.matmul(ring_keys, q).squeeze(-1),
                                     model._score_shift()) + ring_bias[slot]
        if position < c.window - 1:  # ring slots not yet written hold no position
            distance = (slot - torch.arange(c.window, device=h.device)) % c.window
            scores.masked_fill_(distance > position, MASKED)
        newest = (position - c.window - (c.compression - 1)) // c.compression
        memory_values = None
        if newest >= 0:  # the newest block entirely older than the window
            memory_keys = state.memory_keys[layer]
            memory_values = state.memory_values[layer]
            memory_scores = intmath.round_shift(torch.matmul(memory_keys, q).squeeze(-1),
                                                model._score_shift())
            memory_scores += memory_bias[newest % self.memory_ring]
            if newest < self.memory_ring - 1:  # slots above `newest` hold no block yet
                empty = torch.arange(self.memory_ring, device=h.device) > newest
                memory_scores.masked_fill_(empty, MASKED)
            scores = torch.cat([scores, memory_scores], dim=-1)
        exp_lut = model.t["lut.attention"]
        delta = (scores.amax(dim=-1, keepdim=True) - scores).clamp_(max=exp_lut.numel() - 1)
        weights = exp_lut[delta.to(torch.int64)]
        total = torch.matmul(weights[..., None, :c.window], ring_values)
        if memory_values is not None:
            total += torch.matmul(weights[..., None, c.window:], memory_values)
        norm = weights.sum(dim=-1, keepdim=True).unsqueeze(-1)
        attended = intmath.floor_divide(2 * total + norm, 2 * norm)
        return model.block_output(prefix, h, attended.reshape(lanes, c.d_model))

    def _kernel_step(self, state: StepState, *features) -> torch.Tensor:
        """What `step_logits` computes, in the C++ kernel."""
        c = self.model.config
        position = state.position
        newest = (position - c.window - (c.compression - 1)) // c.compression
        arrays = self._kernel_arrays
        # The state's int8 tensors go as numpy views sharing their memory: the kernel
        # updates them in place.
        logits = self.kernel.model_step(
            *(f.to("cpu", torch.int64).contiguous().numpy() for f in features),
            arrays["embed"], arrays["weights"], arrays["biases"], self._kernel_shifts,
            *([t.numpy() for t in tensors] for tensors in (
                state.ring_keys, state.ring_values, state.memory_keys, state.memory_values)),
            [ring[position % c.window] for ring in arrays["ring_bias"]],
            [memory[newest % self.memory_ring] for memory in arrays["memory_bias"]],
            arrays["lut"], position, c.compression, self.model._score_shift(), int(MASKED))
        state.position += 1
        return torch.from_numpy(logits)
