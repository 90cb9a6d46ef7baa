"""OpenZL (Meta's format-aware compressor, `pip install openzl`) as a peer in `vortex bench`.

Two columns, each round-trip checked by the caller like every other codec:

- ``openzl``: its generic compressor (the ``Compress`` graph) on the file as serial bytes.
- ``openzl-<dtype>``: the file as one numeric input of little-endian `dtype` values (the
  element type: from the file's suffix, ``.f32`` float32, ``.i32`` int32, ... see
  DTYPE_OF_SUFFIX, or given with ``--openzl-dtype``), through the FieldLZ graph, after a
  delta for integer types (measured on seis_balst_lhe.i32: 139,163 bytes with the delta,
  140,356 without; on hep_tau_pt.f32 the generic graph on numeric input picks FieldLZ
  itself). Skipped when the file's size is not a whole number of values.

Optional: without the package, both are skipped with a one-line reason.
"""

from __future__ import annotations

from collections.abc import Callable

#: File suffix -> numeric element type the ``openzl-<dtype>`` column uses.
DTYPE_OF_SUFFIX = {
    ".f32": "float32", ".f64": "float64", ".i8": "int8", ".i16": "int16", ".i32": "int32",
    ".i64": "int64", ".u8": "uint8", ".u16": "uint16", ".u32": "uint32", ".u64": "uint64",
}
DTYPES = tuple(sorted(set(DTYPE_OF_SUFFIX.values())))
MISSING = "the openzl package is not installed (pip install openzl)"


def openzl_codecs(dtype: str | None) -> tuple[dict[str, tuple[Callable, Callable]],
                                              dict[str, str]]:
    """name -> (compress, decompress) of the OpenZL columns for a file of element type
    `dtype` (None: the generic column only), and the columns skipped with the reason."""
    try:
        import numpy  # noqa: F401
        import openzl.ext as zl
    except ImportError:
        skipped = {"openzl": MISSING}
        if dtype is not None:
            skipped[f"openzl-{dtype}"] = MISSING
        return {}, skipped
    codecs = {"openzl": (lambda data: _compress(zl, data, None), lambda blob: _decompress(zl,
                                                                                        blob))}
    if dtype is not None:
        codecs[f"openzl-{dtype}"] = (lambda data: _compress(zl, data, dtype),
                                     lambda blob: _decompress(zl, blob))
    return codecs, {}


class NotWholeValues(ValueError):
    """The file's size is not a multiple of the element type's."""


def _compress(zl, data: bytes, dtype: str | None) -> bytes:
    import numpy as np

    compressor = zl.Compressor()
    if dtype is None:
        values = np.frombuffer(data, dtype=np.uint8)
        kind = zl.Type.Serial
        graph = zl.graphs.Compress()(compressor)
    else:
        element = np.dtype(dtype).newbyteorder("<")
        if len(data) % element.itemsize:
            raise NotWholeValues(f"{len(data)} bytes are not whole {dtype} values")
        values = np.frombuffer(data, dtype=element)
        kind = zl.Type.Numeric
        graph = zl.graphs.FieldLz()(compressor)
        if element.kind in "iu":
            graph = zl.nodes.DeltaInt()(compressor, graph)
    compressor.select_starting_graph(graph)
    context = zl.CCtx()
    context.ref_compressor(compressor)
    context.set_parameter(zl.CParam.FormatVersion, zl.MAX_FORMAT_VERSION)
    # zl.Input does not keep its array alive: `values` holds it until compress returns
    source = zl.Input(kind, values)
    blob = context.compress([source])
    del source
    return blob


def _decompress(zl, blob: bytes) -> bytes:
    outputs = zl.DCtx().decompress(blob)
    return b"".join(output.content.as_bytes() for output in outputs)
