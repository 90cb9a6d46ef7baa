"""Integer arithmetic of the byte model: the part that makes archives decodable anywhere.

Why inference is exact on every device
--------------------------------------
Every value on the coding path is an integer. The model computes on float32 tensors that
hold integers, and every intermediate is kept below 2^24 in magnitude, where float32
represents every integer exactly:

* activations and weights are int8-valued (|x| <= 127), so matmul inputs are exact in
  float32, TF32 (11 significant bits) and bf16 (8); each product is exact, and every
  partial sum of a dot product stays below 2^24 (`check_matmul_bound`, enforced when a
  model is loaded), so accumulation is exact in any order: a CPU GEMM, a CUDA GEMM, one
  row or a batch of 64 give the same integers;
* additions, subtractions, max, clamp, and multiplication by a power of two of such
  integers are exact; so is floor();
* integer division is floor(a / b) with |a| < 2^24 and b > 0: IEEE 754 division is
  correctly rounded, so fl(a/b) differs from a/b by at most |a/b| * 2^-24 < 1/b, less
  than the distance from a non-integer a/b to the nearest integer; so fl(a/b) stays
  strictly between the same two integers (or is exact), and floor() gives the exact
  quotient (`floor_divide`).
* exp() is never evaluated: it lives in lookup tables stored in the model file;
* the CDF itself is built on int32 tensors.
"""

from __future__ import annotations

import math

import torch

#: Integers up to 2^24 are exact in float32.
EXACT_LIMIT = 1 << 24
ACT_MAX = 127
CDF_PRECISION = 16
CDF_TOTAL = 1 << CDF_PRECISION
SYMBOLS = 256


def check_matmul_bound(name: str, in_features: int, max_input: int, max_weight: int,
                       extra: int = 0) -> None:
    """Refuse a layer whose accumulators could leave float32's exact range.

    `extra` is what is added to the accumulator afterwards (bias, rounding constant).
    """
    bound = in_features * max_input * max_weight + extra
    if bound >= EXACT_LIMIT:
        raise ValueError(f"{name}: accumulators may reach {bound} >= 2^24; "
                         "the model would not be exact in float arithmetic")


def rounding(shift: int) -> int:
    """What round_shift adds before dividing by 2^shift: 2^(shift-1), or 0 for shift <= 0."""
    return (1 << shift) >> 1 if shift > 0 else 0


def round_shift(x: torch.Tensor, shift: int) -> torch.Tensor:
    """x / 2^shift rounded half up, for integer-valued float32 x with |x| + 2^shift < 2^24."""
    if shift <= 0:
        return x * float(1 << -shift)
    return torch.floor((x + float(1 << (shift - 1))) * (1.0 / (1 << shift)))


def clamp_act(x: torch.Tensor) -> torch.Tensor:
    return x.clamp_(-ACT_MAX, ACT_MAX)


def linear(x: torch.Tensor, weight_t: torch.Tensor, bias: torch.Tensor,
           shift: int) -> torch.Tensor:
    """Quantized linear layer on integer-valued float32: round_shift(x @ W.T + b, shift).

    `weight_t` is the transposed weight (in, out). The rounding constant 2^(shift-1) joins
    the bias (an exact integer sum, within the bound `check_matmul_bound` was given), so
    the rest is one in-place scaling by 2^-shift and a floor."""
    out = torch.addmm(bias + float(rounding(shift)) if shift > 0 else bias,
                      x.reshape(-1, x.shape[-1]), weight_t)
    out.mul_(1.0 / (1 << shift) if shift > 0 else float(1 << -shift))
    if shift > 0:
        out.floor_()
    return out.view(*x.shape[:-1], weight_t.shape[1])


def floor_divide(numerator: torch.Tensor, denominator: torch.Tensor) -> torch.Tensor:
    """floor(numerator / denominator), exact for integer-valued float32 with
    |numerator| < 2^24 and denominator > 0 (see the module docstring)."""
    return torch.floor(numerator / denominator)


