"""Triplet manifests: the one file format between the triplet builders, training and the
evaluator.

JSON Lines, one object per line (docs/CONVENTIONS.md)::

    {"blur": str, "sharp": str, "ref": str, "sequence": str, "offset": int, "split": str}

Paths are relative to the manifest's folder (absolute paths are accepted when reading).
``offset`` is the reference's frame index minus the ground truth's. Reading needs ``blur``,
``sharp``, ``ref`` and ``sequence``; ``offset`` and ``split`` may be left out (None).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from refdeblur_video.errors import UserError
from refdeblur_video.safe_output import atomic_output

__all__ = ["MANIFEST_NAME", "Triplet", "read_manifest", "relative_to", "write_manifest"]

MANIFEST_NAME = "manifest.jsonl"
SPLITS = ("train", "val", "test")
REQUIRED_KEYS = ("blur", "sharp", "ref", "sequence")
_IMAGES = ("blur", "sharp", "ref")


@dataclass(frozen=True)
class Triplet:
    """A blurry frame, its sharp ground truth and a sharp reference from the same sequence,
    with the reference's offset and the split."""

    blur: str
    sharp: str
    ref: str
    sequence: str
    offset: int | None
    split: str | None
    # the blurry path as written in the manifest read ("" for triplets not read from one)
    name: str = field(default="", compare=False)


def write_manifest(path: str | Path, triplets: Iterable[Triplet]) -> Path:
    """Write triplets as JSON Lines; image paths become relative to the manifest's folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = path.parent
    # written beside and renamed over: an interrupted write leaves the earlier manifest
    with atomic_output(path, overwrite=True) as partial, \
            partial.open("w", encoding="utf-8") as out:
        for t in triplets:
            row = {key: relative_to(getattr(t, key), folder) for key in _IMAGES}
            row.update(sequence=t.sequence, offset=t.offset, split=t.split)
            out.write(json.dumps(row) + "\n")
    return path


def read_manifest(path: str | Path, split: str | None = None) -> list[Triplet]:
    """The triplets of a manifest (image paths absolute), only those of ``split`` if given;
    possibly none."""
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
    return triplets


def relative_to(path: str | Path, folder: str | Path) -> str:
    """``path`` relative to ``folder`` with '/' separators (absolute if that is impossible)."""
    try:
        return Path(os.path.relpath(Path(path).resolve(), Path(folder).resolve())).as_posix()
    except ValueError:  # different drives on Windows
        return Path(path).resolve().as_posix()


def _parse(line: str, manifest: Path, number: int) -> Triplet:
    where = f"manifest {manifest}, line {number}"
    try:
        entry = json.loads(line)
    except json.JSONDecodeError:
        raise UserError(f"{where}: not valid JSON") from None
    if not isinstance(entry, dict):
        raise UserError(f"{where}: expected a JSON object")
    missing = [k for k in REQUIRED_KEYS if k not in entry]
    if missing:
        raise UserError(f"{where}: missing {', '.join(missing)}")
    folder = manifest.parent.resolve()
    split = entry.get("split")
    if split is not None and split not in SPLITS:  # a row no split would ever take
        raise UserError(f"{where}: split must be {', '.join(SPLITS)} or absent, not "
                        f"{split!r}")
    try:
        offset = entry.get("offset")
        return Triplet(
            *(os.path.normpath(folder / entry[k]) for k in _IMAGES),
            sequence=str(entry["sequence"]),
            offset=int(offset) if offset is not None else None,
            split=str(split) if split is not None else None,
            name=str(entry["blur"]),
        )
    except (ValueError, TypeError) as exc:
        raise UserError(f"{where}: not a triplet record ({exc})") from None
