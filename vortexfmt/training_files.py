"""The files `vortex train` learns from: named, found under directories or by globs, never
a file that the corpus's MANIFEST.tsv marks bench-only (benchmark figures must stay
honest). Torch-free: profiles and neural models both train from it."""

from __future__ import annotations

import glob
from collections.abc import Iterable
from pathlib import Path

from vortexfmt.errors import VortexError


def expand_inputs(inputs: Iterable[str]) -> list[Path]:
    """Files named, found under directories, or matched by globs; refuses files that a
    MANIFEST.tsv beside them marks bench-only (benchmark figures must stay honest)."""
    found: list[Path] = []
    for item in inputs:
        matches = glob.glob(item, recursive=True) if glob.has_magic(item) else [item]
        if not matches:
            raise VortexError(f"{item}: no such file")
        for match in matches:
            path = Path(match)
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.is_file())
            elif path.is_file():
                found.append(path)
            else:
                raise VortexError(f"{item}: no such file")
    kept = []
    for path in found:
        if path.name in ("MANIFEST.tsv", "BASELINES.tsv", "README.md"):
            continue
        if _manifest_use(path) == "bench-only":
            raise VortexError(f"{path}: MANIFEST.tsv marks it bench-only; never train on it")
        kept.append(path)
    if not kept:
        raise VortexError("no training data")
    return kept


def _manifest_use(path: Path) -> str | None:
    manifest = path.parent / "MANIFEST.tsv"
    if not manifest.exists():
        return None
    lines = manifest.read_text().splitlines()
    if not lines:
        return None
    header = lines[0].split("\t")
    if "file" not in header or "use" not in header:
        return None
    for line in lines[1:]:
        row = dict(zip(header, line.split("\t"), strict=False))
        if row.get("file") == path.name:
            return row.get("use")
    return None
