"""Read a triplet manifest (JSON Lines, docs/CONVENTIONS.md) for evaluation.

One object per line: ``{"blur", "sharp", "ref", "sequence", "offset", "split"}``; paths are
relative to the manifest's folder (absolute paths are accepted too).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from refdeblur_video.errors import UserError

REQUIRED_KEYS = ("blur", "sharp", "ref", "sequence")


@dataclass(frozen=True)
class Triplet:
    """A blurry frame, its sharp ground truth and a sharp reference from the same sequence."""

    blur: Path
    sharp: Path
    ref: Path
    sequence: str
    offset: int | None
    split: str | None
    name: str  # the blurry path as written in the manifest


def read_manifest(path: str | Path, split: str | None = None) -> list[Triplet]:
    """Triplets of the manifest, optionally only those of one ``split``."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UserError(f"no such manifest: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read manifest {path}: {exc}") from None
    triplets = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        triplet = _parse(line, path, number)
        if split is None or triplet.split == split:
            triplets.append(triplet)
    if not triplets:
        where = f" in split '{split}'" if split is not None else ""
        raise UserError(f"manifest {path} has no triplets{where}")
    return triplets


def _parse(line: str, manifest: Path, number: int) -> Triplet:
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        raise UserError(f"manifest {manifest}, line {number}: not valid JSON") from None
    if not isinstance(entry, dict):
        raise UserError(f"manifest {manifest}, line {number}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise UserError(f"manifest {manifest}, line {number}: missing {', '.join(missing)}")
    base = manifest.parent
    offset = entry.get("offset")
    return Triplet(
        blur=base / entry["blur"],
        sharp=base / entry["sharp"],
        ref=base / entry["ref"],
        sequence=str(entry["sequence"]),
        offset=int(offset) if offset is not None else None,
        split=entry.get("split"),
        name=str(entry["blur"]),
    )
