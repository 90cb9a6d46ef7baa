"""The model codecs and their models: optional (`pip install 'vortexfmt[neural]'`).

A small integer-exact compressive transformer (`network.py`, its integer arithmetic in
`intmath.py` and `integer.py`) predicts each byte of a frame; the neural codec (codec id 2)
codes with it alone and the mixed codec (codec id 4) mixes it with the frame's own context
statistics (`mixing.py`); `lanes.py` cuts frames into lanes and arithmetic-codes them
(`vortexfmt._stream_coder`, torchac's coder). Model files (`files.py`), the registry that
finds them by id (`registry.py`) and training (`train.py`) are here too.

The rest of Vortex never imports this package: `vortexfmt.codecs` loads it by name when a
frame needs a model codec. Importing it needs torch and raises ImportError without it.
"""

from __future__ import annotations

import torch  # noqa: F401  (first, so that a missing torch is the ImportError raised)

from vortexfmt.neural import codecs, registry

__all__ = ["codecs", "registry"]
