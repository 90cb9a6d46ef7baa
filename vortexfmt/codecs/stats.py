"""What encoding frames cost, against the model's ideal code length (the cm, neural and
mixed codecs keep these, and `vortex bench` reports them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class EncodeStats:
    """Sums over the frames a codec encoded."""

    ideal_bits: float = 0.0
    coded_bytes: int = 0
    overhead_bytes: int = 0  # payload header and stream lengths
    coded_raw_bytes: int = 0  # raw bytes of the frames fully encoded
    estimated_bits: float = 0.0  # ideal bits estimated on sampled lanes (frames skipped)
    estimated_raw_bytes: int = 0