def lut_softmax_average(scores: torch.Tensor, values: torch.Tensor,
                        exp_lut: torch.Tensor) -> torch.Tensor:
    """Attention read-out with an integer softmax.

    scores: (..., S) integer-valued float32 in lookup-table units (1/resolution nats);
    masked keys must hold -2^30. values: (..., S, D). Returns (..., D): the average of the
    values weighted by exp_lut[max - score] (the table's last entry is 0, so masked keys
    weigh nothing), rounded to nearest, ties up.
    """
    delta = (scores.amax(dim=-1, keepdim=True) - scores).clamp_(max=exp_lut.numel() - 1)
    weights = exp_lut[delta.to(torch.int64)]
    total = torch.matmul(weights.unsqueeze(-2), values).squeeze(-2)
    norm = weights.sum(dim=-1, keepdim=True)
    return floor_divide(2 * total + norm, 2 * norm)


def cdf_from_logits(logits: torch.Tensor, exp_lut: torch.Tensor) -> torch.Tensor:
    """Turn integer-valued logits (..., 256), in lookup-table units, into CDFs (..., 257)
    with weights p_i = exp_lut[max - logit_i] (int32; see `cdf_from_weights`)."""
    delta = (logits.amax(dim=-1, keepdim=True) - logits).clamp_(max=exp_lut.numel() - 1)
    return cdf_from_weights(exp_lut[delta.to(torch.int64)])


def cdf_from_weights(weights: torch.Tensor) -> torch.Tensor:
    """CDFs (..., 257) from non-negative integer weights (..., 256), each row's largest > 0.

    Frequencies are 1 + floor(p_i * (2^16 - 256) / sum p), every one >= 1; what is left of
    2^16 goes to the first most probable symbol. Computed in the weights' integer dtype
    (int32 needs every weight * 2^16 below 2^31; pass int64 otherwise). Returns int32 CDFs
    from 0 to exactly 2^16.
    """
    total = weights.sum(dim=-1, keepdim=True)
    freq = 1 + torch.div(weights * (CDF_TOTAL - SYMBOLS), total, rounding_mode="floor")
    left = CDF_TOTAL - freq.sum(dim=-1, keepdim=True)
    freq.scatter_add_(-1, weights.argmax(dim=-1, keepdim=True), left)  # first maximum
    cdf = torch.zeros(*freq.shape[:-1], SYMBOLS + 1, dtype=torch.int32, device=weights.device)
    torch.cumsum(freq, dim=-1, out=cdf[..., 1:])
    return cdf


def code_length_bits(cdf: torch.Tensor, symbols: torch.Tensor) -> torch.Tensor:
    """-log2 p of each symbol under its CDF (..., 257): the ideal code length, float64."""
    index = symbols.to(device=cdf.device, dtype=torch.int64).unsqueeze(-1)
    cdf = cdf.to(torch.int64)
    freq = (cdf.gather(-1, index + 1) - cdf.gather(-1, index)).squeeze(-1)
    return CDF_PRECISION - torch.log2(freq.to(torch.float64))


def to_torchac(cdf: torch.Tensor) -> torch.Tensor:
    """int32 CDFs (top 2^16) as the int16 tensor holding uint16 values torchac's coder
    (`vortexfmt._stream_coder`) expects."""
    # torch converts int32 to int16 modulo 2^16 (a C cast; two's complement wrap on every
    # platform it supports), which is exactly the reinterpretation torchac wants: one pass
    # instead of four. tests/test_model_exactness.py checks the wrap at its edges.
    return cdf.to("cpu").to(torch.int16)


def exp_table(resolution: int, size: int, scale_bits: int) -> torch.Tensor:
    """round(2^scale_bits * exp(-i / resolution)) for i < size, as int32; the last entry
    is forced to 0. Computed once when a model is made and stored in its file, so readers
    never evaluate exp() themselves."""
    values = [round((1 << scale_bits) * math.exp(-i / resolution)) for i in range(size)]
    values[-1] = 0
    return torch.tensor(values, dtype=torch.int32)
